/**
 * Migrations: applied in order, each once, and serialized when several processes start at
 * the same moment.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { listMigrations, migrate } from '../../src/store/migrate';
import { createTestDatabase, dropTestDatabase } from '../helpers/server';

let scratch: string;
let databaseUrl: string;

beforeAll(async () => {
  databaseUrl = await createTestDatabase({ empty: true });
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'migrations-'));
  fs.writeFileSync(path.join(scratch, '0001_first.sql'), 'CREATE TABLE m_first (id int);');
  // pg_sleep widens the window in which a second migrator could race this one.
  fs.writeFileSync(path.join(scratch, '0002_second.sql'), 'SELECT pg_sleep(0.3); INSERT INTO m_first VALUES (1);');
});
afterAll(async () => {
  fs.rmSync(scratch, { recursive: true, force: true });
  await dropTestDatabase(databaseUrl);
});

test('the project migrations are numbered uniquely and in order', () => {
  const migrations = listMigrations();
  expect(migrations.length).toBeGreaterThan(0);
  const versions = migrations.map((m) => m.version);
  expect(versions).toEqual([...versions].sort((a, b) => a - b));
  expect(new Set(versions).size).toBe(versions.length);
});

test('concurrent migrators apply each migration exactly once', async () => {
  const results = await Promise.all([migrate(databaseUrl, scratch), migrate(databaseUrl, scratch), migrate(databaseUrl, scratch)]);
  const applied = results.flat();
  expect(applied.sort()).toEqual(['0001_first.sql', '0002_second.sql']);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    expect((await client.query('SELECT count(*)::int AS n FROM m_first')).rows[0].n).toBe(1);
    const recorded = await client.query("SELECT name FROM schema_migration WHERE name LIKE '000%_first.sql' OR name LIKE '%second%'");
    expect(recorded.rowCount).toBe(2);
  } finally {
    await client.end();
  }
  expect(await migrate(databaseUrl, scratch)).toEqual([]);
});

test('a failing migration is rolled back entirely and reported', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'migrations-bad-'));
  fs.writeFileSync(path.join(dir, '0001_first.sql'), 'CREATE TABLE m_first (id int);');
  fs.writeFileSync(path.join(dir, '0002_second.sql'), 'SELECT 1;');
  fs.writeFileSync(path.join(dir, '0003_broken.sql'), 'CREATE TABLE m_half (id int); SELECT * FROM no_such_table;');
  await expect(migrate(databaseUrl, dir)).rejects.toThrow(/0003_broken.sql failed/);
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    expect((await client.query("SELECT to_regclass('m_half') AS t")).rows[0].t).toBeNull();
  } finally {
    await client.end();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
