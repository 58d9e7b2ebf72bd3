/**
 * Consent-based sharing between two hospitals: hospital A holds a patient's records; hospital
 * B sees none of them until the patient's active Consent permits it, then exactly what it
 * permits (classes, security labels, purpose, period; deny wins), through every read path:
 * read, vread, search, totals, paging, _include, _revinclude, _has, chains, compartment
 * search, history and $everything. Consent changes count from the next request.
 */
import { clientCredentialsToken, startTestServer, type TestServer } from '../helpers/server';
import type { FhirTestClient } from '../helpers/fhir-client';
import { registerClient } from '../helpers/smart';
import { syncConsentIndex } from '../../src/consent/store';
import {
  ACT_CODE, ACT_REASON, actor, allPages, CONFIDENTIALITY, consent, ids, provenanceTargets, recordIds, resourceClass, setUpHospitals, type Hospitals,
} from '../helpers/hospitals';

let server: TestServer;
let hospitals: Hospitals;
let drA: FhirTestClient;
let drB: FhirTestClient;
let drB2: FhirTestClient;
let patient: FhirTestClient;

const LOINC = 'http://loinc.org';
const day = 24 * 3600 * 1000;
const yesterday = new Date(Date.now() - day).toISOString().slice(0, 10);
const nextYear = new Date(Date.now() + 365 * day).toISOString().slice(0, 10);

function observation(id: string, patientId: string, extra: Record<string, unknown> = {}) {
  return { resourceType: 'Observation', id, status: 'final', code: { coding: [{ system: LOINC, code: '2345-7' }] }, subject: { reference: `Patient/${patientId}` }, ...extra };
}
const labelled = (system: string, code: string) => ({ meta: { security: [{ system, code }] } });

/** What hospital B may see of pat1 under the main Consent: A's records except PSY, R and Condition; B's own. */
const PERMITTED_OBSERVATIONS = ['Observation/obsAdmin', 'Observation/obsB', 'Observation/obsFeed', 'Observation/obsLab', 'Observation/obsVital'];

/** The main Consent: hospital B, for treatment, Patient/Observation/Encounter up to normal confidentiality, never PSY. */
function mainConsent(overrides: Record<string, unknown> = {}, status = 'active') {
  return {
    ...consent('pat1', {
      actor: [actor('Organization/hospB')],
      purpose: [{ system: ACT_REASON, code: 'TREAT' }],
      class: resourceClass('Patient', 'Observation', 'Encounter'),
      securityLabel: [{ system: CONFIDENTIALITY, code: 'N' }],
      period: { start: yesterday, end: nextYear },
      provision: [{ type: 'deny', securityLabel: [{ system: ACT_CODE, code: 'PSY' }] }],
      ...overrides,
    }, status),
    id: 'c1',
  };
}

beforeAll(async () => {
  server = await startTestServer();
  hospitals = await setUpHospitals(server, ['pat1', 'pat2']);
  drA = await hospitals.login('drA');
  drB = await hospitals.login('drB');
  drB2 = await hospitals.login('drB2');
  patient = await hospitals.login('pat1');
  const put = async (client: FhirTestClient, resource: any) => {
    const res = await client.put(`${resource.resourceType}/${resource.id}`, resource);
    if (res.status !== 201) throw new Error(`${resource.resourceType}/${resource.id}: ${res.status} ${res.text}`);
  };
  for (const id of ['pat1', 'pat2']) await put(drA, { resourceType: 'Patient', id, name: [{ family: id === 'pat1' ? 'Wang' : 'Li' }], managingOrganization: { reference: 'Organization/hospA' } });
  await put(drA, observation('obsLab', 'pat1', { performer: [{ reference: 'Practitioner/drA' }] }));
  await put(drA, observation('obsPsy', 'pat1', labelled(ACT_CODE, 'PSY')));
  await put(drA, observation('obsR', 'pat1', labelled(CONFIDENTIALITY, 'R')));
  await put(drA, { resourceType: 'Condition', id: 'cond1', subject: { reference: 'Patient/pat1' }, code: { coding: [{ system: 'http://snomed.info/sct', code: '195967001' }] } });
  await put(drA, observation('obsPat2', 'pat2'));
  const tx = await drA.post('', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { resource: { resourceType: 'Encounter', id: 'enc1', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'Patient/pat1' } }, request: { method: 'PUT', url: 'Encounter/enc1' } },
      { resource: observation('obsVital', 'pat1', { encounter: { reference: 'Encounter/enc1' }, hasMember: [{ reference: 'Observation/obsPsy' }] }), request: { method: 'PUT', url: 'Observation/obsVital' } },
    ],
  });
  expect(tx.status).toBe(200);
  const feed = await registerClient(server, { name: 'Lab feed A', type: 'confidential-symmetric', scopes: ['system/Observation.cu'], organization: 'hospA' });
  await put(server.client(await clientCredentialsToken(server.baseUrl, feed.clientId, feed.clientSecret!, 'system/Observation.cu')), observation('obsFeed', 'pat1'));
  await put(server.client(), observation('obsAdmin', 'pat1'));
  await put(drB, observation('obsB', 'pat1'));
});
afterAll(async () => server.close());

test('every write path records the custodian: users, transaction entries, clients acting for an organization', async () => {
  const rows = await server.pool.query(`SELECT resource_type || '/' || id AS ref, custodian FROM resource WHERE id = ANY($1)`, [
    ['pat1', 'obsLab', 'enc1', 'obsVital', 'obsFeed', 'obsAdmin', 'obsB'],
  ]);
  expect(Object.fromEntries(rows.rows.map((r) => [r.ref, r.custodian]))).toEqual({
    'Patient/pat1': 'hospA', 'Observation/obsLab': 'hospA', 'Encounter/enc1': 'hospA', 'Observation/obsVital': 'hospA',
    'Observation/obsFeed': 'hospA', 'Observation/obsAdmin': null, 'Observation/obsB': 'hospB',
  });
  const history = await server.pool.query(`SELECT DISTINCT custodian FROM resource_version WHERE id = 'obsVital'`);
  expect(history.rows).toEqual([{ custodian: 'hospA' }]);
});

/** Resources outside every patient compartment that every institution sees. */
const SHARED = /^(Organization|Practitioner|CodeSystem|ValueSet|ConceptMap|NamingSystem|StructureDefinition|SearchParameter|ImplementationGuide|OperationDefinition)\//;

describe('without consent', () => {
  test('hospital B sees only its own records of the patient, through every path', async () => {
    expect((await drB.get('Patient/pat1')).status).toBe(404);
    expect((await drB.get('Observation/obsLab')).status).toBe(404);
    expect((await drB.get('Observation/obsLab/_history/1')).status).toBe(404);
    expect((await drB.get('Observation/obsLab/_history')).status).toBe(404);
    expect((await drB.get('Patient/pat1/$everything')).status).toBe(404);
    const search = await drB.get('Observation?subject=Patient/pat1&_total=accurate');
    expect([ids(search.body), search.body.total]).toEqual([['Observation/obsB'], 1]);
    const compartment = (await drB.get('Patient/pat1/*')).body;
    expect(recordIds(compartment)).toEqual(['Observation/obsB']);
    expect(provenanceTargets(compartment)).toEqual(['Observation/obsB/_history/1']);
    expect(ids((await drB.get('Observation?_id=obsB&_include=Observation:subject')).body)).toEqual(['Observation/obsB']);
    expect(ids((await drB.get('Patient?_has:Observation:subject:code=2345-7')).body)).toEqual([]);
    expect(ids((await drB.get('Observation?subject:Patient.name=Wang')).body)).toEqual([]);
    expect(ids((await drB.get('Observation/_history')).body)).toEqual(['Observation/obsB']);
    const all = await drB.get('_history?_count=1000');
    // (AuditEvents outside every patient compartment, such as logins, are not a patient's record;
    // directory and conformance resources, such as the profile pack, are everyone's.)
    expect(recordIds(all.body).filter((r) => !SHARED.test(r) && !r.startsWith('AuditEvent/'))).toEqual(['Observation/obsB']);
    // Provenances: of the shared resources (outside every compartment) and of B's own write.
    expect(provenanceTargets(all.body).filter((t) => !SHARED.test(t))).toEqual(['Observation/obsB/_history/1']);
  });

  test('directory resources stay visible; hospital A sees its own records, not B\'s nor those without custodian', async () => {
    expect((await drB.get('Organization/hospA')).status).toBe(200);
    expect((await drB.get('Practitioner/drA')).status).toBe(200);
    const mine = await drA.get('Observation?subject=Patient/pat1');
    expect(ids(mine.body)).toEqual(['Observation/obsFeed', 'Observation/obsLab', 'Observation/obsPsy', 'Observation/obsR', 'Observation/obsVital']);
  });

  test('hospital B cannot grant itself access: only the patient, the Patient\'s custodian or a system client records a Consent', async () => {
    const res = await drB.post('Consent', consent('pat1', { actor: [actor('Organization/hospB')] }));
    expect(res.status).toBe(403);
    expect(res.body.issue[0].diagnostics).toMatch(/Patient\/pat1/);
    // A patient records consents for themselves only.
    expect((await patient.post('Consent', consent('pat2', { actor: [actor('Organization/hospB')] }))).status).toBe(403);
    expect((await server.pool.query(`SELECT count(*)::int AS n FROM consent_provision`)).rows[0].n).toBe(0);
  });
});

describe('under the patient\'s Consent', () => {
  beforeAll(async () => {
    const res = await patient.put('Consent/c1', mainConsent());
    expect(res.status).toBe(201);
  });

  test('reads: permitted classes within the label bound; never the denied label, other classes or other patients', async () => {
    for (const path of ['Patient/pat1', 'Observation/obsLab', 'Observation/obsVital', 'Observation/obsFeed', 'Observation/obsAdmin', 'Encounter/enc1', 'Observation/obsLab/_history/1']) {
      expect([path, (await drB.get(path)).status]).toEqual([path, 200]);
    }
    for (const path of ['Observation/obsPsy', 'Observation/obsR', 'Condition/cond1', 'Patient/pat2', 'Observation/obsPat2', 'Observation/obsPsy/_history/1']) {
      expect([path, (await drB.get(path)).status]).toEqual([path, 404]);
    }
  });

  test('search, totals and paging show exactly the permitted records', async () => {
    const search = await drB.get('Observation?_total=accurate');
    expect(ids(search.body)).toEqual(PERMITTED_OBSERVATIONS);
    expect(search.body.total).toBe(5);
    const paged = await allPages(drB, 'Observation?_count=2');
    expect(paged).toEqual({ ids: PERMITTED_OBSERVATIONS, pages: 3 });
    expect((await drB.get('Observation?_summary=count')).body.total).toBe(5);
    expect(ids((await drB.get('Condition')).body)).toEqual([]);
    expect(ids((await drB.get('Patient')).body)).toEqual(['Patient/pat1']);
    expect(ids((await drB.get('?_type=Observation,Condition,Encounter&_count=100')).body)).toEqual([...PERMITTED_OBSERVATIONS, 'Encounter/enc1'].sort());
  });

  test('_include, _revinclude, _has, chains and compartment search never reach a denied record', async () => {
    expect(ids((await drB.get('Observation?_id=obsVital&_include=Observation:has-member&_include=Observation:subject')).body)).toEqual([
      'Observation/obsVital', 'Patient/pat1',
    ]);
    const rev = await drB.get('Patient?_id=pat1&_revinclude=Observation:subject&_revinclude=Condition:subject');
    expect(ids(rev.body)).toEqual([...PERMITTED_OBSERVATIONS, 'Patient/pat1'].sort());
    expect(ids((await drB.get('Encounter?_revinclude=*')).body)).toEqual(['Encounter/enc1', 'Observation/obsVital']);
    expect(ids((await drB.get('Patient?_has:Observation:subject:code=2345-7')).body)).toEqual(['Patient/pat1']);
    expect(ids((await drB.get('Patient?_has:Condition:subject:code=195967001')).body)).toEqual([]);
    expect(ids((await drB.get('Observation?subject:Patient.name=Wang')).body)).toEqual(PERMITTED_OBSERVATIONS);
    expect(ids((await drB.get('Observation?subject:Patient.name=Li')).body)).toEqual([]);
    const compartment = (await drB.get('Patient/pat1/*?_count=100')).body;
    expect(recordIds(compartment)).toEqual([...PERMITTED_OBSERVATIONS, 'Encounter/enc1', 'Patient/pat1'].sort());
    // Hospital A's Provenances stay A's: B sees only the Provenance of its own write.
    expect(provenanceTargets(compartment)).toEqual(['Observation/obsB/_history/1']);
  });

  test('$everything and history show exactly the permitted records', async () => {
    const everything = await drB.get('Patient/pat1/$everything?_count=100');
    expect(everything.status).toBe(200);
    const found = ids(everything.body).filter((r) => !/^(Organization|Practitioner)\//.test(r));
    expect(found).toEqual([...PERMITTED_OBSERVATIONS, 'Encounter/enc1', 'Patient/pat1'].sort());
    expect(ids((await drB.get('Observation/_history')).body)).toEqual(PERMITTED_OBSERVATIONS);
    expect((await drB.get('Observation/obsPsy/_history')).status).toBe(404);
    const all = ids((await drB.get('_history?_count=1000')).body);
    for (const hidden of ['Observation/obsPsy', 'Observation/obsR', 'Condition/cond1', 'Observation/obsPat2', 'Patient/pat2']) {
      expect(all).not.toContain(hidden);
    }
  });

  test('the actor is the organization: every practitioner of hospital B; the purpose must match', async () => {
    expect(ids((await drB2.get('Observation')).body)).toEqual(PERMITTED_OBSERVATIONS);
    const operations = drB.withHeaders({ 'X-Purpose-Of-Use': 'HOPERAT' });
    expect(ids((await operations.get('Observation')).body)).toEqual(['Observation/obsB']);
    expect((await operations.get('Patient/pat1')).status).toBe(404);
  });

  test('consent shares for reading: hospital B cannot change or delete hospital A\'s records', async () => {
    const lab = (await drB.get('Observation/obsLab')).body;
    expect((await drB.put('Observation/obsLab', { ...lab, status: 'amended' })).status).toBe(403);
    expect((await drB.patch('Observation/obsLab', [{ op: 'replace', path: '/status', value: 'amended' }], { 'Content-Type': 'application/json-patch+json' })).status).toBe(403);
    expect((await drB.delete('Observation/obsLab')).status).toBe(403);
    expect((await drB.get('Observation/obsLab')).body.meta.versionId).toBe('1');
    expect((await drB.put('Observation/obsB', { ...observation('obsB', 'pat1'), status: 'amended' })).status).toBe(200);
  });
  test('labelling a record later covers its earlier versions too', async () => {
    expect((await drA.put('Observation/obsLater', observation('obsLater', 'pat1'))).status).toBe(201);
    expect((await drB.get('Observation/obsLater/_history/1')).status).toBe(200);
    expect((await drA.put('Observation/obsLater', observation('obsLater', 'pat1', labelled(ACT_CODE, 'PSY')))).status).toBe(200);
    expect((await drB.get('Observation/obsLater')).status).toBe(404);
    expect((await drB.get('Observation/obsLater/_history/1')).status).toBe(404);
    expect(ids((await drB.get('Observation/_history')).body)).not.toContain('Observation/obsLater');
    expect((await drA.get('Observation/obsLater/_history/1')).status).toBe(200);
  });
});

describe('consent changes count from the next request', () => {
  test('a deny in another Consent wins over the permit; deleting it restores access', async () => {
    const deny = await patient.post('Consent', consent('pat1', { type: 'deny', actor: [actor('Organization/hospB')], class: resourceClass('Encounter') }));
    expect(deny.status).toBe(201);
    expect((await drB.get('Encounter/enc1')).status).toBe(404);
    expect((await drB.get('Observation/obsLab')).status).toBe(200);
    expect((await patient.delete(`Consent/${deny.body.id}`)).status).toBe(204);
    expect((await drB.get('Encounter/enc1')).status).toBe(200);
  });

  test('a period that has ended grants nothing', async () => {
    expect((await patient.put('Consent/c1', mainConsent({ period: { start: '2020-01-01', end: yesterday } }))).status).toBe(200);
    expect(ids((await drB.get('Observation')).body)).toEqual(['Observation/obsB']);
    expect((await patient.put('Consent/c1', mainConsent())).status).toBe(200);
    expect(ids((await drB.get('Observation')).body)).toEqual(PERMITTED_OBSERVATIONS);
  });

  test('a practitioner actor: only that practitioner', async () => {
    const res = await patient.post('Consent', consent('pat1', { actor: [actor('Practitioner/drB2')], class: resourceClass('Condition') }));
    expect(res.status).toBe(201);
    expect(ids((await drB2.get('Condition')).body)).toEqual(['Condition/cond1']);
    expect(ids((await drB.get('Condition')).body)).toEqual([]);
    expect((await patient.put(`Consent/${res.body.id}`, { ...res.body, status: 'inactive' })).status).toBe(200);
    expect(ids((await drB2.get('Condition')).body)).toEqual([]);
  });

  test('revoking the Consent (status inactive) takes effect at once; the Patient\'s custodian may record one again', async () => {
    expect((await patient.put('Consent/c1', mainConsent({}, 'inactive'))).status).toBe(200);
    expect((await drB.get('Observation/obsLab')).status).toBe(404);
    expect(ids((await drB.get('Observation?_total=accurate')).body)).toEqual(['Observation/obsB']);
    const recorded = await drA.post('Consent', consent('pat1', { actor: [actor('Organization/hospB')], class: resourceClass('Observation') }));
    expect(recorded.status).toBe(201);
    expect((await drB.get('Observation/obsPsy')).status).toBe(200);
    expect((await drA.delete(`Consent/${recorded.body.id}`)).status).toBe(204);
    expect((await drB.get('Observation/obsPsy')).status).toBe(404);
    const left = await server.pool.query(`SELECT count(*)::int AS n FROM consent_provision`);
    expect(left.rows[0].n).toBe(0);
  });

  test('nested provisions are exceptions: a permit inside a deny inside a permit', async () => {
    const res = await patient.post('Consent', consent('pat1', {
      actor: [actor('Organization/hospB')],
      provision: [{ type: 'deny', class: resourceClass('Observation'), provision: [{ type: 'permit', data: [{ meaning: 'instance', reference: { reference: 'Observation/obsLab' } }] }] }],
    }));
    expect(res.status).toBe(201);
    expect(ids((await drB.get('Observation')).body)).toEqual(['Observation/obsB', 'Observation/obsLab']);
    expect(ids((await drB.get('Condition')).body)).toEqual(['Condition/cond1']);
    expect((await drB.get('Observation/obsVital')).status).toBe(404);
    expect((await patient.delete(`Consent/${res.body.id}`)).status).toBe(204);
    expect(ids((await drB.get('Observation')).body)).toEqual(['Observation/obsB']);
  });

  test('Consents stored before the module ran are indexed at start-up; an expunged Consent grants nothing', async () => {
    const res = await patient.post('Consent', consent('pat1', { actor: [actor('Organization/hospB')], class: resourceClass('Condition') }));
    const rid = (await server.pool.query(`SELECT rid FROM resource WHERE resource_type = 'Consent' AND id = $1`, [res.body.id])).rows[0].rid;
    await server.pool.query(`DELETE FROM consent_index WHERE rid = $1`, [rid]);
    expect(ids((await drB.get('Condition')).body)).toEqual([]);
    expect(await syncConsentIndex(server.services)).toBe(1);
    expect(ids((await drB.get('Condition')).body)).toEqual(['Condition/cond1']);
    await server.pool.query(`DELETE FROM resource WHERE rid = $1`, [rid]);
    expect(ids((await drB.get('Condition')).body)).toEqual([]);
  });
});
