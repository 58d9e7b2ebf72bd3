/**
 * What the server sets so that PostgreSQL plans searches quickly: every pooled connection has
 * merge joins off (costing them probes the rid indexes during planning), and the search
 * index's multi-column statistics keep short most-common-value lists (migrations/0104).
 */
import pg from 'pg';
import { Database } from '../../src/store/database';
import { sql } from '../../src/store/sql';
import { createTestDatabase, dropTestDatabase } from '../helpers/server';
import { setLogLevel } from '../../src/logger';

let databaseUrl: string;
let db: Database;

beforeAll(async () => {
  setLogLevel('error');
  databaseUrl = await createTestDatabase();
  db = new Database(databaseUrl, 3);
});

afterAll(async () => {
  await db.close();
  await dropTestDatabase(databaseUrl);
});

test('every pooled connection has merge joins off, whatever runs on it first', async () => {
  // Three connections opened at once, the first statement on each a SHOW.
  const shown = await Promise.all([0, 1, 2].map(() => db.query<{ enable_mergejoin: string }>(sql`SHOW enable_mergejoin`)));
  expect(db.pool.totalCount).toBe(3);
  expect(shown.map((r) => r.rows[0].enable_mergejoin)).toEqual(['off', 'off', 'off']);
  // Inside a transaction too.
  const inTransaction = await db.transaction((client) => client.query('SHOW enable_mergejoin'));
  expect(inTransaction.rows[0].enable_mergejoin).toBe('off');
  // PostgreSQL's default is on: the setting is the pool's, not the database's.
  const plain = new pg.Client({ connectionString: databaseUrl });
  await plain.connect();
  try {
    expect((await plain.query('SHOW enable_mergejoin')).rows[0].enable_mergejoin).toBe('on');
  } finally {
    await plain.end();
  }
});

test('the multi-column statistics of the search index keep 40 most common values', async () => {
  const result = await db.query<{ stxname: string; stxstattarget: number }>(
    sql`SELECT stxname, stxstattarget FROM pg_statistic_ext WHERE stxname LIKE 'sp\\_%\\_value\\_stats' ORDER BY stxname`
  );
  expect(result.rows).toEqual([
    { stxname: 'sp_composite_value_stats', stxstattarget: 40 },
    { stxname: 'sp_quantity_value_stats', stxstattarget: 40 },
    { stxname: 'sp_string_value_stats', stxstattarget: 40 },
    { stxname: 'sp_token_value_stats', stxstattarget: 40 },
    { stxname: 'sp_uri_value_stats', stxstattarget: 40 },
  ]);
});
