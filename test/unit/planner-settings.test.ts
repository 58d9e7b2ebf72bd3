/**
 * What the server sets so that PostgreSQL plans and runs searches quickly: every pooled
 * connection has merge joins off (costing them probes the rid indexes during planning), the
 * search index's multi-column statistics keep short most-common-value lists (migrations/0104),
 * and the compartment indexes have no pending list to scan (0002, 0501).
 */
import pg from 'pg';
import { sql } from '../../src/store/sql';
import { useTestDatabase } from '../helpers/server';
import { setLogLevel } from '../../src/logger';

setLogLevel('error');
const database = useTestDatabase(3);

test('every pooled connection has merge joins off, whatever runs on it first', async () => {
  // Three connections opened at once, the first statement on each a SHOW.
  const shown = await Promise.all([0, 1, 2].map(() => database.db().query<{ enable_mergejoin: string }>(sql`SHOW enable_mergejoin`)));
  expect(database.db().pool.totalCount).toBe(3);
  expect(shown.map((r) => r.rows[0].enable_mergejoin)).toEqual(['off', 'off', 'off']);
  // Inside a transaction too.
  const inTransaction = await database.db().transaction((client) => client.query('SHOW enable_mergejoin'));
  expect(inTransaction.rows[0].enable_mergejoin).toBe('off');
  // PostgreSQL's default is on: the setting is the pool's, not the database's.
  const plain = new pg.Client({ connectionString: database.url() });
  await plain.connect();
  try {
    expect((await plain.query('SHOW enable_mergejoin')).rows[0].enable_mergejoin).toBe('on');
  } finally {
    await plain.end();
  }
});

test('the multi-column statistics of the search index keep 40 most common values', async () => {
  const result = await database.db().query<{ stxname: string; stxstattarget: number }>(
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

test('the compartment indexes take each entry directly, leaving nothing pending for searches to scan', async () => {
  const options = await database.db().query<{ relname: string; reloptions: string[] }>(
    sql`SELECT relname, reloptions FROM pg_class
        WHERE relname IN ('resource_compartments_idx', 'provenance_link_compartments_idx') ORDER BY relname`
  );
  expect(options.rows).toEqual([
    { relname: 'provenance_link_compartments_idx', reloptions: ['fastupdate=off'] },
    { relname: 'resource_compartments_idx', reloptions: ['fastupdate=off'] },
  ]);
  await database.db().query(
    sql`INSERT INTO resource (rid, resource_type, id, version_id, last_updated, content, compartments, method)
        SELECT gen_random_uuid(), 'Observation', 'pending-' || n, 1, now(), '{"resourceType":"Observation"}'::jsonb,
               ARRAY['patient-' || (n % 7)], 'POST'
        FROM generate_series(1, 200) n`
  );
  // gin_clean_pending_list merges and counts the pages pending: with GIN's default (fastupdate) 200 inserts leave some.
  const pending = await database.db().query<{ pages: number }>(sql`SELECT gin_clean_pending_list('resource_compartments_idx'::regclass) AS pages`);
  expect(pending.rows[0].pages).toBe(0);
  const found = await database.db().query<{ n: number }>(sql`SELECT count(*)::int AS n FROM resource WHERE compartments @> ARRAY['patient-3']`);
  expect(found.rows[0].n).toBe(29);
});
