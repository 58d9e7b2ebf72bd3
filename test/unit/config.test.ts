/**
 * Settings read from the environment: the defaults that depend on where PostgreSQL runs.
 */
import { loadConfig, localPoolSize } from '../../src/config';

test('the embedded database gets about two connections per core in all, shared by the workers', () => {
  expect(localPoolSize(1, 2)).toBe(5);
  expect(localPoolSize(2, 2)).toBe(3);
  expect(localPoolSize(8, 2)).toBe(2);
  expect(localPoolSize(4, 16)).toBe(9);
  expect(loadConfig({ WORKERS: '2' }).dbPoolSize).toBe(localPoolSize(2));
});

test('a PostgreSQL server of its own keeps 10 per process unless DB_POOL_SIZE says otherwise', () => {
  expect(loadConfig({ DATABASE_URL: 'postgresql://db/fhir', WORKERS: '2' }).dbPoolSize).toBe(10);
  expect(loadConfig({ DATABASE_URL: 'postgresql://db/fhir', DB_POOL_SIZE: '4' }).dbPoolSize).toBe(4);
  expect(loadConfig({ DB_POOL_SIZE: '7' }).dbPoolSize).toBe(7);
});

test('prepared statements are on unless DB_PREPARED_STATEMENTS=false', () => {
  expect(loadConfig({}).dbPreparedStatements).toBe(true);
  expect(loadConfig({ DB_PREPARED_STATEMENTS: 'false' }).dbPreparedStatements).toBe(false);
});

test('pooled connections stay open while idle unless DB_POOL_IDLE_TIMEOUT sets seconds', () => {
  expect(loadConfig({}).dbPoolIdleTimeout).toBe(0);
  expect(loadConfig({ DB_POOL_IDLE_TIMEOUT: '30' }).dbPoolIdleTimeout).toBe(30);
  expect(() => loadConfig({ DB_POOL_IDLE_TIMEOUT: '-1' })).toThrow(/DB_POOL_IDLE_TIMEOUT/);
});
