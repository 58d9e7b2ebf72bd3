/**
 * The processes the harness runs: the FHIR server as `npm start` runs it (node dist/main.js,
 * WORKERS cluster processes) and the baseline server, each waited for until it answers and
 * stopped with SIGTERM; and the peak resident memory (VmHWM) of a process tree from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
/** Clock ticks per second of /proc CPU times (USER_HZ, 100 on Linux). */
const TICKS = 100;

export interface ServerProcess {
  name: string;
  origin: string;
  child: ChildProcess;
  /** Peak resident memory seen so far, in MiB: the sum over the tree and the largest process. */
  peakMemory(): { totalMiB: number; largestMiB: number; processes: number };
  /** CPU seconds (user + system) used so far by the process and its children. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

function children(pid: number): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command may contain spaces or parentheses: fields follow the last ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) found.push(Number(entry));
    } catch {
      // The process ended meanwhile.
    }
  }
  return found;
}

/** utime + stime of a process, plus cutime + cstime (its children that have ended and been waited for) when asked. */
function cpuTicks(pid: number, withEndedChildren = false): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime and cstime are fields 14-17 of stat, 12-15 after the command.
    const own = Number(fields[11]) + Number(fields[12]);
    return withEndedChildren ? own + Number(fields[13]) + Number(fields[14]) : own;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds (user + system) used so far by a process and its children, live or ended: what
 * PostgreSQL's postmaster and its backends (which come and go with connections) or a cluster
 * primary and its workers cost. Counters only grow, so a difference of two readings is the
 * CPU used between them.
 */
export function treeCpuSeconds(pid: number): number {
  return (cpuTicks(pid, true) + children(pid).reduce((sum, child) => sum + cpuTicks(child), 0)) / TICKS;
}

/** Busy and total CPU seconds of the whole machine since boot (/proc/stat). */
export function machineCpu(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = values[3] + (values[4] ?? 0);
  const total = values.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / TICKS, total: total / TICKS };
}

function vmHwmKiB(pid: number): number | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function waitForHttp(url: string, child: ChildProcess, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited (${child.exitCode}):\n${output()}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status < 500) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms:\n${output()}`);
}

export async function startProcess(
  name: string,
  script: string,
  env: Record<string, string>,
  port: number,
  readyPath: string,
  nodeArgs: string[] = []
): Promise<ServerProcess> {
  // Cluster workers inherit the primary's node arguments (--cpu-prof).
  const child = spawn(process.execPath, [...nodeArgs, script], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const origin = `http://127.0.0.1:${port}`;
  await waitForHttp(origin + readyPath, child, 120_000, () => output);
  const peaks = new Map<number, number>();
  const sample = () => {
    const pids = [child.pid!, ...children(child.pid!)];
    for (const pid of pids) {
      const kib = vmHwmKiB(pid);
      if (kib !== undefined) peaks.set(pid, Math.max(peaks.get(pid) ?? 0, kib));
    }
  };
  const sampler = setInterval(sample, 1000);
  sampler.unref();
  return {
    name,
    origin,
    child,
    peakMemory() {
      sample();
      const values = [...peaks.values()];
      const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;
      return { totalMiB: mib(values.reduce((a, b) => a + b, 0)), largestMiB: mib(Math.max(0, ...values)), processes: values.length };
    },
    cpuSeconds() {
      return treeCpuSeconds(child.pid!);
    },
    async stop() {
      sample();
      clearInterval(sampler);
      if (child.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      });
    },
  };
}
