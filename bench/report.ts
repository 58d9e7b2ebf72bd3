/**
 * The report of a run: JSON (everything measured), Markdown (tables, targets, verdicts) and an
 * SVG chart, written under a timestamped name and under the stable name (latest.*).
 */
import fs from 'node:fs';
import path from 'node:path';
import { renderChart } from './chart';
import type { ExplainedSearch, ValidationTiming } from './inprocess';
import { SEARCHES, type RunResult } from './loadgen/protocol';
import type { BenchOptions } from './options';

export type SecurityConfig = 'open' | 'token' | 'token+audit';

export interface Measurement {
  workload: 'ingest' | 'read' | 'crud' | 'search';
  config: SecurityConfig;
  /** Patients loaded when measured (for ingest: loaded by the end of it). */
  scale: number;
  server: RunResult;
  baseline?: RunResult;
  /** Server throughput / baseline throughput. */
  ratio?: number;
  /** CPU time of the server processes per request (per resource for ingest): reports before `cpu` existed. */
  serverCpuMsPerUnit?: number;
  /** CPU ms per unit of the server run by side. */
  cpu?: CpuPerUnit;
  /** The same for the baseline run. */
  baselineCpu?: CpuPerUnit;
  /** Busy CPU of the whole machine during the server run (PostgreSQL, load generator, others). */
  machineBusyPercent?: number;
}

/** CPU ms per request (per resource for ingest), over the measured period, by process. */
export interface CpuPerUnit {
  /** The server under test, or the baseline server. */
  server: number;
  /** PostgreSQL, when the harness runs it (embedded); missing with DATABASE_URL. */
  postgres?: number;
  loadgen: number;
}

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  options: Omit<BenchOptions, 'databaseUrl'> & { databaseUrl?: string };
  machine: {
    cores: number;
    cpu: string;
    memoryGiB: number;
    node: string;
    postgres: string;
    database: string;
    /** Settings that differ from PostgreSQL's defaults (missing in reports of older runs: defaults). */
    postgresSettings?: string;
    loadBefore: number[];
    loadAfter: number[];
  };
  scales: { patients: number; resources: number; databaseMiB: number }[];
  measurements: Measurement[];
  explain: ExplainedSearch[];
  validation: ValidationTiming[];
  memory: { config: SecurityConfig; totalMiB: number; largestMiB: number; processes: number }[];
}

export interface TargetVerdict {
  target: string;
  required: string;
  measured: string;
  met: boolean | undefined;
}

const fmt = (x: number | undefined, digits = 0) =>
  x === undefined || Number.isNaN(x) ? '–' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function find(report: BenchReport, workload: Measurement['workload'], config: SecurityConfig, scale?: number): Measurement | undefined {
  const matches = report.measurements.filter((m) => m.workload === workload && m.config === config && (scale === undefined || m.scale === scale));
  return matches[matches.length - 1];
}

export function targets(report: BenchReport): TargetVerdict[] {
  const [, s2] = report.options.scales;
  const read = find(report, 'read', 'open', s2);
  const crud = find(report, 'crud', 'open', s2);
  const ingests = report.measurements.filter((m) => m.workload === 'ingest' && m.config === 'open');
  const search = find(report, 'search', 'open', s2);
  const worstSearch = search
    ? Object.entries(search.server.ops).reduce((a, b) => (b[1].latency.p95 > a[1].latency.p95 ? b : a))
    : undefined;
  const slowestIngest = ingests.length ? ingests.reduce((a, b) => (b.server.unitsPerSecond < a.server.unitsPerSecond ? b : a)) : undefined;
  const atScale = s2 >= 10_000 ? '' : ` (at ${s2.toLocaleString('en-US')} patients, not 10,000: run --full)`;
  return [
    {
      target: 'Read by id vs raw PostgreSQL primary-key select',
      required: '≥ 50%',
      measured: read?.ratio !== undefined ? `${fmt(read.ratio * 100)}% (${fmt(read.server.rps)} vs ${fmt(read.baseline?.rps)} req/s)` : '–',
      met: read?.ratio !== undefined ? read.ratio >= 0.5 : undefined,
    },
    {
      target: 'CRUD mix throughput',
      required: '≥ 1,000 req/s',
      measured: crud ? `${fmt(crud.server.rps)} req/s${crudBudget(report, crud)}` : '–',
      met: crud ? crud.server.rps >= 1000 : undefined,
    },
    {
      target: 'Ingest (transaction Bundles)',
      required: '≥ 1,500 resources/s',
      measured: ingests.map((m) => `${fmt(m.server.unitsPerSecond)} (to ${m.scale.toLocaleString('en-US')})`).join(', ') + ' resources/s',
      met: slowestIngest ? slowestIngest.server.unitsPerSecond >= 1500 : undefined,
    },
    {
      target: `Search mix p95 at ${report.options.concurrency} clients${atScale}`,
      required: '< 50 ms each',
      measured: worstSearch ? `worst: ${worstSearch[0]} ${fmt(worstSearch[1].latency.p95, 1)} ms` : '–',
      met: worstSearch ? worstSearch[1].latency.p95 < 50 && s2 >= 10_000 : undefined,
    },
  ];
}

/** The server's CPU ms per unit, from this report's `cpu` or an older report's own field. */
function serverCpuMs(m: Measurement | undefined): number | undefined {
  return m?.cpu?.server ?? m?.serverCpuMsPerUnit;
}

/** The throughput that `total` ms of CPU per unit allows with every core busy. */
function ceiling(cores: number, total: number): number {
  return (cores * 1000) / total;
}

/** CPU ms per unit of all the processes measured (undefined when PostgreSQL's is unknown). */
export function cpuTotal(cpu: CpuPerUnit | undefined): number | undefined {
  return cpu?.postgres === undefined ? undefined : cpu.server + cpu.postgres + cpu.loadgen;
}

/** What the CRUD verdict adds: the CPU a request costs against what the target allows. */
function crudBudget(report: BenchReport, crud: Measurement): string {
  const total = cpuTotal(crud.cpu);
  if (total === undefined) return '';
  const cores = report.machine.cores;
  return ` (${fmt(total, 1)} ms of CPU per request: at most ${fmt(ceiling(cores, total))} req/s on ${cores} cores; 1,000 req/s needs ≤ ${fmt(cores, 1)} ms)`;
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

function workloadLabel(m: Measurement): string {
  return { ingest: 'Ingest (transactions)', read: 'Read by id', crud: 'CRUD mix', search: 'Search mix' }[m.workload];
}

export function renderMarkdown(report: BenchReport, chartFile?: string): string {
  const { options, machine } = report;
  const [s1, s2] = options.scales;
  const out: string[] = [];
  const minutes = (Date.parse(report.finishedAt) - Date.parse(report.startedAt)) / 60000;
  out.push(`# Benchmark results`);
  out.push('');
  out.push(
    `Run ${report.startedAt.slice(0, 16).replace('T', ' ')} UTC, profile **${options.profile}** (${fmt(minutes, 1)} min): ` +
      `${options.concurrency} concurrent clients, ${options.workers} server processes (WORKERS) with ${options.poolSize ?? 10} connections each (DB_POOL_SIZE, the baseline alike), ${options.durationSeconds} s measured per workload after ${options.warmupSeconds} s warm-up, seed ${options.seed}.`
  );
  out.push(
    `Machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}, PostgreSQL ${machine.postgres} (${machine.database.replace(/ in \/.*$/, '')}, ${machine.postgresSettings ?? 'default settings'}). ` +
      `Everything (PostgreSQL, server, baseline, load generator) on this one machine; load average before ${machine.loadBefore.map((x) => fmt(x, 2)).join(' / ')}, after ${machine.loadAfter.map((x) => fmt(x, 2)).join(' / ')}.`
  );
  out.push('');
  out.push(
    'Each figure is also given as a ratio to the **raw PostgreSQL baseline** measured right after it: a minimal HTTP server (node:http + pg, same worker count and pool size) doing the same work with the least SQL (one multi-row INSERT per Bundle, a primary-key SELECT, hand-written index lookups on the same tables), driven by the same load generator.'
  );
  out.push('');
  if (chartFile) {
    out.push(`![Throughput and latency of each workload, with the raw PostgreSQL baseline](${chartFile})`);
    out.push('');
  }
  out.push('## Targets');
  out.push('');
  out.push(table(['Target', 'Required', 'Measured', 'Met'], targets(report).map((t) => [t.target, t.required, t.measured, t.met === undefined ? '–' : t.met ? 'yes' : '**no**'])));
  out.push('');
  out.push('## Workloads');
  out.push('');
  out.push(
    'Throughput is requests/s (resources/s for ingest); latency in ms. *open*: AUTH_DISABLED, no audit; *token*: a real bearer token (system/*.cruds); *token+audit*: token and an AuditEvent per interaction (the server\'s defaults). Server CPU is the CPU time of the server processes per request (per resource for ingest).'
  );
  out.push('');
  out.push(
    table(
      ['Workload', 'Config', 'Patients', 'Throughput', 'p50', 'p95', 'p99', 'Errors', 'Raw PostgreSQL', 'Ratio', 'Server CPU ms', 'Machine busy'],
      report.measurements.map((m) => [
        workloadLabel(m),
        m.config,
        m.scale.toLocaleString('en-US'),
        fmt(m.server.unitsPerSecond),
        fmt(m.server.latency.p50, 1),
        fmt(m.server.latency.p95, 1),
        fmt(m.server.latency.p99, 1),
        String(m.server.errors),
        m.baseline ? fmt(m.baseline.unitsPerSecond) : '–',
        m.ratio !== undefined ? `${fmt(m.ratio * 100)}%` : '–',
        fmt(serverCpuMs(m), 2),
        m.machineBusyPercent !== undefined ? `${fmt(m.machineBusyPercent)}%` : '–',
      ])
    )
  );
  out.push('');
  const metered = report.measurements.filter((m) => m.cpu);
  if (metered.length) {
    out.push('## Where the CPU goes');
    out.push('');
    out.push(
      `CPU ms per request (per resource for ingest) over the measured period, by process: the server (all its processes), PostgreSQL (${metered.some((m) => m.cpu?.postgres !== undefined) ? 'the embedded cluster: postmaster, backends, background processes' : 'unknown: not run by the harness'}) and the load generator, which shares the machine. ` +
        `With all ${machine.cores} cores busy, throughput cannot exceed ${machine.cores} × 1,000 / total: the *Ceiling* column. A target above the ceiling needs less work per request, not tuning. *Raw*: the same for the baseline run.`
    );
    out.push('');
    out.push(
      table(
        ['Workload', 'Config', 'Patients', 'Server', 'PostgreSQL', 'Load generator', 'Total', 'Ceiling', 'Raw: server', 'Raw: PostgreSQL', 'Raw: load gen.', 'Raw: total'],
        metered.map((m) => {
          const total = cpuTotal(m.cpu);
          return [
            workloadLabel(m),
            m.config,
            m.scale.toLocaleString('en-US'),
            fmt(m.cpu?.server, 2),
            fmt(m.cpu?.postgres, 2),
            fmt(m.cpu?.loadgen, 2),
            fmt(total, 2),
            total ? fmt(ceiling(machine.cores, total)) : '–',
            fmt(m.baselineCpu?.server, 2),
            fmt(m.baselineCpu?.postgres, 2),
            fmt(m.baselineCpu?.loadgen, 2),
            fmt(cpuTotal(m.baselineCpu), 2),
          ];
        })
      )
    );
    out.push('');
  }
  out.push('## Search mix, per search');
  out.push('');
  const searchAt = (config: SecurityConfig, scale: number) => find(report, 'search', config, scale);
  const o1 = searchAt('open', s1);
  const o2 = searchAt('open', s2);
  const t2 = searchAt('token', s2);
  const a2 = searchAt('token+audit', s2);
  out.push(
    table(
      ['Search', `p95 @ ${s1}`, `p50 @ ${s2}`, `p95 @ ${s2}`, `p99 @ ${s2}`, `raw p95 @ ${s2}`, `token p95`, `token+audit p95`],
      SEARCHES.map((name) => [
        '`' + name + '`',
        fmt(o1?.server.ops[name]?.latency.p95, 1),
        fmt(o2?.server.ops[name]?.latency.p50, 1),
        fmt(o2?.server.ops[name]?.latency.p95, 1),
        fmt(o2?.server.ops[name]?.latency.p99, 1),
        fmt(o2?.baseline?.ops[name]?.latency.p95, 1),
        fmt(t2?.server.ops[name]?.latency.p95, 1),
        fmt(a2?.server.ops[name]?.latency.p95, 1),
      ])
    )
  );
  out.push('');
  const crud = find(report, 'crud', 'open', s2);
  if (crud) {
    out.push('## CRUD mix, per operation');
    out.push('');
    out.push('Each client cycles create → read → update → delete over Patient, Observation, Encounter and DiagnosticReport.');
    out.push('');
    const ops = ['create', 'read', 'update', 'delete'];
    const cruds = report.measurements.filter((m) => m.workload === 'crud');
    out.push(
      table(
        ['Config', ...ops.map((o) => `${o} p50 / p95`), 'Raw p50 / p95 (create, read, update, delete)'],
        cruds.map((m) => [
          m.config,
          ...ops.map((o) => `${fmt(m.server.ops[o]?.latency.p50, 1)} / ${fmt(m.server.ops[o]?.latency.p95, 1)}`),
          m.baseline ? ops.map((o) => `${fmt(m.baseline!.ops[o]?.latency.p50, 1)}/${fmt(m.baseline!.ops[o]?.latency.p95, 1)}`).join(', ') : '–',
        ])
      )
    );
    out.push('');
  }
  out.push('## Growth between the two scales');
  out.push('');
  const sc1 = report.scales.find((s) => s.patients === s1);
  const sc2 = report.scales.find((s) => s.patients === s2);
  const change = (a?: number, b?: number) => (a && b ? `${b >= a ? '+' : ''}${fmt(((b - a) / a) * 100)}%` : '–');
  const growthRows: [string, number | undefined, number | undefined, number][] = [
    ['Resources stored', sc1?.resources, sc2?.resources, 0],
    ['Database size (MiB)', sc1?.databaseMiB, sc2?.databaseMiB, 0],
    ['Ingest (resources/s, loading up to this scale)', find(report, 'ingest', 'open', s1)?.server.unitsPerSecond, find(report, 'ingest', 'open', s2)?.server.unitsPerSecond, 0],
    ['Read by id (req/s)', find(report, 'read', 'open', s1)?.server.rps, find(report, 'read', 'open', s2)?.server.rps, 0],
    ['Search mix p50 (ms)', o1?.server.latency.p50, o2?.server.latency.p50, 1],
    ['Search mix p95 (ms)', o1?.server.latency.p95, o2?.server.latency.p95, 1],
  ];
  out.push(
    table(
      ['', `${s1.toLocaleString('en-US')} patients`, `${s2.toLocaleString('en-US')} patients`, 'Change'],
      growthRows.map(([label, a, b, digits]) => [label, fmt(a, digits), fmt(b, digits), change(a, b)])
    )
  );
  out.push('');
  if (report.measurements.some((m) => m.config !== 'open')) {
    out.push('## Cost of a bearer token and of auditing');
    out.push('');
    const rows = (['read', 'search', 'crud', 'ingest'] as const).map((w) => {
      const open = find(report, w, 'open', s2)?.server.unitsPerSecond;
      const token = find(report, w, 'token')?.server.unitsPerSecond;
      const audit = find(report, w, 'token+audit')?.server.unitsPerSecond;
      const cost = (a?: number, b?: number) => (a && b ? `${fmt((1 - b / a) * 100)}%` : '–');
      return [w, fmt(open), fmt(token), fmt(audit), cost(open, token), cost(token, audit), cost(open, audit)];
    });
    out.push(table(['Workload (throughput)', 'open', 'token', 'token+audit', 'Lost to the token', 'Lost to auditing', 'Lost to both'], rows));
    out.push('');
  }
  if (report.validation.length) {
    out.push('## Validation time per resource');
    out.push('');
    const all = report.validation.find((v) => v.resourceType === 'all');
    const ingestCpu = serverCpuMs(find(report, 'ingest', 'open', s2));
    out.push(
      `The server's validator (\`services.validator\`, as installed by the modules) called in-process on generated resources after a warm-up, each patient record as one transaction Bundle is validated (one read of the stored-conformance generation per record): CPU time per resource, and wall-clock percentiles. ` +
        (all && ingestCpu
          ? `On average ${fmt(all.cpuUs)} µs of CPU per resource: ${fmt((all.cpuUs / 1000 / ingestCpu) * 100)}% of the ${fmt(ingestCpu * 1000)} µs of server CPU that ingesting a resource costs in all (validation included).`
          : '')
    );
    out.push('');
    out.push(
      table(
        ['Resource type', 'Resources', 'CPU µs (mean)', 'p50 µs', 'p95 µs', 'p99 µs', 'Invalid'],
        report.validation.map((v) => [v.resourceType, String(v.resources), fmt(v.cpuUs), fmt(v.latencyUs.p50), fmt(v.latencyUs.p95), fmt(v.latencyUs.p99), String(v.invalid)])
      )
    );
    out.push('');
  }
  if (report.explain.length) {
    out.push(`## Query plans at ${s2.toLocaleString('en-US')} patients`);
    out.push('');
    out.push('EXPLAIN ANALYZE of every statement the server\'s search engine runs for each search (captured in-process from the engine itself).');
    out.push('');
    out.push(
      table(
        ['Search', 'Plan', 'Execution ms'],
        report.explain.map((e) => [
          '`' + e.url.replace(/\|/g, '\\|') + '`',
          (e.usesIndexes ? 'index: ' : '**seq scan**: ') + e.verdict.replace(/^index scans /, ''),
          e.statements.map((s) => fmt(s.executionMs, 2)).join(' + '),
        ])
      )
    );
    out.push('');
  }
  if (report.memory.length) {
    out.push('## Peak memory of the server');
    out.push('');
    out.push('VmHWM (peak resident set) of each server process from /proc, over the whole time the server ran.');
    out.push('');
    out.push(
      table(
        ['Config', 'Processes', 'Sum of peaks (MiB)', 'Largest process (MiB)'],
        report.memory.map((m) => [m.config, String(m.processes), fmt(m.totalMiB), fmt(m.largestMiB)])
      )
    );
    out.push('');
  }
  out.push('## Reproduce');
  out.push('');
  out.push('```sh');
  out.push('npm install');
  out.push(`npm run bench${options.profile === 'full' ? ' -- --full' : ''}      # ${options.profile}: ${s1.toLocaleString('en-US')} and ${s2.toLocaleString('en-US')} patients`);
  out.push('```');
  out.push('');
  return out.join('\n');
}

export function writeReport(report: BenchReport, dir: string, name: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-').slice(0, 19);
  const files: string[] = [];
  const json = JSON.stringify({ ...report, targets: targets(report) }, null, 2) + '\n';
  const svg = renderChart(report);
  for (const base of [`${stamp}-${report.options.profile}`, name]) {
    const outputs: [string, string][] = [
      ['json', json],
      ['md', renderMarkdown(report, `${base}.svg`)],
      ['svg', svg],
    ];
    for (const [ext, text] of outputs) {
      const file = path.join(dir, `${base}.${ext}`);
      fs.writeFileSync(file, text);
      files.push(file);
    }
  }
  return files;
}
