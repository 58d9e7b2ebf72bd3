/**
 * A write sends its resource, history and search index rows as one statement (data-modifying
 * WITH parts sharing a snapshot): an update must replace a resource's index rows, never keep
 * the old ones beside the new or lose both, and a delete must remove them.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';
import { ridOf } from '../../src/store/rid';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});

afterAll(async () => {
  await server.close();
});

async function tokenRows(rid: string): Promise<string[]> {
  const result = await server.pool.query<{ code: string }>('SELECT code FROM sp_token WHERE rid = $1 AND code IS NOT NULL ORDER BY code', [rid]);
  return result.rows.map((r) => r.code);
}

async function identifierSearch(value: string): Promise<string[]> {
  const res = await client.get(`Patient?identifier=urn:oid:2.16.156.10011.1.13|${value}`);
  expect(res.status).toBe(200);
  return (res.body.entry ?? []).map((e: any) => e.resource.id);
}

test('create, update and delete keep exactly the current version in the index', async () => {
  const created = await client.post('Patient', {
    resourceType: 'Patient',
    identifier: [{ system: 'urn:oid:2.16.156.10011.1.13', value: 'IDX-OLD' }],
    gender: 'female',
  });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  const rid = ridOf('Patient', id);
  expect(await tokenRows(rid)).toEqual(['IDX-OLD', 'false', 'female'].sort());
  const history = await server.pool.query('SELECT version_id, method FROM resource_version WHERE rid = $1', [rid]);
  expect(history.rows).toEqual([{ version_id: 1, method: 'POST' }]);
  // A version is stored once: the current one in resource, replaced ones in resource_history.
  expect((await server.pool.query('SELECT 1 FROM resource_history WHERE rid = $1', [rid])).rows).toEqual([]);

  const updated = await client.put(`Patient/${id}`, {
    resourceType: 'Patient',
    id,
    identifier: [{ system: 'urn:oid:2.16.156.10011.1.13', value: 'IDX-NEW' }],
    gender: 'male',
  });
  expect(updated.status).toBe(200);
  expect(await tokenRows(rid)).toEqual(['IDX-NEW', 'false', 'male'].sort());
  expect(await identifierSearch('IDX-OLD')).toEqual([]);
  expect(await identifierSearch('IDX-NEW')).toEqual([id]);
  const row = await server.pool.query('SELECT version_id, content FROM resource WHERE rid = $1', [rid]);
  expect(row.rows[0].version_id).toBe(2);
  expect(row.rows[0].content.gender).toBe('male');

  expect((await client.delete(`Patient/${id}`)).status).toBe(204);
  expect(await tokenRows(rid)).toEqual([]);
  expect(await identifierSearch('IDX-NEW')).toEqual([]);
  const versions = await server.pool.query('SELECT version_id, method FROM resource_version WHERE rid = $1 ORDER BY version_id', [rid]);
  expect(versions.rows.map((r) => r.method)).toEqual(['POST', 'PUT', 'DELETE']);
  const replaced = await server.pool.query(
    "SELECT version_id, method, content->>'gender' AS gender FROM resource_history WHERE rid = $1 ORDER BY version_id",
    [rid]
  );
  expect(replaced.rows).toEqual([
    { version_id: 1, method: 'POST', gender: 'female' },
    { version_id: 2, method: 'PUT', gender: 'male' },
  ]);
  const current = await server.pool.query('SELECT version_id, method, deleted, content FROM resource WHERE rid = $1', [rid]);
  expect(current.rows).toEqual([{ version_id: 3, method: 'DELETE', deleted: true, content: null }]);
});

test('a transaction writes every resource and index row of its entries, or none', async () => {
  const bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: 'urn:uuid:8b1c2a40-0d7e-4d55-9c1a-2f4b8e6d1a01',
        resource: { resourceType: 'Patient', identifier: [{ system: 'urn:oid:2.16.156.10011.1.13', value: 'IDX-TX' }] },
        request: { method: 'POST', url: 'Patient' },
      },
      {
        resource: {
          resourceType: 'Observation',
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
          subject: { reference: 'urn:uuid:8b1c2a40-0d7e-4d55-9c1a-2f4b8e6d1a01' },
        },
        request: { method: 'POST', url: 'Observation' },
      },
    ],
  };
  const ok = await client.post('', bundle);
  expect(ok.status).toBe(200);
  const [patientId] = await identifierSearch('IDX-TX');
  const observations = await client.get(`Observation?patient=${patientId}&code=http://loinc.org|8867-4`);
  expect(observations.body.entry).toHaveLength(1);

  // A failing entry (If-Match on a resource that does not exist) rolls everything back.
  const failing = structuredClone(bundle) as any;
  failing.entry[0].resource.identifier[0].value = 'IDX-TX-ROLLED-BACK';
  failing.entry.push({ resource: { resourceType: 'Patient', id: 'nope' }, request: { method: 'PUT', url: 'Patient/nope', ifMatch: 'W/"3"' } });
  expect((await client.post('', failing)).status).toBe(412);
  expect(await identifierSearch('IDX-TX-ROLLED-BACK')).toEqual([]);
  const stray = await server.pool.query(
    `SELECT count(*)::int AS n FROM sp_token t WHERE t.code = 'IDX-TX-ROLLED-BACK'`
  );
  expect(stray.rows[0].n).toBe(0);
});

test('server-assigned ids are time-ordered UUIDv7 stored under themselves; client ids keep their UUIDv5 key', async () => {
  const minted = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-b1d9-[0-9a-f]{12}$/;
  const rowsOf = async (type: string, id: string) =>
    (await server.pool.query<{ rid: string }>('SELECT rid FROM resource WHERE resource_type = $1 AND id = $2', [type, id])).rows;

  const created = await client.post('Patient', { resourceType: 'Patient', gender: 'male' });
  expect(created.status).toBe(201);
  const patientId = created.body.id as string;
  expect(patientId).toMatch(minted);
  expect(await rowsOf('Patient', patientId)).toEqual([{ rid: patientId }]);

  const bundle = await client.post('', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: 'urn:uuid:2d1e0a5c-7c61-4b8e-9d3f-4a2b8c6d1e00',
        resource: { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${patientId}` } },
        request: { method: 'POST', url: 'Encounter' },
      },
      {
        resource: { resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, encounter: { reference: 'urn:uuid:2d1e0a5c-7c61-4b8e-9d3f-4a2b8c6d1e00' } },
        request: { method: 'PUT', url: 'Observation?identifier=urn:test|rid-conditional-put' },
      },
      {
        resource: { resourceType: 'Patient', id: 'client-chosen-rid', gender: 'female' },
        request: { method: 'PUT', url: 'Patient/client-chosen-rid' },
      },
    ],
  });
  expect(bundle.status).toBe(200);
  const [encounterId, observationId] = bundle.body.entry
    .slice(0, 2)
    .map((e: any) => /(?:Encounter|Observation)\/([^/]+)/.exec(e.response.location)![1]);
  expect(encounterId).toMatch(minted);
  expect(observationId).toMatch(minted);
  expect(await rowsOf('Encounter', encounterId)).toEqual([{ rid: encounterId }]);
  expect(await rowsOf('Observation', observationId)).toEqual([{ rid: observationId }]);
  expect(await rowsOf('Patient', 'client-chosen-rid')).toEqual([{ rid: ridOf('Patient', 'client-chosen-rid') }]);
  expect(ridOf('Patient', 'client-chosen-rid')[14]).toBe('5');

  // The Observation's reference to the new Encounter resolves through the minted key.
  const search = await client.get(`Observation?encounter=Encounter/${encounterId}&_include=Observation:encounter`);
  expect(search.body.entry.map((e: any) => e.resource.id).sort()).toEqual([encounterId, observationId].sort());

  // The Provenance of each write, and its history row, are minted the same way.
  const provenances = await server.pool.query<{ id: string; rid: string }>(
    `SELECT p.id, p.rid FROM resource p JOIN sp_reference t ON t.rid = p.rid
      WHERE p.resource_type = 'Provenance' AND t.target_rid = $1`,
    [patientId]
  );
  expect(provenances.rows.length).toBeGreaterThan(0);
  for (const p of provenances.rows) {
    expect(p.id).toMatch(minted);
    expect(p.rid).toBe(p.id);
  }
  const history = await server.pool.query('SELECT rid FROM resource_version WHERE rid = $1', [patientId]);
  expect(history.rows).toEqual([{ rid: patientId }]);

  // Read, vread and a later minted id sort after the earlier one.
  expect((await client.get(`Patient/${patientId}`)).status).toBe(200);
  expect((await client.get(`Patient/${patientId}/_history/1`)).status).toBe(200);
  await new Promise((resolve) => setTimeout(resolve, 2));
  const later = await client.post('Patient', { resourceType: 'Patient' });
  expect(later.body.id > patientId).toBe(true);
});
