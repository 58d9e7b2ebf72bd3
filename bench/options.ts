/**
 * Command-line options of `npm run bench`. The quick default finishes in about two minutes
 * on a 2-core machine; --full loads 1,000 and then 10,000 patients (about a million
 * resources) and runs each workload longer.
 */
import path from 'node:path';
import { localPoolSize } from '../src/config';

export interface BenchOptions {
  profile: 'quick' | 'full';
  /** Patients loaded at the two measured scales (ascending). */
  scales: [number, number];
  /** Measured seconds per workload, after warmupSeconds. */
  durationSeconds: number;
  warmupSeconds: number;
  concurrency: number;
  /** Server processes (the server's WORKERS), also used by the baseline server. */
  workers: number;
  /** Connections per process (the server's DB_POOL_SIZE), also used by the baseline server. */
  poolSize: number;
  seed: number;
  /** PostgreSQL to use (a scratch database is created in it); unset: an embedded one in a temporary folder. */
  databaseUrl?: string;
  outDir: string;
  /** The stable name of the report written besides the timestamped one (latest.md, latest.json, latest.svg). */
  name: string;
  /** Skip the runs with a bearer token and auditing. */
  skipSecure: boolean;
  /** The secured configurations measured: quick runs only the server's defaults (token and audit). */
  secureConfigs: ('token' | 'token+audit')[];
  /** Node arguments for the server processes, e.g. --cpu-prof (--server-node-args="--cpu-prof --cpu-prof-dir=prof"). */
  serverNodeArgs: string[];
  /** Keep the database (embedded folder or scratch database) afterwards. */
  keep: boolean;
}

export const USAGE = `npm run bench [-- options]

  --full                 1,000 then 10,000 patients, 20 s per workload, token and token+audit runs
                         (default: quick, 100 then 400 patients, 4 s, token+audit only)
  --scales=N1,N2         patients loaded at the two measured scales (1,000 .. 100,000; ~92 resources each)
  --duration=S           measured seconds per workload
  --warmup=S             unmeasured seconds before each workload
  --concurrency=N        concurrent clients (default 10)
  --workers=N            server processes, WORKERS (default: the number of cores)
  --pool-size=N          connections per process, DB_POOL_SIZE, for server and baseline alike
                         (default: what the server uses on a local database, about 2 per core in all)
  --seed=N               data generator seed (default 1)
  --database-url=URL     use this PostgreSQL (a scratch database fhir_bench_* is created and dropped);
                         default: DATABASE_URL, else an embedded PostgreSQL in a temporary folder
  --out=DIR              report folder (default bench/results)
  --name=NAME            stable report name (default latest)
  --skip-secure          skip the runs with a bearer token and auditing on
  --keep                 keep the database afterwards
  --server-node-args=A   node arguments of the server processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
`;

export function parseOptions(argv: string[], cores: number, env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match) throw new Error(`Unknown argument "${arg}"\n\n${USAGE}`);
    flags.set(match[1], match[2] ?? 'true');
  }
  const known = ['full', 'quick', 'scales', 'duration', 'warmup', 'concurrency', 'workers', 'pool-size', 'seed', 'database-url', 'out', 'name', 'skip-secure', 'keep', 'server-node-args', 'help'];
  for (const flag of flags.keys()) {
    if (!known.includes(flag)) throw new Error(`Unknown option --${flag}\n\n${USAGE}`);
  }
  const int = (name: string, fallback: number, min = 1): number => {
    const raw = flags.get(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be an integer ≥ ${min}, got "${raw}"`);
    return value;
  };
  const full = flags.has('full');
  const workers = int('workers', cores);
  let scales: [number, number] = full ? [1_000, 10_000] : [100, 400];
  if (flags.has('scales')) {
    const parts = (flags.get('scales') as string).split(',').map(Number);
    if (parts.length !== 2 || parts.some((n) => !Number.isInteger(n) || n < 1) || parts[0] >= parts[1]) {
      throw new Error('--scales needs two ascending patient counts, e.g. --scales=1000,10000');
    }
    scales = [parts[0], parts[1]];
  }
  return {
    profile: full ? 'full' : 'quick',
    scales,
    durationSeconds: int('duration', full ? 20 : 4),
    warmupSeconds: int('warmup', full ? 3 : 1, 0),
    concurrency: int('concurrency', 10),
    workers,
    poolSize: int('pool-size', localPoolSize(workers, cores)),
    seed: int('seed', 1, 0),
    databaseUrl: flags.get('database-url') ?? (env.DATABASE_URL || undefined),
    outDir: path.resolve(flags.get('out') ?? path.join(__dirname, '..', '..', 'bench', 'results')),
    name: flags.get('name') ?? 'latest',
    skipSecure: flags.has('skip-secure'),
    secureConfigs: full ? ['token', 'token+audit'] : ['token+audit'],
    serverNodeArgs: (flags.get('server-node-args') ?? '').split(/\s+/).filter(Boolean),
    keep: flags.has('keep'),
  };
}
