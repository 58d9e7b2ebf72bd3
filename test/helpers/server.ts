/**
 * Starts the real server on a fresh database cloned from the migrated template, for
 * black-box HTTP tests.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/config';
import { startServer, type RunningServer } from '../../src/server';
import { setLogLevel } from '../../src/logger';
import { ADMIN_SCOPES, bootstrapAdminClient } from '../../src/auth/bootstrap';
import { FhirTestClient } from './fhir-client';
import { Database } from '../../src/store/database';

const TEMPLATE_DATABASE = 'fhir_test_template';

export interface TestServer extends RunningServer {
  databaseUrl: string;
  /** A pg pool on the test database, to assert on rows directly. */
  pool: pg.Pool;
  /** The bootstrap admin client's secret (client id "admin"); undefined with AUTH_DISABLED. */
  adminSecret?: string;
  /** A full-access system token (system/*.cruds admin) from the admin client; undefined with AUTH_DISABLED. */
  token?: string;
  /** A client that sends the given token (by default the full-access one). */
  client(token?: string): FhirTestClient;
}

/** A token from the token endpoint with client_credentials and a client secret. */
export async function clientCredentialsToken(baseUrl: string, clientId: string, secret: string, scope: string): Promise<string> {
  const res = await fetch(`${baseUrl}/oauth2/token`, {
    method: 'POST',
    headers: { Authorization: 'Basic ' + Buffer.from(`${clientId}:${secret}`).toString('base64') },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (res.status !== 200 || !body.access_token) {
    throw new Error(`No token for ${clientId}: ${res.status} ${JSON.stringify(body)}`);
  }
  return body.access_token;
}

function adminUrl(): string {
  const url = process.env.TEST_DATABASE_ADMIN_URL;
  if (!url) {
    throw new Error('TEST_DATABASE_ADMIN_URL is not set: run the tests through jest (global setup starts PostgreSQL)');
  }
  return url;
}

/** A fresh database: migrated (cloned from the template) unless `empty` is asked for. */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<string> {
  const name = 'test_' + randomBytes(6).toString('hex');
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}${options.empty ? '' : ` TEMPLATE ${TEMPLATE_DATABASE}`}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl());
  url.pathname = '/' + name;
  return url.toString();
}

export async function dropTestDatabase(databaseUrl: string): Promise<void> {
  const name = new URL(databaseUrl).pathname.slice(1);
  const admin = new pg.Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/**
 * For the tests of one file: a fresh migrated database and the server's own pool on it
 * (a Database of poolSize connections), both gone after the file's tests. Returns getters
 * (both exist from beforeAll): the database's URL, for tests that open pools of their own.
 */
export function useTestDatabase(poolSize: number): { url: () => string; db: () => Database } {
  let databaseUrl: string;
  let db: Database;
  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
    db = new Database(databaseUrl, poolSize);
  });
  afterAll(async () => {
    await db.close();
    await dropTestDatabase(databaseUrl);
  });
  return { url: () => databaseUrl, db: () => db };
}

/**
 * For the tests of one file: a fresh migrated database and a connected client on it, both
 * gone after the file's tests. Returns the client's getter (the client exists from beforeAll).
 */
export function useTestDatabaseClient(): () => pg.Client {
  let databaseUrl: string;
  let client: pg.Client;
  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
    client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
    await dropTestDatabase(databaseUrl);
  });
  return () => client;
}

export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  setLogLevel('error');
  const databaseUrl = await createTestDatabase();
  const config: Config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', DATABASE_URL: databaseUrl, ...env });
  const running = await startServer(config, { explicitBaseUrl: Boolean(env.BASE_URL) });
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  let adminSecret: string | undefined;
  let token: string | undefined;
  if (!config.auth.disabled) {
    // What main.ts does on a first start, then what the printed curl command does.
    adminSecret = await bootstrapAdminClient(running.services.db);
    token = await clientCredentialsToken(running.baseUrl, 'admin', adminSecret as string, ADMIN_SCOPES.join(' '));
  }
  return {
    ...running,
    databaseUrl,
    pool,
    adminSecret,
    token,
    client(withToken = token) {
      return new FhirTestClient(running.baseUrl, withToken ? { Authorization: `Bearer ${withToken}` } : {});
    },
    async close() {
      await pool.end();
      await running.close();
      await dropTestDatabase(databaseUrl);
    },
  };
}
