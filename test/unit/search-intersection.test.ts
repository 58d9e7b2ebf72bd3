/**
 * A search with several filters intersects their rid sets in the search index before it reads
 * any resource row (search/conditions.ts, filtersConditions). Observation?patient&code&date
 * for a patient with hundreds of observations must fetch only the few resources that match
 * every filter, not each of the patient's observations in turn.
 */
import type { RequestContext } from '../../src/fhir/context';
import { loadDefinitions } from '../../src/fhir/definitions';
import { parseSearch, type Filter } from '../../src/search/parse';
import { whereClause } from '../../src/search/query';
import { ridOf } from '../../src/store/rid';
import { useTestDatabaseClient } from '../helpers/server';

const database = useTestDatabaseClient();
beforeAll(() => loadDefinitions());

interface PlanNode {
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  Plans?: PlanNode[];
}

/** Rows read from the resource table, over every loop of every node that reads it. */
function resourceRowsRead(node: PlanNode): number {
  const own = node['Relation Name'] === 'resource' ? node['Actual Rows'] * node['Actual Loops'] : 0;
  return own + (node.Plans ?? []).reduce((sum, child) => sum + resourceRowsRead(child), 0);
}

test('Observation?patient&code&date reads only the matching resource rows', async () => {
  const query = parseSearch(
    ['Observation'],
    [
      ['patient', 'Patient/p1'],
      ['code', 'http://loinc.org|8867-4'],
      ['date', 'ge2023-01-01'],
    ],
    { strict: true, defaultCount: 20, maxCount: 100 }
  );
  const key = (code: string) => (query.filters.find((f) => 'params' in f && f.params[0].code === code) as Filter).params[0].key;
  const [patientKey, codeKey, dateKey] = [key('patient'), key('code'), key('date')];

  const patientRids = Array.from({ length: 51 }, (_, i) => ridOf('Patient', `p${i + 1}`));
  // Patient p1 has 300 observations: 30 heart rates, 10 of them since 2023. 50 other patients
  // have 100 heart rates each, so that starting from the code would be the worse plan.
  await database().query(
    `INSERT INTO resource (rid, resource_type, id, version_id, last_updated, deleted, content, compartments, method)
     SELECT ($1::uuid[])[g], 'Patient', 'p' || g, 1, now(), false, jsonb_build_object('resourceType', 'Patient', 'id', 'p' || g), ARRAY['p' || g], 'POST'
     FROM generate_series(1, 51) g`,
    [patientRids]
  );
  await database().query(
    `INSERT INTO resource (rid, resource_type, id, version_id, last_updated, deleted, content, compartments, method)
     SELECT md5('obs' || g)::uuid, 'Observation', 'o' || g, 1, now(), false, jsonb_build_object('resourceType', 'Observation', 'id', 'o' || g), ARRAY['p1'], 'POST'
     FROM generate_series(1, 5300) g`
  );
  // Observation g belongs to patient 1 for g <= 300, else to patient 2 + (g - 301) / 100.
  await database().query(
    `INSERT INTO sp_reference (rid, p, target_rid, target_type, target_id)
     SELECT md5('obs' || g)::uuid, $1, ($2::uuid[])[CASE WHEN g <= 300 THEN 1 ELSE 2 + (g - 301) / 100 END], 'Patient',
            'p' || (CASE WHEN g <= 300 THEN 1 ELSE 2 + (g - 301) / 100 END)
     FROM generate_series(1, 5300) g`,
    [patientKey, patientRids]
  );
  await database().query(
    `INSERT INTO sp_token (rid, p, system, code)
     SELECT md5('obs' || g)::uuid, $1, 'http://loinc.org', CASE WHEN g <= 300 AND g % 10 <> 0 THEN 'other-' || (g % 10) ELSE '8867-4' END
     FROM generate_series(1, 5300) g`,
    [codeKey]
  );
  await database().query(
    `INSERT INTO sp_date (rid, p, lo, hi)
     SELECT md5('obs' || g)::uuid, $1, d, d
     FROM generate_series(1, 5300) g, LATERAL (SELECT CASE WHEN g <= 100 THEN timestamptz '2024-06-01' ELSE timestamptz '2020-06-01' END + g * interval '1 minute' AS d) x`,
    [dateKey]
  );
  await database().query('ANALYZE resource, sp_reference, sp_token, sp_date');

  const ctx = { access: { readFilter: () => undefined } } as unknown as RequestContext;
  const { text, values } = whereClause(ctx, query).toQuery();
  const sqlText = `SELECT r.rid FROM resource r WHERE ${text}`;
  const matches = await database().query(sqlText, values);
  expect(matches.rows).toHaveLength(10);

  const explained = await database().query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sqlText}`, values);
  const plan = explained.rows[0]['QUERY PLAN'][0].Plan as PlanNode;
  // Each filter as its own `r.rid IN (...)` reads all 300 of p1's observations first.
  expect(resourceRowsRead(plan)).toBeLessThanOrEqual(20);
});
