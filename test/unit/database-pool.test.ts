/**
 * The connection pool keeps idle connections open by default: a new PostgreSQL backend pays for
 * its fork, its catalog caches and its first touch of each shared buffer, so closing connections
 * after a pause made the next burst of requests slower.
 */
import { Database } from '../../src/store/database';
import { loadConfig } from '../../src/config';
import { startServer } from '../../src/server';
import { setLogLevel } from '../../src/logger';
import { useTestDatabase } from '../helpers/server';

setLogLevel('error');
// The observer's pool counts the backends of the pools under test.
const database = useTestDatabase(1);

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Backends of this test database opened by pools named fhir-server, other than the observer's. */
async function backends(): Promise<number> {
  const result = await database.db().pool.query(
    `SELECT count(*) AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'fhir-server' AND pid <> pg_backend_pid()`
  );
  return result.rows[0].n;
}

/** The backend count once it settles: a closed connection's backend exits a moment later. */
async function settledBackends(expected: number): Promise<number> {
  const deadline = Date.now() + 3000;
  let count = await backends();
  while (count !== expected && Date.now() < deadline) {
    await pause(50);
    count = await backends();
  }
  return count;
}

/** Opens `size` connections at once, then lets them go idle. */
async function useConnections(db: Database, size: number): Promise<void> {
  await Promise.all(Array.from({ length: size }, () => db.pool.query('SELECT pg_sleep(0.05)')));
}

// pg's own default closes a connection after 10 s idle: wait past it.
test('idle connections stay open when no idle timeout is set', async () => {
  const db = new Database(database.url(), 3);
  try {
    await useConnections(db, 3);
    await pause(10_500);
    expect(db.pool.totalCount).toBe(3);
    expect(db.pool.idleCount).toBe(3);
    expect(await backends()).toBe(3);
  } finally {
    await db.close();
  }
  expect(await settledBackends(0)).toBe(0);
}, 20_000);

test('an idle timeout closes idle connections, and the pool opens new ones when needed', async () => {
  const db = new Database(database.url(), 2, 200);
  try {
    await useConnections(db, 2);
    expect(db.pool.totalCount).toBe(2);
    await pause(600);
    expect(db.pool.totalCount).toBe(0);
    expect(await settledBackends(0)).toBe(0);
    await useConnections(db, 1);
    expect(db.pool.totalCount).toBe(1);
  } finally {
    await db.close();
  }
});

test('the server passes DB_POOL_IDLE_TIMEOUT to its pools', async () => {
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', DATABASE_URL: database.url(), DB_POOL_IDLE_TIMEOUT: '7' });
  const running = await startServer(config);
  try {
    expect(running.services.db.pool.options.idleTimeoutMillis).toBe(7000);
    expect(running.services.lookupDb.pool.options.idleTimeoutMillis).toBe(7000);
  } finally {
    await running.close();
  }
});
