/**
 * The search index's multi-column statistics (migrations/0103): a token condition on p,
 * system and code is estimated from how often the combination really occurs, not as the
 * product of three independent selectivities. Without them the planner estimates a common
 * category (thousands of rows) at about one row and starts searches from it.
 */
import { randomUUID } from 'node:crypto';
import { useTestDatabaseClient } from '../helpers/server';

const database = useTestDatabaseClient();

async function estimatedRows(text: string, values: unknown[]): Promise<number> {
  const result = await database().query(`EXPLAIN (FORMAT JSON) ${text}`, values);
  return result.rows[0]['QUERY PLAN'][0].Plan['Plan Rows'];
}

test('a frequent (parameter, system, code) combination is estimated near its real count', async () => {
  // 2,000 rows of one parameter, all with one system and code (as DiagnosticReport.category = LAB),
  // among 8,000 rows of other parameters, systems and codes.
  const common = Array.from({ length: 2000 }, () => [randomUUID(), 1, 'http://terminology.hl7.org/CodeSystem/v2-0074', 'LAB']);
  const others = Array.from({ length: 8000 }, (_, i) => [randomUUID(), 2 + (i % 4), `http://example.org/system-${i % 4}`, `code-${i % 400}`]);
  const rows = [...common, ...others];
  await database().query(
    `INSERT INTO sp_token (rid, p, system, code) SELECT * FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::text[])`,
    [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3])]
  );
  await database().query('ANALYZE sp_token');

  const statistics = await database().query(`SELECT stxname FROM pg_statistic_ext WHERE stxrelid = 'sp_token'::regclass`);
  expect(statistics.rows.map((r) => r.stxname)).toContain('sp_token_value_stats');

  // The search engine's form of a token condition: p = ANY(keys) AND system = $ AND code = $.
  const estimate = await estimatedRows('SELECT rid FROM sp_token WHERE p = ANY($1::int4[]) AND system = $2 AND code = $3', [
    [1],
    'http://terminology.hl7.org/CodeSystem/v2-0074',
    'LAB',
  ]);
  // Independent selectivities would give 10,000 × 0.2 × 0.2 × 0.2 = 80 rows.
  expect(estimate).toBeGreaterThan(1000);
  expect(estimate).toBeLessThan(4000);
});
