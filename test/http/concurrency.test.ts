/**
 * Truly concurrent writes to one resource: no update is lost, version ids never repeat,
 * and If-Match lets exactly one of several racing writers win.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer({ DB_POOL_SIZE: '20' });
  client = server.client();
});
afterAll(async () => server.close());

test('concurrent updates all succeed as successive versions; none is lost', async () => {
  const created = (await client.post('Patient', { resourceType: 'Patient', name: [{ text: 'v0' }] })).body;
  const writers = 25;
  const results = await Promise.all(
    Array.from({ length: writers }, (_, i) => client.put(`Patient/${created.id}`, { ...created, name: [{ text: `writer-${i}` }] }))
  );
  expect(results.map((r) => r.status)).toEqual(Array(writers).fill(200));
  const versions = results.map((r) => Number(r.body.meta.versionId)).sort((a, b) => a - b);
  expect(versions).toEqual(Array.from({ length: writers }, (_, i) => i + 2));
  const history = await server.pool.query(
    "SELECT version_id, content->'name'->0->>'text' AS text FROM resource_version WHERE id = $1 ORDER BY version_id",
    [created.id]
  );
  expect(history.rows.map((r) => r.version_id)).toEqual(Array.from({ length: writers + 1 }, (_, i) => i + 1));
  // Every writer's content is one of the stored versions.
  expect(new Set(history.rows.map((r) => r.text))).toEqual(new Set(['v0', ...Array.from({ length: writers }, (_, i) => `writer-${i}`)]));
  const current = (await client.get(`Patient/${created.id}`)).body;
  expect(current.meta.versionId).toBe(String(writers + 1));
});

test('with If-Match on the same version, exactly one concurrent writer wins; the others get 412', async () => {
  const created = (await client.post('Patient', { resourceType: 'Patient', name: [{ text: 'base' }] })).body;
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      client.put(`Patient/${created.id}`, { ...created, name: [{ text: `racer-${i}` }] }, { 'If-Match': 'W/"1"' })
    )
  );
  const statuses = results.map((r) => r.status).sort();
  expect(statuses).toEqual([200, ...Array(9).fill(412)]);
  expect((await client.get(`Patient/${created.id}`)).body.meta.versionId).toBe('2');
});

test('concurrent creates of one new id through PUT yield one 201 and successive versions', async () => {
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => client.put('Patient/race-create', { resourceType: 'Patient', id: 'race-create', name: [{ text: `c-${i}` }] }))
  );
  const statuses = results.map((r) => r.status);
  expect(statuses.filter((s) => s === 201)).toHaveLength(1);
  expect(statuses.filter((s) => s === 200)).toHaveLength(7);
  const versions = results.map((r) => Number(r.body.meta.versionId)).sort((a, b) => a - b);
  expect(versions).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
});

test('concurrent patches are serialized: each sees the result of the one before', async () => {
  const created = (await client.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'c' }, note: [{ text: 'start' }] })).body;
  const results = await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      client.request('PATCH', `Observation/${created.id}`, {
        body: [{ op: 'add', path: '/note/-', value: { text: `n${i}` } }],
        headers: { 'Content-Type': 'application/json-patch+json' },
      })
    )
  );
  expect(results.every((r) => r.status === 200)).toBe(true);
  const final = (await client.get(`Observation/${created.id}`)).body;
  expect(final.note.map((n: any) => n.text).sort()).toEqual(['start', ...Array.from({ length: 10 }, (_, i) => `n${i}`)].sort());
});
