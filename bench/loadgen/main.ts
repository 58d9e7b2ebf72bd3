/**
 * The load-generating process (forked by the harness, so its CPU use is its own and not the
 * server's): runs one workload at a time with `concurrency` virtual clients over keep-alive
 * connections (undici), each sending its next request as soon as the previous one is
 * answered (closed loop), and reports throughput and latency percentiles.
 */
import { Pool } from 'undici';
import type { FromLoadgen, LatencyStats, OpResult, RunResult, RunSpec, ToLoadgen } from './protocol';
import { createWorkload, REQUEST_HEADERS } from './workloads';

export function latencyStats(samples: number[]): LatencyStats {
  if (samples.length === 0) return { mean: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  const r = (x: number) => Math.round(x * 100) / 100;
  return { mean: r(mean), p50: r(at(0.5)), p95: r(at(0.95)), p99: r(at(0.99)), max: r(sorted[sorted.length - 1]) };
}

export async function runWorkload(spec: RunSpec, onMeasuring?: () => void): Promise<RunResult> {
  const { target } = spec;
  const pool = new Pool(target.origin, {
    connections: spec.concurrency,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  });
  const workload = createWorkload(spec.workload, target);
  const headers = { ...REQUEST_HEADERS, accept: 'application/fhir+json', ...target.headers };
  const ops = new Map<string, { samples: number[]; errors: number }>();
  const statuses: Record<string, number> = {};
  const errorSamples: string[] = [];
  const all: number[] = [];
  let units = 0;
  let errors = 0;

  const start = performance.now();
  const measureFrom = start + spec.warmupMs;
  const end = measureFrom + spec.durationMs;
  const measuring = onMeasuring && setTimeout(onMeasuring, spec.warmupMs);
  let lastAnswer = start;

  const client = async (n: number) => {
    for (;;) {
      const now = performance.now();
      if (now >= end) return;
      const request = workload.next(n);
      if (!request) return;
      const sent = performance.now();
      let status = 0;
      let body = '';
      let location: string | undefined;
      try {
        const response = await pool.request({ method: request.method, path: request.path, headers, body: request.body });
        status = response.statusCode;
        body = await response.body.text();
        const loc = response.headers.location;
        location = Array.isArray(loc) ? loc[0] : loc;
      } catch (err) {
        body = (err as Error).message;
      }
      const answered = performance.now();
      lastAnswer = answered;
      workload.answered?.(n, request, status, location, body);
      if (sent < measureFrom) continue;
      const ms = answered - sent;
      let op = ops.get(request.op);
      if (!op) ops.set(request.op, (op = { samples: [], errors: 0 }));
      op.samples.push(ms);
      all.push(ms);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status !== request.expect) {
        errors++;
        op.errors++;
        if (errorSamples.length < 5) errorSamples.push(`${request.method} ${request.path.slice(0, 160)} → ${status}: ${body.slice(0, 300)}`);
      } else {
        units += request.units ?? 1;
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, (_, i) => client(i)));
  // A run that ended before its warm-up did (an ingest of few patients) still says so once.
  if (measuring) {
    clearTimeout(measuring);
    if (performance.now() < measureFrom) onMeasuring();
  }
  await pool.close();
  // Ingest ends when its patients are done, which may be before the end of the period.
  const elapsedMs = Math.max(1, Math.min(end, lastAnswer) - measureFrom);
  const opResults: Record<string, OpResult> = {};
  for (const [name, op] of ops) {
    opResults[name] = { requests: op.samples.length, errors: op.errors, latency: latencyStats(op.samples) };
  }
  const seconds = elapsedMs / 1000;
  return {
    name: spec.name,
    target: target.kind,
    concurrency: spec.concurrency,
    elapsedMs: Math.round(elapsedMs),
    requests: all.length,
    errors,
    rps: Math.round((all.length / seconds) * 10) / 10,
    units,
    unitsPerSecond: Math.round((units / seconds) * 10) / 10,
    latency: latencyStats(all),
    ops: opResults,
    statuses,
    errorSamples,
  };
}

if (require.main === module) {
  process.on('message', (message: ToLoadgen) => {
    if (message.type === 'exit') {
      process.exit(0);
    }
    runWorkload(message.spec, () => process.send!({ type: 'measuring' } satisfies FromLoadgen)).then(
      (result) => process.send!({ type: 'result', result } satisfies FromLoadgen),
      (err: Error) => process.send!({ type: 'failed', message: err.stack ?? err.message } satisfies FromLoadgen)
    );
  });
}
