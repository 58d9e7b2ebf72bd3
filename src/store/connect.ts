/**
 * Where the database is: DATABASE_URL, or an embedded PostgreSQL in DATA_DIR holding a
 * database named "fhir" (created on first start).
 */
import pg from 'pg';
import type { Config } from '../config';
import { startEmbeddedPostgres } from './embedded';

export interface DatabaseLocation {
  url: string;
  /** Stops the embedded PostgreSQL, if one was started. */
  stop(): Promise<void>;
}

const EMBEDDED_DATABASE = 'fhir';

export async function locateDatabase(config: Config): Promise<DatabaseLocation> {
  if (config.databaseUrl) {
    return { url: config.databaseUrl, stop: async () => undefined };
  }
  if (config.requireDatabaseUrl) {
    throw new Error('DATABASE_URL is required (REQUIRE_DATABASE_URL=true): this deployment does not start an embedded PostgreSQL');
  }
  const embedded = await startEmbeddedPostgres(config.dataDir);
  try {
    await ensureDatabase(embedded.url, EMBEDDED_DATABASE);
  } catch (err) {
    await embedded.stop();
    throw err;
  }
  const url = new URL(embedded.url);
  url.pathname = '/' + EMBEDDED_DATABASE;
  return { url: url.toString(), stop: () => embedded.stop() };
}

/** Creates the database if it does not exist yet. */
export async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    }
  } finally {
    await client.end();
  }
}
