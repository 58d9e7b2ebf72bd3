/**
 * SearchParameter resources stored through the API become searchable in the running server
 * (and in the CapabilityStatement) without a restart; they never redefine a base parameter;
 * `npm run reindex` (src/search/reindex.ts) fills in values for resources written before,
 * repairs lost index rows, and resumes an interrupted run.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';
import { reindex } from '../../src/search/reindex';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});
afterAll(async () => server.close());

const BIRTH_PLACE = 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace';
const birthCity = {
  resourceType: 'SearchParameter',
  url: 'http://example.org/fhir/SearchParameter/patient-birth-city',
  name: 'BirthCity',
  status: 'active',
  description: 'City of birth',
  code: 'birth-city',
  base: ['Patient'],
  type: 'string',
  expression: `Patient.extension.where(url='${BIRTH_PLACE}').value.city`,
};
const bornIn = (city: string, family: string) => ({
  resourceType: 'Patient',
  name: [{ family }],
  extension: [{ url: BIRTH_PLACE, valueAddress: { city } }],
});

/** Family names of the matches, or 'unknown' while the parameter is not known (a warning outcome). */
async function search(query: string): Promise<string[] | 'unknown'> {
  const res = await client.get(query);
  expect(res.status).toBe(200);
  if (res.body.entry?.some((e: any) => e.search.mode === 'outcome')) return 'unknown';
  return (res.body.entry ?? []).map((e: any) => e.resource.name[0].family).sort();
}

/** Changes reach the search engine through PostgreSQL NOTIFY, a moment after the commit. */
async function until<T>(probe: () => Promise<T>, accept: (value: T) => boolean): Promise<T> {
  let value = await probe();
  for (let i = 0; i < 200 && !accept(value); i++) {
    await new Promise((r) => setTimeout(r, 25));
    value = await probe();
  }
  return value;
}

const capabilityParams = async (type: string): Promise<string[]> => {
  const statement = (await client.get('metadata')).body;
  return statement.rest[0].resource.find((r: any) => r.type === type).searchParam.map((p: any) => p.name);
};

describe('stored SearchParameter resources', () => {
  let spId: string;

  test('an active SearchParameter becomes searchable and listed; resources written before need a reindex', async () => {
    await client.post('Patient', bornIn('Hangzhou', 'Early'));
    expect(await search('Patient?birth-city=hang')).toBe('unknown');
    expect(await capabilityParams('Patient')).not.toContain('birth-city');

    const created = await client.post('SearchParameter', birthCity);
    expect(created.status).toBe(201);
    spId = created.body.id;
    // Known now, but the patient written before has no values yet.
    expect(await until(() => search('Patient?birth-city=hang'), (v) => v !== 'unknown')).toEqual([]);
    expect(await capabilityParams('Patient')).toContain('birth-city');

    await client.post('Patient', bornIn('Hangzhou', 'Late'));
    await client.post('Patient', bornIn('Chengdu', 'Other'));
    expect(await search('Patient?birth-city=hang')).toEqual(['Late']);

    const result = await reindex(server.services.db, { types: ['Patient'], profilesDir: server.services.config.profilesDir, baseUrl: server.baseUrl });
    expect(result.reindexed).toEqual([{ resourceType: 'Patient', resources: 3 }]);
    expect(await search('Patient?birth-city=hang')).toEqual(['Early', 'Late']);
    expect(await search('Patient?birth-city:exact=Chengdu')).toEqual(['Other']);
    expect(await search('Patient?_sort=-birth-city&birth-city:missing=false')).toEqual(['Early', 'Late', 'Other'].sort());
  });

  test('a stored SearchParameter never redefines a base one, and drafts stay inactive', async () => {
    const clash = await client.post('SearchParameter', {
      ...birthCity,
      url: 'http://example.org/fhir/SearchParameter/patient-name-clash',
      code: 'name',
      expression: 'Patient.gender',
    });
    expect(clash.status).toBe(201);
    await client.post('SearchParameter', { ...birthCity, url: 'http://example.org/fhir/SearchParameter/draft', code: 'draft-city', status: 'draft' });
    // Wait for the reload those writes cause: a marker parameter created last becomes known.
    await client.post('SearchParameter', { ...birthCity, url: 'http://example.org/fhir/SearchParameter/marker', code: 'marker-city' });
    expect(await until(() => search('Patient?marker-city=x'), (v) => v !== 'unknown')).toEqual([]);
    expect(await search('Patient?name=early')).toEqual(['Early']);
    expect(await search('Patient?name=female')).toEqual([]);
    expect(await search('Patient?draft-city=hang')).toBe('unknown');
  });

  test('deleting the SearchParameter removes the parameter', async () => {
    expect((await client.delete(`SearchParameter/${spId}`)).status).toBe(204);
    expect(await until(() => search('Patient?birth-city=hang'), (v) => v === 'unknown')).toBe('unknown');
    expect(await capabilityParams('Patient')).not.toContain('birth-city');
  });
});

describe('reindex', () => {
  const rowsOf = async (rid: string) =>
    (await server.pool.query('SELECT count(*)::int AS n FROM sp_token WHERE rid = $1', [rid])).rows[0].n +
    (await server.pool.query('SELECT count(*)::int AS n FROM sp_string WHERE rid = $1', [rid])).rows[0].n;

  test('rebuilds lost rows, in batches, and resumes an interrupted run where it stopped', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await client.post('Organization', { resourceType: 'Organization', name: `Clinic ${i}`, identifier: [{ system: 'urn:org', value: String(i) }] })).body.id);
    }
    const rids = (await server.pool.query(`SELECT rid FROM resource WHERE resource_type = 'Organization' ORDER BY last_updated, rid`)).rows.map((r) => r.rid);
    const expected = await rowsOf(rids[0]);
    expect(expected).toBeGreaterThan(0);
    for (const table of ['sp_token', 'sp_string', 'sp_date', 'sp_reference', 'sp_uri']) {
      await server.pool.query(`DELETE FROM ${table} WHERE rid = ANY($1::uuid[])`, [rids]);
    }
    expect((await client.get('Organization?identifier=urn:org|3')).body.entry ?? []).toEqual([]);

    // Interrupted after the second batch of two.
    let batches = 0;
    await expect(
      reindex(server.services.db, {
        types: ['Organization'],
        batchSize: 2,
        profilesDir: server.services.config.profilesDir,
        baseUrl: server.baseUrl,
        onProgress: () => {
          if (++batches === 2) throw new Error('interrupted');
        },
      })
    ).rejects.toThrow('interrupted');
    const progress = (await server.pool.query(`SELECT resources, finished_at FROM search_reindex_progress WHERE resource_type = 'Organization'`)).rows[0];
    expect(progress).toEqual({ resources: 4, finished_at: null });
    expect(await rowsOf(rids[0])).toBe(expected);
    expect(await rowsOf(rids[4])).toBe(0);

    const resumed = await reindex(server.services.db, { types: ['Organization'], batchSize: 2, profilesDir: server.services.config.profilesDir, baseUrl: server.baseUrl });
    // The total counts the batches of the interrupted run as well.
    expect(resumed.reindexed).toEqual([{ resourceType: 'Organization', resources: 5 }]);
    for (const rid of rids) expect(await rowsOf(rid)).toBe(expected);
    expect((await client.get('Organization?identifier=urn:org|3')).body.entry.map((e: any) => e.resource.id)).toEqual([ids[3]]);
    expect((await server.pool.query('SELECT count(*)::int AS n FROM search_reindex_progress')).rows[0].n).toBe(0);
  });

  test('a full run over every type records the parameter fingerprint', async () => {
    await server.pool.query(`UPDATE search_index_state SET fingerprint = 'stale'`);
    const result = await reindex(server.services.db, { profilesDir: server.services.config.profilesDir, baseUrl: server.baseUrl });
    expect(result.reindexed.map((r) => r.resourceType)).toEqual(expect.arrayContaining(['Organization', 'Patient', 'SearchParameter']));
    const state = (await server.pool.query('SELECT fingerprint FROM search_index_state')).rows[0];
    expect(state.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  test('npm run reindex runs it from the command line and reports what it did', async () => {
    const cli = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'reindex.js');
    if (!fs.existsSync(cli)) throw new Error('dist/cli/reindex.js is missing: run `npm run build` first (npm test does)');
    const env = { ...process.env, DATABASE_URL: server.databaseUrl, BASE_URL: server.baseUrl, LOG_LEVEL: 'error' };
    await client.post('Organization', { resourceType: 'Organization', name: 'Via CLI' });
    const count = (await server.pool.query(`SELECT count(*)::int AS n FROM resource WHERE resource_type = 'Organization' AND NOT deleted`)).rows[0].n;
    const { stdout } = await promisify(execFile)(process.execPath, [cli, '--type', 'Organization', '--batch', '2'], { env });
    expect(stdout).toContain(`Organization: ${count} resources reindexed`);
    const bad = promisify(execFile)(process.execPath, [cli, '--type', 'Nope'], { env });
    await expect(bad).rejects.toMatchObject({ stderr: expect.stringMatching(/Unknown resource type "Nope"/) });
  });
});
