/**
 * read, vread, create, update, delete over HTTP: status codes, FHIR headers, versioning,
 * and the stored rows behind them.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});
afterAll(async () => server.close());

const patient = (family = 'Zhang') => ({
  resourceType: 'Patient',
  name: [{ family, given: ['San'] }],
  gender: 'male',
  birthDate: '1980-01-01',
});

describe('create', () => {
  test('assigns an id, returns 201 with Location, ETag, Last-Modified and the stored resource', async () => {
    const res = await client.post('Patient', { ...patient(), id: 'client-chosen' });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
    const body = res.body;
    expect(body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.id).not.toBe('client-chosen');
    expect(body.meta.versionId).toBe('1');
    expect(new Date(body.meta.lastUpdated).toISOString()).toBe(body.meta.lastUpdated);
    expect(res.headers.get('location')).toBe(`${server.baseUrl}/Patient/${body.id}/_history/1`);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(res.headers.get('last-modified')).toBe(new Date(body.meta.lastUpdated).toUTCString());
    const rows = await server.pool.query('SELECT version_id, content FROM resource WHERE id = $1', [body.id]);
    expect(rows.rows).toHaveLength(1);
    expect(rows.rows[0].content.name[0].family).toBe('Zhang');
    const history = await server.pool.query('SELECT method FROM resource_version WHERE id = $1', [body.id]);
    expect(history.rows).toEqual([{ method: 'POST' }]);
  });

  test('ignores a client-supplied meta.versionId and lastUpdated but keeps profiles and tags', async () => {
    const res = await client.post('Patient', {
      ...patient(),
      meta: { versionId: '42', lastUpdated: '2001-01-01T00:00:00Z', tag: [{ system: 'urn:t', code: 'x' }] },
    });
    expect(res.status).toBe(201);
    expect(res.body.meta.versionId).toBe('1');
    expect(res.body.meta.lastUpdated).not.toBe('2001-01-01T00:00:00Z');
    expect(res.body.meta.tag).toEqual([{ system: 'urn:t', code: 'x' }]);
  });

  test('rejects a body whose resourceType does not match the URL', async () => {
    const res = await client.post('Observation', patient());
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].diagnostics).toMatch(/does not match the URL/);
  });

  test('rejects an invalid resource with 422 and stores nothing', async () => {
    const count = "SELECT count(*)::int AS n FROM resource WHERE resource_type <> 'AuditEvent'";
    const before = await server.pool.query(count);
    const res = await client.post('Patient', { resourceType: 'Patient', birthDate: 'not-a-date', unknownThing: 1 });
    expect(res.status).toBe(422);
    // Every issue is reported, warnings too (dom-6: no narrative); the errors are why it is refused.
    const issues = res.body.issue.filter((i: any) => i.severity === 'error');
    expect(issues.length).toBeGreaterThanOrEqual(2);
    expect(res.body.issue.every((i: any) => i.severity && i.code && i.diagnostics && i.expression)).toBe(true);
    expect(issues.map((i: any) => i.expression[0])).toEqual(expect.arrayContaining(['Patient.birthDate', 'Patient.unknownThing']));
    const after = await server.pool.query(count);
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  test('an unknown resource type is 404 with an OperationOutcome', async () => {
    const res = await client.post('Pateint', patient());
    expect(res.status).toBe(404);
    expect(res.body.issue[0].code).toBe('not-found');
    expect(res.body.issue[0].diagnostics).toMatch(/Unknown resource type "Pateint"/);
  });
});

describe('read and vread', () => {
  test('read returns the current version with ETag and Last-Modified', async () => {
    const created = (await client.post('Patient', patient('Wang'))).body;
    const res = await client.get(`Patient/${created.id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(res.headers.get('last-modified')).toBe(new Date(created.meta.lastUpdated).toUTCString());
    expect(res.body).toEqual(created);
    expect(Object.keys(res.body).slice(0, 3)).toEqual(['resourceType', 'id', 'meta']);
  });

  test('read of an unknown id is 404, of a malformed id 400', async () => {
    expect((await client.get('Patient/does-not-exist')).status).toBe(404);
    const bad = await client.get('Patient/bad_id!');
    expect(bad.status).toBe(400);
    expect(bad.body.issue[0].diagnostics).toMatch(/Invalid resource id/);
  });

  test('vread returns each version; unknown versions are 404', async () => {
    const created = (await client.post('Patient', patient('Li'))).body;
    await client.put(`Patient/${created.id}`, { ...created, gender: 'female' });
    const v1 = await client.get(`Patient/${created.id}/_history/1`);
    const v2 = await client.get(`Patient/${created.id}/_history/2`);
    expect(v1.status).toBe(200);
    expect(v1.body.gender).toBe('male');
    expect(v1.headers.get('etag')).toBe('W/"1"');
    expect(v2.body.gender).toBe('female');
    expect(v2.body.meta.versionId).toBe('2');
    expect((await client.get(`Patient/${created.id}/_history/3`)).status).toBe(404);
    expect((await client.get(`Patient/${created.id}/_history/abc`)).status).toBe(404);
  });

  test('If-None-Match with the current ETag answers 304 without a body', async () => {
    const created = (await client.post('Patient', patient())).body;
    const res = await client.get(`Patient/${created.id}`, { 'If-None-Match': 'W/"1"' });
    expect(res.status).toBe(304);
    expect(res.text).toBe('');
    expect((await client.get(`Patient/${created.id}`, { 'If-None-Match': 'W/"7"' })).status).toBe(200);
  });

  test('If-None-Match takes a list of ETags or *; with it, If-Modified-Since is ignored (RFC 9110 13.1.3)', async () => {
    const created = (await client.post('Patient', patient())).body;
    const later = new Date(Date.now() + 60_000).toUTCString();
    const status = async (path: string, headers: Record<string, string>) => (await client.get(path, headers)).status;
    expect(await status(`Patient/${created.id}`, { 'If-None-Match': 'W/"7", W/"1"' })).toBe(304);
    expect(await status(`Patient/${created.id}`, { 'If-None-Match': '"1"' })).toBe(304);
    expect(await status(`Patient/${created.id}`, { 'If-None-Match': '*' })).toBe(304);
    expect(await status(`Patient/${created.id}/_history/1`, { 'If-None-Match': 'W/"2", W/"1"' })).toBe(304);
    // The ETag says the client's copy is stale: a later If-Modified-Since must not hide that.
    expect(await status(`Patient/${created.id}`, { 'If-None-Match': 'W/"7"', 'If-Modified-Since': later })).toBe(200);
    const notModified = await client.get(`Patient/${created.id}`, { 'If-Modified-Since': later });
    expect([notModified.status, notModified.headers.get('etag'), notModified.text]).toEqual([304, 'W/"1"', '']);
    expect(await status(`Patient/${created.id}`, { 'If-Modified-Since': new Date(Date.now() - 3_600_000).toUTCString() })).toBe(200);
  });

  test('_summary and _elements subset the resource and mark it SUBSETTED', async () => {
    const created = (
      await client.post('Patient', {
        ...patient(),
        text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Zhang San</div>' },
        maritalStatus: { text: 'married' },
      })
    ).body;
    const summary = (await client.get(`Patient/${created.id}?_summary=true`)).body;
    expect(summary.name).toBeDefined();
    expect(summary.maritalStatus).toBeUndefined();
    expect(summary.text).toBeUndefined();
    expect(summary.meta.tag).toContainEqual({ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' });
    const text = (await client.get(`Patient/${created.id}?_summary=text`)).body;
    expect(text.text).toBeDefined();
    expect(text.name).toBeUndefined();
    const data = (await client.get(`Patient/${created.id}?_summary=data`)).body;
    expect(data.text).toBeUndefined();
    expect(data.maritalStatus).toBeDefined();
    const elements = (await client.get(`Patient/${created.id}?_elements=gender,birthDate`)).body;
    expect(Object.keys(elements).sort()).toEqual(['birthDate', 'gender', 'id', 'meta', 'resourceType']);
    expect((await client.get(`Patient/${created.id}?_summary=bogus`)).status).toBe(400);
  });
});

describe('update', () => {
  test('creates with 201 when the id is new, then updates with 200 and a new version', async () => {
    const first = await client.put('Patient/chosen-id-1', { ...patient(), id: 'chosen-id-1' });
    expect(first.status).toBe(201);
    expect(first.body.meta.versionId).toBe('1');
    expect(first.headers.get('location')).toBe(`${server.baseUrl}/Patient/chosen-id-1/_history/1`);
    const second = await client.put('Patient/chosen-id-1', { ...patient(), id: 'chosen-id-1', gender: 'female' });
    expect(second.status).toBe(200);
    expect(second.body.meta.versionId).toBe('2');
    expect(second.headers.get('etag')).toBe('W/"2"');
  });

  test('an update identical to the current version creates no new version', async () => {
    const created = (await client.post('Patient', patient())).body;
    const same = await client.put(`Patient/${created.id}`, { ...created, meta: { versionId: '1' } });
    expect(same.status).toBe(200);
    expect(same.body.meta.versionId).toBe('1');
    expect(same.body.meta.lastUpdated).toBe(created.meta.lastUpdated);
    const rows = await server.pool.query('SELECT count(*)::int AS n FROM resource_version WHERE id = $1', [created.id]);
    expect(rows.rows[0].n).toBe(1);
  });

  test('a body without id, or with another id, is 400', async () => {
    const created = (await client.post('Patient', patient())).body;
    const { id: _omit, ...noId } = created;
    const missing = await client.put(`Patient/${created.id}`, noId);
    expect(missing.status).toBe(400);
    expect(missing.body.issue[0].diagnostics).toMatch(/must have an id/);
    const other = await client.put(`Patient/${created.id}`, { ...created, id: 'another' });
    expect(other.status).toBe(400);
    expect(other.body.issue[0].diagnostics).toMatch(/does not match the URL/);
  });

  test('If-Match with a stale version is 412 and changes nothing; with the current one it succeeds', async () => {
    const created = (await client.post('Patient', patient())).body;
    await client.put(`Patient/${created.id}`, { ...created, gender: 'female' });
    const stale = await client.put(`Patient/${created.id}`, { ...created, gender: 'other' }, { 'If-Match': 'W/"1"' });
    expect(stale.status).toBe(412);
    expect(stale.body.resourceType).toBe('OperationOutcome');
    expect((await client.get(`Patient/${created.id}`)).body.gender).toBe('female');
    const fresh = await client.put(`Patient/${created.id}`, { ...created, gender: 'other' }, { 'If-Match': 'W/"2"' });
    expect(fresh.status).toBe(200);
    expect(fresh.body.meta.versionId).toBe('3');
    expect((await client.put(`Patient/${created.id}`, created, { 'If-Match': 'nonsense' })).status).toBe(400);
  });

  test('an invalid update is 422 and leaves the current version', async () => {
    const created = (await client.post('Patient', patient())).body;
    const res = await client.put(`Patient/${created.id}`, { ...created, gender: 42 });
    expect(res.status).toBe(422);
    expect((await client.get(`Patient/${created.id}`)).body.meta.versionId).toBe('1');
  });
});

describe('delete', () => {
  test('answers 204, then read is 410, deleting again is fine, history keeps every version', async () => {
    const created = (await client.post('Patient', patient())).body;
    const del = await client.delete(`Patient/${created.id}`);
    expect(del.status).toBe(204);
    expect(del.text).toBe('');
    const gone = await client.get(`Patient/${created.id}`);
    expect(gone.status).toBe(410);
    expect(gone.body.issue[0].code).toBe('deleted');
    expect((await client.delete(`Patient/${created.id}`)).status).toBe(204);
    expect((await client.delete('Patient/never-existed')).status).toBe(204);
    const history = (await client.get(`Patient/${created.id}/_history`)).body;
    expect(history.entry.map((e: any) => e.request.method)).toEqual(['DELETE', 'POST']);
    expect(history.entry[0].resource).toBeUndefined();
    expect((await client.get(`Patient/${created.id}/_history/1`)).status).toBe(200);
    expect((await client.get(`Patient/${created.id}/_history/2`)).status).toBe(410);
  });

  test('Prefer: return=OperationOutcome answers 200 with an OperationOutcome', async () => {
    const created = (await client.post('Patient', patient())).body;
    const res = await client.delete(`Patient/${created.id}`, { Prefer: 'return=OperationOutcome' });
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].severity).toBe('information');
  });

  test('a deleted resource can be brought back by update, continuing its versions', async () => {
    await client.put('Patient/revived', { ...patient(), id: 'revived' });
    await client.delete('Patient/revived');
    const back = await client.put('Patient/revived', { ...patient(), id: 'revived' });
    expect(back.status).toBe(201);
    expect(back.body.meta.versionId).toBe('3');
  });
});

describe('Prefer: return', () => {
  test('minimal gives no body, OperationOutcome an outcome, representation the resource', async () => {
    const minimal = await client.post('Patient', patient(), { Prefer: 'return=minimal' });
    expect(minimal.status).toBe(201);
    expect(minimal.text).toBe('');
    expect(minimal.headers.get('location')).toMatch(/\/Patient\/[^/]+\/_history\/1$/);
    const oo = await client.post('Patient', patient(), { Prefer: 'return=OperationOutcome' });
    expect(oo.body.resourceType).toBe('OperationOutcome');
    const rep = await client.post('Patient', patient(), { Prefer: 'return=representation' });
    expect(rep.body.resourceType).toBe('Patient');
  });
});

describe('metadata', () => {
  test('the CapabilityStatement lists every resource type with the interactions it supports', async () => {
    const res = await client.get('metadata');
    expect(res.status).toBe(200);
    const cs = res.body;
    expect(cs.resourceType).toBe('CapabilityStatement');
    expect(cs.fhirVersion).toBe('4.0.1');
    expect(cs.kind).toBe('instance');
    expect(cs.implementation.url).toBe(server.baseUrl);
    const resources = cs.rest[0].resource;
    expect(resources.length).toBeGreaterThanOrEqual(145);
    const patientEntry = resources.find((r: any) => r.type === 'Patient');
    expect(patientEntry.interaction.map((i: any) => i.code)).toEqual(
      expect.arrayContaining(['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create'])
    );
    expect(cs.rest[0].interaction.map((i: any) => i.code)).toEqual(expect.arrayContaining(['transaction', 'batch', 'history-system']));
  });
});

describe('capabilities', () => {
  test('/metadata?_summary=true keeps only summary elements, nested ones too; _elements picks top-level elements', async () => {
    const full = (await client.get('metadata')).body;
    const patientFull = full.rest[0].resource.find((r: any) => r.type === 'Patient');
    expect(patientFull.interaction.length).toBeGreaterThan(0);
    expect(patientFull.searchParam.length).toBeGreaterThan(0);

    const res = await client.get('metadata?_summary=true');
    expect(res.status).toBe(200);
    const summary = res.body;
    expect(summary.resourceType).toBe('CapabilityStatement');
    expect(summary.meta.tag).toEqual([expect.objectContaining({ code: 'SUBSETTED' })]);
    expect([summary.fhirVersion, summary.kind, summary.status, summary.software]).toEqual([full.fhirVersion, full.kind, full.status, full.software]);
    expect(summary.rest[0].mode).toBe('server');
    // rest.interaction, rest.searchParam, rest.resource.interaction, searchParam, searchInclude,
    // searchRevInclude, versioning, conditional*: not summary elements in R4.
    expect(summary.rest[0].interaction).toBeUndefined();
    expect(summary.rest[0].searchParam).toBeUndefined();
    expect(summary.rest[0].resource).toHaveLength(full.rest[0].resource.length);
    const patient = summary.rest[0].resource.find((r: any) => r.type === 'Patient');
    expect(Object.keys(patient).sort()).toEqual(['operation', 'profile', 'supportedProfile', 'type'].filter((k) => k in patientFull).sort());
    expect(res.text.length).toBeLessThan(JSON.stringify(full).length / 4);
    // The cached full statement is untouched.
    expect((await client.get('metadata')).body.rest[0].resource.find((r: any) => r.type === 'Patient').interaction).toEqual(patientFull.interaction);

    const elements = (await client.get('metadata?_elements=fhirVersion')).body;
    expect(elements.fhirVersion).toBe('4.0.1');
    expect(elements.rest).toBeUndefined();
    expect(elements.software).toBeUndefined();
    expect((await client.get('metadata?_summary=bogus')).status).toBe(400);
  });
});
