/**
 * Scope enforcement on every interaction: v1 and v2 syntax, granular ?category= restrictions,
 * patient/ confinement to the launch patient's compartment, user/ scopes of patient and
 * practitioner users, system/ grants. Filtering happens in SQL, so no search, include,
 * revinclude, _has, history, paging link, total or $everything reveals an out-of-scope resource.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import type { FhirTestClient } from '../helpers/fhir-client';
import { basic, launchToken, organizationClient, registerClient, registerUser, tokenRequest } from '../helpers/smart';

let server: TestServer;
let root: FhirTestClient;
const REDIRECT = 'http://127.0.0.1:9/cb';
const CAT = 'http://terminology.hl7.org/CodeSystem/observation-category';
let app: string;
let alice: string;
let bob: string;
const obs: Record<string, string> = {};

function observation(patient: string, category: string, code: string) {
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: CAT, code: category }] }],
    code: { coding: [{ system: 'http://loinc.org', code }] },
    subject: { reference: `Patient/${patient}` },
    performer: [{ reference: 'Practitioner/pr1' }],
  };
}

beforeAll(async () => {
  server = await startTestServer();
  // The practitioner's organization holds the records (their custodian), so Consent rules let them see them.
  root = await organizationClient(server, 'org1');
  await root.put('Practitioner/pr1', { resourceType: 'Practitioner', id: 'pr1', name: [{ family: 'House' }] });
  alice = (await root.post('Patient', { resourceType: 'Patient', name: [{ family: 'Anders' }] })).body.id;
  bob = (await root.post('Patient', { resourceType: 'Patient', name: [{ family: 'Brown' }] })).body.id;
  obs.aliceLab = (await root.post('Observation', observation(alice, 'laboratory', '2345-7'))).body.id;
  obs.aliceVital = (await root.post('Observation', observation(alice, 'vital-signs', '8867-4'))).body.id;
  obs.bobLab = (await root.post('Observation', observation(bob, 'laboratory', '2345-7'))).body.id;
  app = (
    await registerClient(server, {
      name: 'Scoped app', type: 'public', redirectUris: [REDIRECT],
      scopes: ['launch/patient', 'patient/*.cruds', 'user/*.cruds', 'offline_access'],
    })
  ).clientId;
  await registerUser(server, { username: 'dr', password: 'dr-password', fhirUser: 'Practitioner/pr1', organization: 'org1' });
  await registerUser(server, { username: 'alice', password: 'alice-password', fhirUser: `Patient/${alice}` });
});
afterAll(async () => server.close());

/** A token for the practitioner with the patient picked (or for a user), through the real flow. */
async function tokenFor(scope: string, options: { patient?: string; user?: 'dr' | 'alice' } = {}): Promise<FhirTestClient> {
  const user = options.user ?? 'dr';
  const res = await launchToken(server, {
    clientId: app, redirectUri: REDIRECT, scope, patient: options.patient, username: user, password: `${user}-password`,
  });
  if (res.status !== 200) throw new Error(JSON.stringify(res.body));
  return server.client(res.body.access_token);
}

async function systemToken(scopes: string[], scope = scopes.join(' ')): Promise<FhirTestClient> {
  const c = await registerClient(server, { name: 'svc', type: 'confidential-symmetric', scopes });
  const res = await tokenRequest(server, { grant_type: 'client_credentials', scope }, basic(c.clientId, c.clientSecret!));
  return server.client(res.body.access_token);
}

const ids = (bundle: any) => (bundle.entry ?? []).filter((e: any) => e.resource?.resourceType !== 'OperationOutcome').map((e: any) => `${e.resource.resourceType}/${e.resource.id}`).sort();

describe('patient/ scopes confine to the launch patient', () => {
  let client: FhirTestClient;
  beforeAll(async () => {
    client = await tokenFor('launch/patient patient/*.cruds', { patient: alice });
  });

  test('reads: own records yes, another patient\'s are unknown (404)', async () => {
    expect((await client.get(`Patient/${alice}`)).status).toBe(200);
    expect((await client.get(`Observation/${obs.aliceLab}`)).status).toBe(200);
    expect((await client.get(`Patient/${bob}`)).status).toBe(404);
    expect((await client.get(`Observation/${obs.bobLab}`)).status).toBe(404);
    expect((await client.get(`Observation/${obs.bobLab}/_history/1`)).status).toBe(404);
    // Directory resources outside the Patient compartment are readable.
    expect((await client.get('Practitioner/pr1')).status).toBe(200);
  });

  test('search, totals, includes, revincludes, _has and system search never show another patient', async () => {
    const search = await client.get('Observation?_total=accurate');
    expect(search.body.total).toBe(2);
    expect(ids(search.body)).toEqual([`Observation/${obs.aliceLab}`, `Observation/${obs.aliceVital}`].sort());
    const rev = await client.get('Patient?_revinclude=Observation:subject');
    expect(ids(rev.body)).toEqual([`Observation/${obs.aliceLab}`, `Observation/${obs.aliceVital}`, `Patient/${alice}`].sort());
    const inc = await client.get(`Observation?_include=Observation:subject&_include=Observation:performer`);
    expect(ids(inc.body)).toEqual(
      [`Observation/${obs.aliceLab}`, `Observation/${obs.aliceVital}`, `Patient/${alice}`, 'Practitioner/pr1'].sort()
    );
    const has = await client.get('Patient?_has:Observation:subject:code=2345-7');
    expect(ids(has.body)).toEqual([`Patient/${alice}`]);
    const chain = await client.get('Observation?subject.name=Brown');
    expect(ids(chain.body)).toEqual([]);
    const system = await client.get('?_type=Observation,Patient&_total=accurate');
    expect(system.body.total).toBe(3);
    const paged = await client.get('Observation?_count=1');
    const next = paged.body.link.find((l: any) => l.relation === 'next');
    const page2 = await client.get(next.url);
    expect([...ids(paged.body), ...ids(page2.body)].sort()).toEqual([`Observation/${obs.aliceLab}`, `Observation/${obs.aliceVital}`].sort());
    expect(page2.body.link.find((l: any) => l.relation === 'next')).toBeUndefined();
  });

  test('history and $everything stay inside the compartment', async () => {
    const history = await client.get('Observation/_history');
    expect(history.body.entry.every((e: any) => e.resource.subject.reference === `Patient/${alice}`)).toBe(true);
    const all = await client.get('_history?_count=100');
    expect(JSON.stringify(all.body)).not.toContain(bob);
    expect((await client.get(`Observation/${obs.bobLab}/_history`)).status).toBe(404);
    expect((await client.get(`Patient/${bob}/$everything`)).status).toBe(404);
    const everything = await client.get(`Patient/${alice}/$everything`);
    expect(everything.status).toBe(200);
    expect(JSON.stringify(everything.body)).not.toContain(bob);
    expect((await client.get(`Patient/${bob}/Observation`)).body.entry ?? []).toEqual([]);
  });

  test('writes: inside the compartment yes; for another patient, or replacing theirs, no', async () => {
    expect((await client.post('Observation', observation(alice, 'laboratory', '1'))).status).toBe(201);
    const forBob = await client.post('Observation', observation(bob, 'laboratory', '1'));
    expect(forBob.status).toBe(403);
    expect((await client.put(`Observation/${obs.bobLab}`, { ...observation(alice, 'laboratory', '1'), id: obs.bobLab })).status).toBe(403);
    const own = (await client.get(`Observation/${obs.aliceVital}`)).body;
    // Moving one's own record to another patient is a write outside the compartment.
    expect((await client.put(`Observation/${own.id}`, { ...own, subject: { reference: `Patient/${bob}` } })).status).toBe(403);
    expect((await client.delete(`Observation/${obs.bobLab}`)).status).toBe(404);
    expect((await client.patch(`Observation/${obs.bobLab}`, [{ op: 'replace', path: '/status', value: 'amended' }], { 'Content-Type': 'application/json-patch+json' })).status).toBe(404);
    // If-Match changes none of that: a 412 would tell the caller the resource's current version.
    const stale = await client.put(`Observation/${obs.bobLab}`, { ...observation(alice, 'laboratory', '1'), id: obs.bobLab }, { 'If-Match': 'W/"9"' });
    expect([stale.status, stale.text]).toEqual([403, expect.not.stringMatching(/version 1/)]);
    expect((await client.delete(`Observation/${obs.bobLab}`, { 'If-Match': 'W/"9"' })).status).toBe(404);
    expect((await client.post('Patient', { resourceType: 'Patient' })).status).toBe(403);
    expect((await client.post('Practitioner', { resourceType: 'Practitioner' })).status).toBe(403);
    const stored = await server.pool.query(`SELECT count(*)::int AS n FROM resource WHERE resource_type = 'Observation' AND compartments @> ARRAY[$1]`, [bob]);
    expect(stored.rows[0].n).toBe(1);
  });

  test('a write naming another patient anywhere (not only as subject) is 403: create, update, patch, conditional, batch, transaction', async () => {
    // performer is a Patient compartment parameter of Observation: Patient/bob there puts the record into bob's compartment.
    const alsoBob = { ...observation(alice, 'laboratory', 'x1'), performer: [{ reference: `Patient/${bob}` }] };
    const created = await client.post('Observation', alsoBob);
    expect(created.status).toBe(403);
    expect(created.body.resourceType).toBe('OperationOutcome');
    expect(created.body.issue[0].code).toBe('forbidden');
    // Conditional create and conditional update go through the same check.
    expect((await client.post('Observation', alsoBob, { 'If-None-Exist': 'code=x1' })).status).toBe(403);
    expect((await client.put('Observation?code=x1', alsoBob)).status).toBe(403);
    // Update and patch of alice's own record that add bob.
    const own = (await client.post('Observation', observation(alice, 'laboratory', 'x2'))).body;
    expect((await client.put(`Observation/${own.id}`, { ...own, performer: [{ reference: `Patient/${bob}` }] })).status).toBe(403);
    const patched = await client.patch(`Observation/${own.id}`, [{ op: 'add', path: '/performer/-', value: { reference: `Patient/${bob}` } }], { 'Content-Type': 'application/json-patch+json' });
    expect(patched.status).toBe(403);
    // A stored record shared by alice and bob: the old version is in bob's compartment, so it may
    // be neither changed (even into alice-only content) nor deleted.
    const shared = (await root.post('Observation', { ...observation(alice, 'laboratory', 'x3'), performer: [{ reference: `Patient/${bob}` }] })).body;
    expect((await client.get(`Observation/${shared.id}`)).status).toBe(200);
    expect((await client.put(`Observation/${shared.id}`, { ...observation(alice, 'laboratory', 'x3'), id: shared.id })).status).toBe(403);
    expect((await client.delete(`Observation/${shared.id}`)).status).toBe(403);
    const batch = await client.post('', {
      resourceType: 'Bundle', type: 'batch',
      entry: [
        { resource: observation(alice, 'laboratory', 'x4'), request: { method: 'POST', url: 'Observation' } },
        { resource: { ...alsoBob, code: { text: 'x5' } }, request: { method: 'POST', url: 'Observation' } },
      ],
    });
    expect(batch.body.entry.map((e: any) => e.response.status)).toEqual([expect.stringMatching(/^201/), expect.stringMatching(/^403/)]);
    const tx = await client.post('', {
      resourceType: 'Bundle', type: 'transaction',
      entry: [
        { resource: observation(alice, 'laboratory', 'x6'), request: { method: 'POST', url: 'Observation' } },
        { resource: { ...alsoBob, code: { text: 'x7' } }, request: { method: 'POST', url: 'Observation' } },
      ],
    });
    expect(tx.status).toBe(403);
    // Nothing the app wrote reached bob's compartment; the shared record is unchanged.
    const inBob = await server.pool.query(
      `SELECT id FROM resource WHERE resource_type = 'Observation' AND compartments @> ARRAY[$1] AND NOT deleted`, [bob]
    );
    expect(inBob.rows.map((r) => r.id).sort()).toEqual([obs.bobLab, shared.id].sort());
    expect((await root.get(`Observation/${shared.id}`)).body.meta.versionId).toBe('1');
    // The version stored for alice's own record is the first one.
    expect((await client.get(`Observation/${own.id}`)).body.meta.versionId).toBe('1');
  });

  test('each batch entry is checked; a transaction with one forbidden entry writes nothing', async () => {
    const batch = await client.post('', {
      resourceType: 'Bundle', type: 'batch',
      entry: [
        { resource: observation(alice, 'laboratory', 'b1'), request: { method: 'POST', url: 'Observation' } },
        { resource: observation(bob, 'laboratory', 'b2'), request: { method: 'POST', url: 'Observation' } },
        { request: { method: 'GET', url: `Patient/${bob}` } },
      ],
    });
    expect(batch.body.entry.map((e: any) => e.response.status)).toEqual([expect.stringMatching(/^201/), expect.stringMatching(/^403/), expect.stringMatching(/^404/)]);
    const tx = await client.post('', {
      resourceType: 'Bundle', type: 'transaction',
      entry: [
        { resource: observation(alice, 'laboratory', 't1'), request: { method: 'POST', url: 'Observation' } },
        { resource: observation(bob, 'laboratory', 't2'), request: { method: 'POST', url: 'Observation' } },
      ],
    });
    expect(tx.status).toBe(403);
    const written = await server.pool.query(`SELECT count(*)::int AS n FROM resource WHERE content->'code'->'coding'->0->>'code' IN ('t1', 't2')`);
    expect(written.rows[0].n).toBe(0);
  });
});

describe('v1 and v2 syntax, granular restrictions', () => {
  test('v1 patient/Observation.read: read and search Observations, nothing else', async () => {
    const client = await tokenFor('launch/patient patient/Observation.read', { patient: alice });
    expect((await client.get(`Observation/${obs.aliceLab}`)).status).toBe(200);
    expect(ids((await client.get('Observation?code=2345-7,8867-4')).body)).toEqual([`Observation/${obs.aliceLab}`, `Observation/${obs.aliceVital}`].sort());
    expect((await client.get(`Patient/${alice}`)).status).toBe(403);
    expect((await client.post('Observation', observation(alice, 'laboratory', 'x'))).status).toBe(403);
    expect((await client.delete(`Observation/${obs.aliceLab}`)).status).toBe(403);
    expect((await client.get('Observation/_history')).status).toBe(200);
  });

  test('v2 .s without .r: search yes, read no', async () => {
    const client = await tokenFor('launch/patient patient/Observation.s', { patient: alice });
    expect((await client.get('Observation')).status).toBe(200);
    expect((await client.get(`Observation/${obs.aliceLab}`)).status).toBe(403);
  });

  test('?category=laboratory: only laboratory results, in reads, searches and counts', async () => {
    const client = await tokenFor(`launch/patient patient/Observation.rs?category=${CAT}|laboratory`, { patient: alice });
    const search = await client.get('Observation?code=2345-7,8867-4&_total=accurate');
    expect(ids(search.body)).toEqual([`Observation/${obs.aliceLab}`]);
    expect(search.body.total).toBe(1);
    expect((await client.get(`Observation/${obs.aliceVital}`)).status).toBe(404);
    expect((await client.get(`Observation/${obs.aliceLab}`)).status).toBe(200);
  });

  test('granular write scopes check the content written', async () => {
    const client = await systemToken([`system/Observation.cu?category=${CAT}|laboratory`]);
    expect((await client.post('Observation', observation(alice, 'laboratory', 'g1'))).status).toBe(201);
    expect((await client.post('Observation', observation(alice, 'vital-signs', 'g2'))).status).toBe(403);
  });

  test('insufficient scope is 403 for every interaction it does not cover', async () => {
    const client = await systemToken(['system/Patient.rs']);
    expect((await client.get('Patient')).status).toBe(200);
    expect((await client.get('Observation')).status).toBe(403);
    expect((await client.post('Patient', { resourceType: 'Patient' })).status).toBe(403);
    expect((await client.put(`Patient/${alice}`, { resourceType: 'Patient', id: alice })).status).toBe(403);
    expect((await client.delete(`Patient/${alice}`)).status).toBe(403);
    expect((await client.post(`Patient/${alice}/$meta-add`, { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { tag: [{ code: 'x' }] } }] })).status).toBe(403);
    expect((await client.post(`Patient/${alice}/$expunge`, {})).status).toBe(403);
    const everything = await systemToken(['system/*.cruds']);
    // $expunge is for administrators only, even with every resource scope.
    expect((await everything.post(`Patient/${alice}/$expunge`, {})).status).toBe(403);
  });
});

describe('user/ scopes', () => {
  test('a patient user with user/*.rs sees only their own record', async () => {
    const client = await tokenFor('user/*.rs', { user: 'alice' });
    expect((await client.get(`Patient/${alice}`)).status).toBe(200);
    expect((await client.get(`Patient/${bob}`)).status).toBe(404);
    expect(ids((await client.get('Observation?code=2345-7')).body)).toEqual([`Observation/${obs.aliceLab}`]);
  });

  test('a practitioner user with user/*.rs sees every patient their organization holds; their writes carry their organization as custodian', async () => {
    const reader = await tokenFor('user/*.rs');
    expect((await reader.get(`Patient/${bob}`)).status).toBe(200);
    expect(ids((await reader.get('Patient')).body)).toEqual(expect.arrayContaining([`Patient/${alice}`, `Patient/${bob}`]));
    const writer = await tokenFor('user/Observation.c');
    const created = await writer.post('Observation', observation(bob, 'laboratory', 'c1'));
    expect(created.status).toBe(201);
    const row = await server.pool.query(`SELECT custodian FROM resource WHERE resource_type = 'Observation' AND id = $1`, [created.body.id]);
    expect(row.rows[0].custodian).toBe('org1');
  });
});
