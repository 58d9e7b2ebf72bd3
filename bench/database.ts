/**
 * The benchmark's database: a scratch database on DATABASE_URL's server, or an embedded
 * PostgreSQL in a temporary folder (as `npm start` would run one), migrated like the server
 * does, plus the baseline's own table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ensureDatabase } from '../src/store/connect';
import { startEmbeddedPostgres } from '../src/store/embedded';
import { migrate } from '../src/store/migrate';
import { RAW_TABLE_DDL } from './baseline/server';
import { ROOT, treeCpuSeconds } from './processes';

/**
 * The embedded cluster's settings for the benchmark, sized for the machine as PostgreSQL's
 * documentation advises (shared_buffers a quarter of the memory; effective_cache_size what the
 * OS cache can hold besides it): its defaults suit a small machine (128 MB of shared buffers,
 * so at 10,000 patients nearly every index page comes from the OS cache through a system call;
 * a checkpoint every 1 GB of WAL, after which each page written first goes to the WAL whole).
 * Durability is untouched: synchronous_commit and fsync keep their defaults (on).
 */
export function benchPostgresSettings(memoryBytes = os.totalmem()): Record<string, string> {
  const mib = Math.floor(memoryBytes / 1048576);
  const sharedMiB = Math.max(128, Math.min(8192, Math.floor(mib / 4)));
  return {
    shared_buffers: `${sharedMiB}MB`,
    effective_cache_size: `${Math.max(sharedMiB, Math.floor((mib * 3) / 4))}MB`,
    max_wal_size: '8GB',
    checkpoint_timeout: '30min',
  };
}

export interface BenchDatabase {
  url: string;
  description: string;
  /** The settings that differ from PostgreSQL's defaults, for the report. */
  settings: string;
  version: string;
  /**
   * CPU seconds PostgreSQL has used so far (postmaster, backends, background processes), when
   * it runs on this machine under the harness (the embedded cluster); undefined for DATABASE_URL.
   */
  cpuSeconds?: () => number;
  close(keep: boolean): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = '/' + name;
  return u.toString();
}

export async function openBenchDatabase(databaseUrl: string | undefined): Promise<BenchDatabase> {
  let url: string;
  let description: string;
  let close: (keep: boolean) => Promise<void>;
  let settings = 'its own settings';
  let cpuSeconds: (() => number) | undefined;
  if (databaseUrl) {
    const name = `fhir_bench_${Date.now().toString(36)}`;
    await ensureDatabase(databaseUrl, name);
    url = withDatabase(databaseUrl, name);
    description = `scratch database ${name} on DATABASE_URL's server`;
    close = async (keep) => {
      if (keep) return;
      const admin = new pg.Client({ connectionString: databaseUrl });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    };
  } else {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-bench-'));
    // PostgreSQL runs as the postgres user when the harness runs as root: it must reach the folder.
    fs.chmodSync(dir, 0o755);
    const postgresSettings = benchPostgresSettings();
    const embedded = await startEmbeddedPostgres(dir, postgresSettings);
    await ensureDatabase(embedded.url, 'fhir');
    url = withDatabase(embedded.url, 'fhir');
    description = `embedded PostgreSQL in ${dir}`;
    // startEmbeddedPostgres keeps the cluster in <dir>/postgres; the first line of postmaster.pid is its pid.
    const postmaster = Number(fs.readFileSync(path.join(dir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (Number.isInteger(postmaster) && postmaster > 0) cpuSeconds = () => treeCpuSeconds(postmaster);
    settings = Object.entries(postgresSettings)
      .map(([name, value]) => `${name}=${value}`)
      .join(', ');
    close = async (keep) => {
      await embedded.stop();
      if (!keep) fs.rmSync(dir, { recursive: true, force: true });
    };
  }
  await migrate(url, path.join(ROOT, 'migrations'));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(RAW_TABLE_DDL);
  const version = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0].server_version;
  await client.end();
  return { url, description, settings, version, cpuSeconds, close };
}
