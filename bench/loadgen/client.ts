/**
 * The harness's side of the load generator: forks the process once and runs workloads in
 * it one after another.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { treeCpuSeconds } from '../processes';
import type { FromLoadgen, RunResult, RunSpec } from './protocol';

export class LoadGenerator {
  private child: ChildProcess;

  constructor() {
    this.child = fork(path.join(__dirname, 'main.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  }

  /** Runs one workload; onMeasuring is called when its warm-up ends and requests start to count. */
  run(spec: RunSpec, onMeasuring?: () => void): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => {
        this.child.off('message', onMessage);
        reject(new Error(`The load generator exited (${code}) during ${spec.name}`));
      };
      const onMessage = (message: FromLoadgen) => {
        if (message.type === 'measuring') {
          onMeasuring?.();
          return;
        }
        this.child.off('exit', onExit);
        this.child.off('message', onMessage);
        if (message.type === 'result') resolve(message.result);
        else reject(new Error(`Load generator failed in ${spec.name}: ${message.message}`));
      };
      this.child.once('exit', onExit);
      this.child.on('message', onMessage);
      this.child.send({ type: 'run', spec });
    });
  }

  /** CPU seconds the load generator has used so far (it shares the machine with what it measures). */
  cpuSeconds(): number {
    return this.child.pid === undefined ? 0 : treeCpuSeconds(this.child.pid);
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.send({ type: 'exit' });
    });
  }
}
