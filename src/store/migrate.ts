/**
 * Applies the numbered SQL files in migrations/ in order, each once and inside its own
 * transaction. A session-level advisory lock serializes concurrent starters, so two server
 * processes starting together cannot both apply the same migration.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { logger } from '../logger';

/** Arbitrary constant naming this server's migration lock. */
const MIGRATION_LOCK_KEY = 7_340_021;

export const MIGRATIONS_DIR = path.resolve(__dirname, '..', '..', 'migrations');

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const seen = new Set<number>();
  return fs
    .readdirSync(dir)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((file) => {
      const version = Number(file.slice(0, 4));
      if (seen.has(version)) {
        throw new Error(`Two migrations share the number ${version}`);
      }
      seen.add(version);
      return { version, name: file, sql: fs.readFileSync(path.join(dir, file), 'utf8') };
    });
}

/** Returns the names of the migrations it applied. */
export async function migrate(connectionString: string, dir = MIGRATIONS_DIR): Promise<string[]> {
  const client = new pg.Client({ connectionString, application_name: 'fhir-server-migrate' });
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migration (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM schema_migration')).rows.map((r) => r.version)
    );
    for (const migration of listMigrations(dir)) {
      if (done.has(migration.version)) {
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO schema_migration (version, name) VALUES ($1, $2)', [
          migration.version,
          migration.name,
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`Migration ${migration.name} failed: ${(err as Error).message}`);
      }
      applied.push(migration.name);
      logger.info('migration applied', { migration: migration.name });
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
  return applied;
}
