/**
 * `npm run bench`: starts PostgreSQL, the FHIR server (dist/main.js, as `npm start` runs it)
 * and the raw-PostgreSQL baseline server; loads generated patients to two scales; drives
 * every workload from a separate load-generating process against both servers in turn; and
 * writes the report (Markdown, JSON, SVG) to bench/results/.
 *
 * Phases: (1) open server (AUTH_DISABLED, no audit): ingest to scale 1, read and search;
 * ingest to scale 2, read, CRUD, search, EXPLAIN; (2) the same server with a bearer token,
 * then with a token and auditing (the server's defaults), so their cost is visible;
 * (3) validation time per resource, in-process, on an idle machine.
 */
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ClientStore } from '../src/auth/clients';
import { setLogLevel } from '../src/logger';
import { Database } from '../src/store/database';
import { freePort } from '../src/store/embedded';
import { referenceData } from './data/generator';
import { OID } from './data/national';
import { openBenchDatabase, type BenchDatabase } from './database';
import { explainSearches, openServices, timeValidation } from './inprocess';
import { LoadGenerator } from './loadgen/client';
import { SEARCHES, type PatientFixture, type RunResult, type RunSpec, type Target, type WorkloadSpec } from './loadgen/protocol';
import { parseOptions, USAGE, type BenchOptions } from './options';
import { machineCpu, ROOT, startProcess, type ServerProcess } from './processes';
import { writeReport, type BenchReport, type CpuPerUnit, type Measurement, type SecurityConfig } from './report';

process.env.PROFILES_DIR ??= path.join(ROOT, 'profiles');

const log = (message: string) => process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

interface Context {
  options: BenchOptions;
  db: BenchDatabase;
  loadgen: LoadGenerator;
  baseline: ServerProcess;
  report: BenchReport;
}

const SECURITY_ENV: Record<SecurityConfig, Record<string, string>> = {
  open: { AUTH_DISABLED: 'true', AUDIT_ENABLED: 'false' },
  token: { AUTH_DISABLED: 'false', AUDIT_ENABLED: 'false' },
  'token+audit': { AUTH_DISABLED: 'false', AUDIT_ENABLED: 'true' },
};

async function startFhirServer(ctx: Context, config: SecurityConfig): Promise<ServerProcess & { target: Target }> {
  const port = await freePort();
  const server = await startProcess(
    `fhir (${config})`,
    path.join(ROOT, 'dist', 'main.js'),
    { ...SECURITY_ENV[config], DATABASE_URL: ctx.db.url, WORKERS: String(ctx.options.workers), DB_POOL_SIZE: String(ctx.options.poolSize), LOG_LEVEL: 'error', BASE_URL: `http://127.0.0.1:${port}/fhir` },
    port,
    '/fhir/metadata',
    ctx.options.serverNodeArgs
  );
  let headers: Record<string, string> = {};
  if (config !== 'open') headers = { authorization: `Bearer ${await benchToken(ctx, server.origin)}` };
  return { ...server, target: { kind: 'fhir', origin: server.origin, basePath: '/fhir', headers } };
}

/** A backend-service client (system/*.cruds) and a token from the server's token endpoint. */
async function benchToken(ctx: Context, origin: string): Promise<string> {
  const db = new Database(ctx.db.url, 1);
  const clients = new ClientStore(db);
  try {
    const clientId = `bench-${Date.now()}`;
    const { secret } = await clients.create({ clientId, name: 'Benchmark loader', type: 'confidential-symmetric', scopes: ['system/*.cruds'] });
    const res = await fetch(`${origin}/fhir/oauth2/token`, {
      method: 'POST',
      headers: { authorization: 'Basic ' + Buffer.from(`${clientId}:${secret}`).toString('base64') },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/*.cruds' }),
    });
    const body = (await res.json()) as { access_token?: string };
    if (!body.access_token) throw new Error(`No token: ${res.status} ${JSON.stringify(body)}`);
    return body.access_token;
  } finally {
    await db.close();
  }
}

function spec(ctx: Context, name: string, target: Target, workload: WorkloadSpec, durationSeconds = ctx.options.durationSeconds): RunSpec {
  const warmup = workload.kind === 'ingest' ? 0 : ctx.options.warmupSeconds;
  return { name, target, concurrency: ctx.options.concurrency, durationMs: durationSeconds * 1000, warmupMs: warmup * 1000, workload };
}

/**
 * Counts the CPU one run costs, by side: the server under test (or the baseline server),
 * PostgreSQL (embedded only), the load generator, and the machine as a whole. start() is
 * called when the load generator's warm-up ends, so that the CPU and the requests counted
 * cover the same period.
 */
function cpuMeter(ctx: Context, server: ServerProcess) {
  const read = () => ({ server: server.cpuSeconds(), postgres: ctx.db.cpuSeconds?.(), loadgen: ctx.loadgen.cpuSeconds(), machine: machineCpu() });
  let before: ReturnType<typeof read> | undefined;
  return {
    start: () => {
      before = read();
    },
    /** CPU ms per unit of work since start(), and how busy the machine was meanwhile. */
    stop(units: number): { perUnit?: CpuPerUnit; machineBusyPercent?: number } {
      if (!before) return {};
      const after = read();
      const wall = after.machine.total - before.machine.total;
      const per = (a: number, b: number) => round(((a - b) * 1000) / units, 3);
      return {
        perUnit: units
          ? {
              server: per(after.server, before.server),
              ...(after.postgres !== undefined && before.postgres !== undefined && { postgres: per(after.postgres, before.postgres) }),
              loadgen: per(after.loadgen, before.loadgen),
            }
          : undefined,
        machineBusyPercent: wall > 0 ? round(((after.machine.busy - before.machine.busy) / wall) * 100, 1) : undefined,
      };
    },
  };
}

/** Runs a workload on the server and then, when given, the same on the baseline, and records both. */
async function measure(
  ctx: Context,
  server: ServerProcess & { target: Target },
  m: { workload: Measurement['workload']; config: SecurityConfig; scale: number },
  workload: WorkloadSpec,
  baselineWorkload?: WorkloadSpec,
  durationSeconds?: number
): Promise<Measurement> {
  const name = `${m.workload} (${m.config}, ${m.scale} patients)`;
  if (baselineWorkload && m.workload !== 'crud') await warmCache(ctx, name, baselineWorkload);
  const meter = cpuMeter(ctx, server);
  const result = await ctx.loadgen.run(spec(ctx, name, server.target, workload, durationSeconds), meter.start);
  const { perUnit: serverCpu, machineBusyPercent } = meter.stop(result.units);
  let baseline: RunResult | undefined;
  let baselineCpu: CpuPerUnit | undefined;
  if (baselineWorkload) {
    const target: Target = { kind: 'raw', origin: ctx.baseline.origin, basePath: '/raw' };
    const baselineMeter = cpuMeter(ctx, ctx.baseline);
    baseline = await ctx.loadgen.run(spec(ctx, `${name} baseline`, target, baselineWorkload, durationSeconds), baselineMeter.start);
    baselineCpu = baselineMeter.stop(baseline.units).perUnit;
  }
  const measurement: Measurement = {
    ...m,
    server: result,
    baseline,
    ratio: baseline ? round(result.unitsPerSecond / Math.max(baseline.unitsPerSecond, 0.001), 3) : undefined,
    cpu: serverCpu,
    baselineCpu,
    machineBusyPercent,
  };
  ctx.report.measurements.push(measurement);
  const unit = m.workload === 'ingest' ? 'resources/s' : 'req/s';
  log(
    `${name}: ${result.unitsPerSecond} ${unit}, p50 ${result.latency.p50} ms, p95 ${result.latency.p95} ms, p99 ${result.latency.p99} ms, ` +
      `${result.errors} errors${baseline ? `; baseline ${baseline.unitsPerSecond} ${unit} (ratio ${measurement.ratio})` : ''}`
  );
  for (const sample of [...result.errorSamples, ...(baseline?.errorSamples ?? [])].slice(0, 3)) log(`  error: ${sample}`);
  return measurement;
}

/**
 * Reads and searches touch a random sample of a database larger than PostgreSQL's buffers:
 * whichever side runs first would pay for bringing the sample's pages in, and the other would
 * find them there. An unmeasured pass of the baseline over the same sample first puts both
 * on warm pages (the CRUD mix writes new rows of its own and needs none).
 */
async function warmCache(ctx: Context, name: string, workload: WorkloadSpec): Promise<void> {
  const target: Target = { kind: 'raw', origin: ctx.baseline.origin, basePath: '/raw' };
  const seconds = Math.max(3, ctx.options.warmupSeconds * 2);
  await ctx.loadgen.run({ ...spec(ctx, `${name} cache warm-up`, target, workload, seconds), warmupMs: 0 });
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

async function query<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Statistics and visibility maps as autovacuum would have them shortly after a bulk load, and
 * the load's dirty pages written out, so that neither side's measurement pays for the load's
 * checkpoint; and what was loaded.
 */
async function settle(ctx: Context, patients: number): Promise<void> {
  await query(ctx.db.url, 'VACUUM ANALYZE');
  // Needs superuser or pg_checkpoint, which a DATABASE_URL's role may lack.
  await query(ctx.db.url, 'CHECKPOINT').catch((err: Error) => log(`CHECKPOINT skipped: ${err.message}`));
  const [counts] = await query<{ resources: number; bytes: string }>(
    ctx.db.url,
    `SELECT (SELECT count(*) FROM resource WHERE NOT deleted)::int AS resources, pg_database_size(current_database())::text AS bytes`
  );
  ctx.report.scales.push({ patients, resources: counts.resources, databaseMiB: Math.round(Number(counts.bytes) / 1048576) });
  log(`${patients} patients loaded: ${counts.resources} resources, database ${Math.round(Number(counts.bytes) / 1048576)} MiB`);
}

async function fixtures(ctx: Context): Promise<{ patients: PatientFixture[]; refs: { type: string; id: string; rid: string }[] }> {
  const patients = (
    await query<{ id: string; content: { identifier?: { system?: string; value?: string }[]; name?: { family?: string }[]; birthDate?: string } }>(
      ctx.db.url,
      `SELECT id, content FROM resource WHERE resource_type = 'Patient' AND NOT deleted AND content ? 'birthDate' ORDER BY random() LIMIT 1000`
    )
  ).map((row) => ({
    id: row.id,
    residentId: row.content.identifier?.find((i) => i.system === OID.residentId)?.value ?? '',
    family: row.content.name?.[0]?.family ?? '',
    birthDate: row.content.birthDate ?? '',
  }));
  // A random sample of every stored resource, so reads follow the data's mix of types.
  const refs = (
    await query<{ resource_type: string; id: string; rid: string }>(
      ctx.db.url,
      `SELECT resource_type, id, rid::text FROM resource TABLESAMPLE SYSTEM (5) WHERE NOT deleted AND resource_type <> 'AuditEvent' LIMIT 20000`
    )
  ).map((row) => ({ type: row.resource_type, id: row.id, rid: row.rid }));
  return { patients, refs };
}

async function loadReferenceData(server: ServerProcess & { target: Target }): Promise<void> {
  const res = await fetch(`${server.origin}/fhir`, {
    method: 'POST',
    headers: { 'content-type': 'application/fhir+json', ...server.target.headers },
    body: JSON.stringify(referenceData()),
  });
  if (res.status !== 200) throw new Error(`Loading the reference data failed: ${res.status} ${await res.text()}`);
}

async function ingest(ctx: Context, server: ServerProcess & { target: Target }, config: SecurityConfig, from: number, to: number): Promise<void> {
  const { seed } = ctx.options;
  // The whole range is loaded, however long it takes; then the baseline ingests the same records for a workload period.
  const long = 24 * 3600;
  const m = await measure(ctx, server, { workload: 'ingest', config, scale: to }, { kind: 'ingest', seed, from, to }, undefined, long);
  const seconds = ctx.options.durationSeconds;
  const target: Target = { kind: 'raw', origin: ctx.baseline.origin, basePath: '/raw' };
  const meter = cpuMeter(ctx, ctx.baseline);
  m.baseline = await ctx.loadgen.run(spec(ctx, `ingest baseline`, target, { kind: 'ingest', seed, from, to }, seconds), meter.start);
  m.baselineCpu = meter.stop(m.baseline.units).perUnit;
  m.ratio = round(m.server.unitsPerSecond / Math.max(m.baseline.unitsPerSecond, 0.001), 3);
  log(`  ingest baseline ${m.baseline.unitsPerSecond} resources/s (ratio ${m.ratio})`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help')) {
    process.stdout.write(USAGE);
    return;
  }
  const options = parseOptions(argv, os.cpus().length);
  setLogLevel('warn');
  const started = new Date();
  const [s1, s2] = options.scales;
  log(`profile ${options.profile}: scales ${s1} and ${s2} patients, ${options.durationSeconds} s per workload, ${options.concurrency} clients, ${options.workers} workers, ${options.poolSize} connections each`);

  const report: BenchReport = {
    startedAt: started.toISOString(),
    finishedAt: '',
    options: { ...options, databaseUrl: options.databaseUrl ? '(given)' : undefined },
    machine: {
      cores: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
      node: process.version,
      postgres: '',
      database: '',
      loadBefore: os.loadavg(),
      loadAfter: [],
    },
    scales: [],
    measurements: [],
    explain: [],
    validation: [],
    memory: [],
  };

  const db = await openBenchDatabase(options.databaseUrl);
  report.machine.postgres = db.version;
  report.machine.database = db.description;
  report.machine.postgresSettings = db.settings;
  log(`database: ${db.description} (PostgreSQL ${db.version})`);
  const loadgen = new LoadGenerator();
  const basePort = await freePort();
  const baseline = await startProcess(
    'baseline',
    path.join(__dirname, 'baseline', 'server.js'),
    { DATABASE_URL: db.url, WORKERS: String(options.workers), DB_POOL_SIZE: String(options.poolSize) },
    basePort,
    '/raw/resource/00000000-0000-0000-0000-000000000000'
  );
  const ctx: Context = { options, db, loadgen, baseline, report };
  const servers: ServerProcess[] = [baseline];
  try {
    // ---- open server: the two scales -------------------------------------------------
    let server = await startFhirServer(ctx, 'open');
    servers.push(server);
    await loadReferenceData(server);
    await ingest(ctx, server, 'open', 0, s1);
    await settle(ctx, s1);
    let data = await fixtures(ctx);
    const readSpec = (): WorkloadSpec => ({ kind: 'read', refs: data.refs });
    const searchSpec = (): WorkloadSpec => ({ kind: 'search', patients: data.patients, searches: [...SEARCHES] });
    await measure(ctx, server, { workload: 'read', config: 'open', scale: s1 }, readSpec(), readSpec());
    await measure(ctx, server, { workload: 'search', config: 'open', scale: s1 }, searchSpec(), searchSpec());

    await ingest(ctx, server, 'open', s1, s2);
    await settle(ctx, s2);
    data = await fixtures(ctx);
    const crudSpec = (offset: number): WorkloadSpec => ({ kind: 'crud', seed: options.seed, patientIds: data.patients.map((p) => p.id), offset });
    await measure(ctx, server, { workload: 'read', config: 'open', scale: s2 }, readSpec(), readSpec());
    await measure(ctx, server, { workload: 'crud', config: 'open', scale: s2 }, crudSpec(0), crudSpec(0));
    await measure(ctx, server, { workload: 'search', config: 'open', scale: s2 }, searchSpec(), searchSpec());
    report.memory.push({ config: 'open', ...server.peakMemory() });
    await server.stop();

    // ---- EXPLAIN of the common searches at scale 2 ---------------------------------------
    const handle = await openServices(db.url);
    try {
      report.explain = await explainSearches(handle.services, data.patients[0], SEARCHES);
      for (const e of report.explain) log(`EXPLAIN ${e.search}: ${e.verdict}`);
    } finally {
      await handle.close();
    }

    // ---- the cost of a bearer token, and of auditing ----------------------------------------
    if (!options.skipSecure) {
      let offset = 1_000_000;
      for (const config of options.secureConfigs) {
        server = await startFhirServer(ctx, config);
        servers.push(server);
        await measure(ctx, server, { workload: 'read', config, scale: s2 }, readSpec());
        await measure(ctx, server, { workload: 'search', config, scale: s2 }, searchSpec());
        await measure(ctx, server, { workload: 'crud', config, scale: s2 }, crudSpec(offset));
        offset += 1_000_000;
        // A short ingest of new patients beyond scale 2.
        const from = s2 + (config === 'token' ? 0 : 10_000);
        await measure(ctx, server, { workload: 'ingest', config, scale: s2 }, { kind: 'ingest', seed: options.seed, from, to: from + 10_000 });
        report.memory.push({ config, ...server.peakMemory() });
        await server.stop();
      }
    }

    // ---- validation time per resource, in-process, with the servers idle ---------------------
    const validationHandle = await openServices(db.url);
    try {
      report.validation = await timeValidation(validationHandle.services, options.seed, options.profile === 'full' ? 100 : 30);
      const all = report.validation.find((v) => v.resourceType === 'all')!;
      log(`validation: ${all.resources} resources, ${all.cpuUs} µs CPU each on average, p50 ${all.latencyUs.p50} µs, p95 ${all.latencyUs.p95} µs`);
    } finally {
      await validationHandle.close();
    }
  } finally {
    for (const s of servers) await s.stop().catch(() => undefined);
    await loadgen.close();
    await db.close(options.keep);
  }
  report.machine.loadAfter = os.loadavg();
  report.finishedAt = new Date().toISOString();
  const files = writeReport(report, options.outDir, options.name);
  log(`report: ${files.join(', ')} (${Math.round((Date.now() - started.getTime()) / 1000)} s)`);
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
