/**
 * One embedded PostgreSQL cluster for the whole test run, and a migrated template database
 * that every test file clones (CREATE DATABASE ... TEMPLATE), so each file gets a fresh,
 * fully migrated database in milliseconds.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig } from '../../src/config';
import { setLogLevel } from '../../src/logger';
import { startServer } from '../../src/server';
import { startEmbeddedPostgres } from '../../src/store/embedded';
import { migrate } from '../../src/store/migrate';

export const TEMPLATE_DATABASE = 'fhir_test_template';

export default async function globalSetup(): Promise<void> {
  if (process.env.TEST_DATABASE_ADMIN_URL) {
    // An existing PostgreSQL given by the developer: only (re)build the template.
    await buildTemplate(process.env.TEST_DATABASE_ADMIN_URL);
    return;
  }
  // A folder of its own per run, so concurrent runs on one machine never share a cluster.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-test-pg-'));
  // PostgreSQL runs as the postgres user when the tests run as root: it must reach the folder.
  fs.chmodSync(dir, 0o755);
  const embedded = await startEmbeddedPostgres(dir);
  (globalThis as Record<string, unknown>).__TEST_PG__ = { embedded, dir };
  process.env.TEST_DATABASE_ADMIN_URL = embedded.url;
  await buildTemplate(embedded.url);
}

async function buildTemplate(adminUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE}`);
  await admin.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = '/' + TEMPLATE_DATABASE;
  await migrate(url.toString());
  // One start on the template stores the profile pack (validated, with its Provenances), so
  // the servers of the test files find it unchanged instead of each writing it again.
  setLogLevel('warn');
  const server = await startServer(loadConfig({ ...process.env, DATABASE_URL: url.toString(), PORT: '0', AUDIT_ENABLED: 'false' }));
  await server.close();
}
