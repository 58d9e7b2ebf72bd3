/**
 * Conditional interactions driven by search: conditional create (If-None-Exist), conditional
 * update (PUT /Type?criteria), conditional delete (one or several, bounded by MAX_PAGE_SIZE),
 * and conditional references inside transactions. Each case checks the stored rows too.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';

let server: TestServer;
let client: FhirTestClient;

// MAX_PAGE_SIZE bounds conditional deletes; a small value makes the limit testable.
beforeAll(async () => {
  server = await startTestServer({ MAX_PAGE_SIZE: '3' });
  client = server.client();
});
afterAll(async () => server.close());

const live = async (type: string, system: string) =>
  (
    await server.pool.query(
      `SELECT count(*)::int AS n FROM resource WHERE resource_type = $1 AND NOT deleted AND content->'identifier'->0->>'system' = $2`,
      [type, system]
    )
  ).rows[0].n;

const patient = (system: string, value: string, family = 'Test') => ({
  resourceType: 'Patient',
  identifier: [{ system, value }],
  name: [{ family }],
});

describe('conditional create (If-None-Exist)', () => {
  test('no match creates (201), one match returns it (200, nothing written), several are 412', async () => {
    const sys = 'urn:cc';
    const first = await client.post('Patient', patient(sys, '1'), { 'If-None-Exist': `identifier=${sys}|1` });
    expect(first.status).toBe(201);
    const again = await client.post('Patient', patient(sys, '1', 'Other'), { 'If-None-Exist': `identifier=${sys}|1` });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect(again.body.name[0].family).toBe('Test');
    expect(await live('Patient', sys)).toBe(1);
    await client.post('Patient', patient(sys, '2'));
    const many = await client.post('Patient', patient(sys, '3'), { 'If-None-Exist': `identifier=${sys}|` });
    expect(many.status).toBe(412);
    expect(many.body.issue[0].code).toBe('multiple-matches');
    expect(await live('Patient', sys)).toBe(2);
  });

  test('criteria the server does not understand are a 400, never a blind create', async () => {
    const res = await client.post('Patient', patient('urn:cc-bad', '1'), { 'If-None-Exist': 'nonsense=1' });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(/nonsense/);
    expect(await live('Patient', 'urn:cc-bad')).toBe(0);
  });

  test('two identical conditional creates racing each other create one resource', async () => {
    const sys = 'urn:cc-race';
    const results = await Promise.all(
      [1, 2, 3, 4].map(() => client.post('Patient', patient(sys, 'x'), { 'If-None-Exist': `identifier=${sys}|x` }))
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 201]);
    expect(await live('Patient', sys)).toBe(1);
  });
});

describe('conditional update (PUT /Type?criteria)', () => {
  test('one match updates it, no match creates, several are 412', async () => {
    const sys = 'urn:cu';
    const created = (await client.post('Patient', patient(sys, '1'))).body;
    const updated = await client.put(`Patient?identifier=${sys}|1`, patient(sys, '1', 'Updated'));
    expect(updated.status).toBe(200);
    expect(updated.body.id).toBe(created.id);
    expect(updated.body.meta.versionId).toBe('2');
    const fresh = await client.put(`Patient?identifier=${sys}|2`, patient(sys, '2'));
    expect(fresh.status).toBe(201);
    expect(fresh.body.id).not.toBe(created.id);
    const many = await client.put(`Patient?identifier=${sys}|`, patient(sys, '9'));
    expect(many.status).toBe(412);
    expect(await live('Patient', sys)).toBe(2);
  });

  test('If-Match is honoured: no match is 412 rather than a create, a stale match 412', async () => {
    const sys = 'urn:cu-if-match';
    const none = await client.put(`Patient?identifier=${sys}|1`, patient(sys, '1'), { 'If-Match': 'W/"1"' });
    expect(none.status).toBe(412);
    expect(await live('Patient', sys)).toBe(0);
    const created = (await client.post('Patient', patient(sys, '1'))).body;
    expect((await client.put(`Patient?identifier=${sys}|1`, patient(sys, '1', 'New'), { 'If-Match': 'W/"2"' })).status).toBe(412);
    const ok = await client.put(`Patient?identifier=${sys}|1`, patient(sys, '1', 'New'), { 'If-Match': 'W/"1"' });
    expect([ok.status, ok.body.id, ok.body.meta.versionId]).toEqual([200, created.id, '2']);
  });

  test('a body id that differs from the matching resource is a 400', async () => {
    const sys = 'urn:cu-id';
    await client.post('Patient', patient(sys, '1'));
    const res = await client.put(`Patient?identifier=${sys}|1`, { ...patient(sys, '1'), id: 'someone-else' });
    expect(res.status).toBe(400);
  });
});

describe('conditional update with an id in the body and no match', () => {
  test('a new id is update-as-create (201); a deleted one is re-created', async () => {
    const sys = 'urn:cu-new-id';
    const res = await client.put(`Patient?identifier=${sys}|1`, { ...patient(sys, '1'), id: 'cu-new-id' });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`${server.baseUrl}/Patient/cu-new-id/_history/1`);
    expect((await client.delete('Patient/cu-new-id')).status).toBe(204);
    const again = await client.put(`Patient?identifier=${sys}|1`, { ...patient(sys, '1'), id: 'cu-new-id' });
    expect([again.status, again.body.meta.versionId]).toEqual([201, '3']);
  });

  test('an existing resource that does not match the criteria is a 409 and stays untouched', async () => {
    const sys = 'urn:cu-other';
    const other = (await client.post('Patient', patient(sys, 'other', 'Keep'))).body;
    const res = await client.put(`Patient?identifier=${sys}|nomatch`, { ...patient(sys, 'nomatch', 'Overwrite'), id: other.id });
    expect(res.status).toBe(409);
    expect(res.body.issue[0].code).toBe('conflict');
    const stored = (await client.get(`Patient/${other.id}`)).body;
    expect([stored.meta.versionId, stored.name[0].family]).toEqual(['1', 'Keep']);
  });

  test('in a transaction the same rules hold: 409 for another live resource, 400 for an id other than the match', async () => {
    const sys = 'urn:cu-tx';
    const other = (await client.post('Patient', patient(sys, 'other', 'Keep'))).body;
    const matched = (await client.post('Patient', patient(sys, 'match', 'Keep'))).body;
    const put = (value: string, id: string) => ({
      resource: { ...patient(sys, value, 'Overwrite'), id },
      request: { method: 'PUT', url: `Patient?identifier=${sys}|${value}` },
    });
    const transaction = (entry: unknown) => client.post('', { resourceType: 'Bundle', type: 'transaction', entry: [entry] });
    expect((await transaction(put('nomatch', other.id))).status).toBe(409);
    expect((await transaction(put('match', other.id))).status).toBe(400);
    for (const p of [other, matched]) expect((await client.get(`Patient/${p.id}`)).body.name[0].family).toBe('Keep');
    const created = await transaction(put('fresh', 'cu-tx-new'));
    expect([created.status, created.body.entry[0].response.status]).toEqual([200, '201 Created']);
    expect(created.body.entry[0].response.location).toMatch(/\/Patient\/cu-tx-new\/_history\/1$/);
  });
});

describe('conditional delete', () => {
  test('deletes every match up to MAX_PAGE_SIZE; more is 412 and deletes nothing', async () => {
    const sys = 'urn:cd';
    for (const v of ['1', '2', '3', '4']) await client.post('Patient', patient(sys, v));
    const tooMany = await client.delete(`Patient?identifier=${sys}|`);
    expect(tooMany.status).toBe(412);
    expect(tooMany.body.issue[0].diagnostics).toMatch(/more than 3/);
    expect(await live('Patient', sys)).toBe(4);

    const one = await client.delete(`Patient?identifier=${sys}|1`);
    expect(one.status).toBe(204);
    expect(await live('Patient', sys)).toBe(3);
    const rest = await client.delete(`Patient?identifier=${sys}|`, { Prefer: 'return=OperationOutcome' });
    expect(rest.status).toBe(200);
    expect(rest.body.issue[0].diagnostics).toMatch(/Deleted 3/);
    expect(await live('Patient', sys)).toBe(0);
    // Each deletion is a new version in history.
    const history = await server.pool.query(
      `SELECT count(*)::int AS n FROM resource_version WHERE resource_type = 'Patient' AND method = 'DELETE'`
    );
    expect(history.rows[0].n).toBeGreaterThanOrEqual(4);
    const none = await client.delete(`Patient?identifier=${sys}|`);
    expect(none.status).toBe(204);
  });

  test('If-Match is honoured: a match at another version is 412 and nothing is deleted', async () => {
    const sys = 'urn:cd-if-match';
    const one = (await client.post('Patient', patient(sys, '1'))).body;
    const stale = await client.delete(`Patient?identifier=${sys}|1`, { 'If-Match': 'W/"4"' });
    expect(stale.status).toBe(412);
    expect(await live('Patient', sys)).toBe(1);
    expect((await client.delete(`Patient?identifier=${sys}|1`, { 'If-Match': 'W/"1"' })).status).toBe(204);
    expect((await client.get(`Patient/${one.id}`)).status).toBe(410);
  });

  test('without criteria it is a 400, never a delete of everything', async () => {
    await client.post('Patient', patient('urn:cd-all', '1'));
    const res = await client.delete('Patient');
    expect(res.status).toBe(400);
    expect(await live('Patient', 'urn:cd-all')).toBe(1);
  });
});

describe('conditional references in transactions', () => {
  const observation = (reference: string) => ({
    resource: { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference } },
    request: { method: 'POST', url: 'Observation' },
  });
  const transaction = (entry: unknown[]) => client.post('', { resourceType: 'Bundle', type: 'transaction', entry });
  const observations = async () =>
    (await server.pool.query(`SELECT count(*)::int AS n FROM resource WHERE resource_type = 'Observation' AND NOT deleted`)).rows[0].n;

  test('exactly one match: the reference is rewritten to Type/id', async () => {
    const target = (await client.post('Patient', patient('urn:cr', 'one'))).body;
    const res = await transaction([observation('Patient?identifier=urn:cr|one')]);
    expect(res.status).toBe(200);
    const location = res.body.entry[0].response.location.slice(server.baseUrl.length + 1).replace(/\/_history\/1$/, '');
    const stored = (await client.get(location)).body;
    expect(stored.subject.reference).toBe(`Patient/${target.id}`);
    const found = await client.get(`Observation?patient=${target.id}`);
    expect(found.body.entry.map((e: any) => e.resource.id)).toEqual([stored.id]);
  });

  test('no match is a 400, several are a 412, and the whole transaction is rolled back', async () => {
    await client.post('Patient', patient('urn:cr-many', '1'));
    await client.post('Patient', patient('urn:cr-many', '2'));
    const before = await observations();
    const none = await transaction([observation('Patient?identifier=urn:cr|nobody'), observation('Patient?identifier=urn:cr|one')]);
    expect(none.status).toBe(400);
    expect(none.body.issue.map((i: any) => i.diagnostics).join(' ')).toMatch(/matches no resource/);
    const many = await transaction([observation('Patient?identifier=urn:cr|one'), observation('Patient?identifier=urn:cr-many|')]);
    expect(many.status).toBe(412);
    expect(many.body.issue[0].code).toBe('multiple-matches');
    expect(await observations()).toBe(before);
  });

  test("a reference written like another entry's conditional create means that entry", async () => {
    const res = await transaction([
      observation('Patient?identifier=urn:cr-new|7'),
      { resource: patient('urn:cr-new', '7'), request: { method: 'POST', url: 'Patient', ifNoneExist: 'identifier=urn:cr-new|7' } },
    ]);
    expect(res.status).toBe(200);
    const patientId = res.body.entry[1].response.location.split('/')[5];
    const obsId = res.body.entry[0].response.location.split('/')[5];
    expect((await client.get(`Observation/${obsId}`)).body.subject.reference).toBe(`Patient/${patientId}`);
    // Sent again, the conditional create matches the stored patient and the reference follows it.
    const again = await transaction([
      { resource: patient('urn:cr-new', '7'), request: { method: 'POST', url: 'Patient', ifNoneExist: 'identifier=urn:cr-new|7' } },
      observation('Patient?identifier=urn:cr-new|7'),
    ]);
    expect(again.body.entry[0].response.status).toBe('200 OK');
    const obs2 = again.body.entry[1].response.location.split('/')[5];
    expect((await client.get(`Observation/${obs2}`)).body.subject.reference).toBe(`Patient/${patientId}`);
    expect(await live('Patient', 'urn:cr-new')).toBe(1);
  });
});
