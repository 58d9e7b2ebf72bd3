/**
 * The harness's side of the load generator: forks the process once and runs workloads in
 * it one after another.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { FromLoadgen, RunResult, RunSpec } from './protocol';

export class LoadGenerator {
  private child: ChildProcess;

  constructor() {
    this.child = fork(path.join(__dirname, 'main.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  }

  run(spec: RunSpec): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`The load generator exited (${code}) during ${spec.name}`));
      this.child.once('exit', onExit);
      this.child.once('message', (message: FromLoadgen) => {
        this.child.off('exit', onExit);
        if (message.type === 'result') resolve(message.result);
        else reject(new Error(`Load generator failed in ${spec.name}: ${message.message}`));
      });
      this.child.send({ type: 'run', spec });
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.send({ type: 'exit' });
    });
  }
}
