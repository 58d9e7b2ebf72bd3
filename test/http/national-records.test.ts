/**
 * The server's ordinary flows with the national pack required (REQUIRED_PROFILES=national):
 * create, read, update, patch, $meta-add, delete, history and transactions of conforming
 * records still work, and what the server writes itself (the pack at start-up, an AuditEvent
 * for every interaction, a signed Provenance for every write, also from an unsigned
 * X-Provenance) conforms to cn-audit-event and cn-signature-provenance.
 */
import type { FhirTestClient } from '../helpers/fhir-client';
import { patientRecord, referenceData, standalonePatient } from '../../bench/data/generator';
import { instance } from '../helpers/profiles';
import { startTestServer, type TestServer } from '../helpers/server';
import { issuesOf } from '../helpers/validation';

const SD = 'http://fhir-server.dev/cn/StructureDefinition/';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer({ REQUIRED_PROFILES: 'national' });
  client = server.client();
});
afterAll(async () => server.close());


const errors = (body: any) => issuesOf(body).filter((i) => i.severity === 'error' || i.severity === 'fatal');

let patientId: string;

test('the CapabilityStatement names the national profiles as required, and the pack is served', async () => {
  const statement = (await client.get('metadata')).body;
  const profileOf = (type: string) => statement.rest[0].resource.find((r: any) => r.type === type)?.profile;
  expect(profileOf('Patient')).toBe(`${SD}cn-patient`);
  expect(profileOf('Provenance')).toBe(`${SD}cn-signature-provenance`);
  expect(profileOf('AuditEvent')).toBe(`${SD}cn-audit-event`);
  const sd = await client.get(`StructureDefinition?url=${SD}cn-patient`);
  expect(sd.body.entry?.[0]?.resource?.snapshot?.element?.length).toBeGreaterThan(0);
});

test('create, read, update, patch, $meta-add and history of a conforming Patient', async () => {
  const created = await client.post('Patient', instance('cn-patient', 'valid-full'));
  expect(created.status).toBe(201);
  patientId = created.body.id;
  expect((await client.get(`Patient/${patientId}`)).status).toBe(200);

  const updated = await client.put(`Patient/${patientId}`, { ...instance('cn-patient', 'valid-full'), id: patientId, active: true });
  expect(updated.status).toBe(200);
  expect(updated.body.meta.versionId).toBe('2');

  const patched = await client.request('PATCH', `Patient/${patientId}`, {
    rawBody: JSON.stringify([{ op: 'add', path: '/telecom', value: [{ system: 'phone', value: '010-12345678' }] }]),
    headers: { 'Content-Type': 'application/json-patch+json' },
  });
  expect(patched.status).toBe(200);
  expect(patched.body.meta.versionId).toBe('3');

  const meta = await client.post(`Patient/${patientId}/$meta-add`, {
    resourceType: 'Parameters',
    parameter: [{ name: 'meta', valueMeta: { tag: [{ system: 'urn:test', code: 'national' }] } }],
  });
  expect(meta.status).toBe(200);

  const history = await client.get(`Patient/${patientId}/_history`);
  expect(history.body.entry).toHaveLength(4);
});

test('an update with an unsigned X-Provenance: stored, and its Provenance conforms', async () => {
  const res = await client.put(`Patient/${patientId}`, { ...instance('cn-patient', 'valid-full'), id: patientId, active: false }, {
    'X-Provenance': JSON.stringify({ resourceType: 'Provenance', reason: [{ text: 'correction' }] }),
  });
  expect(res.status).toBe(200);
  const found = await client.get(`Provenance?target=Patient/${patientId}/_history/${res.body.meta.versionId}`);
  const provenance = found.body.entry[0].resource;
  expect(provenance.reason).toEqual([{ text: 'correction' }]);
  expect(provenance.signature.length).toBeGreaterThan(0);
});

test('a transaction of conforming entries, then delete (retention still applies)', async () => {
  const encounter = { ...instance('cn-encounter', 'valid-outpatient'), subject: { reference: `Patient/${patientId}` } };
  const observation = { resourceType: 'Observation', status: 'final', code: { text: 'BP' }, subject: { reference: `Patient/${patientId}` }, encounter: { reference: 'urn:uuid:enc' } };
  const tx = await client.post('', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:enc', resource: encounter, request: { method: 'POST', url: 'Encounter' } },
      { fullUrl: 'urn:uuid:obs', resource: observation, request: { method: 'POST', url: 'Observation' } },
    ],
  });
  expect(tx.status).toBe(200);
  const observationId = /Observation\/([^/]+)/.exec(tx.body.entry[1].response.location)?.[1];
  // Part of an outpatient visit: kept 15 years (legal retention), delete refused.
  const kept = await client.delete(`Observation/${observationId}`);
  expect(kept.status).toBe(422);
  expect(kept.body.issue[0].code).toBe('business-rule');
  // Not part of a visit: deleted.
  const loose = await client.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'BP' }, subject: { reference: `Patient/${patientId}` } });
  expect((await client.delete(`Observation/${loose.body.id}`)).status).toBe(204);
  expect((await client.get(`Observation/${loose.body.id}`)).status).toBe(410);
});

test('a transaction whose Provenance entry (unsigned) is about another entry: the Provenance stored for it conforms', async () => {
  const encounter = { ...instance('cn-encounter', 'valid-inpatient'), subject: { reference: `Patient/${patientId}` } };
  const tx = await client.post('', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:stay', resource: encounter, request: { method: 'POST', url: 'Encounter' } },
      { resource: { resourceType: 'Provenance', target: [{ reference: 'urn:uuid:stay' }], reason: [{ text: 'admission' }] }, request: { method: 'POST', url: 'Provenance' } },
    ],
  });
  expect(tx.status).toBe(200);
  expect(tx.body.entry.map((e: any) => e.response.status.slice(0, 3))).toEqual(['201', '201']);
  const id = /Provenance\/([^/]+)/.exec(tx.body.entry[1].response.location)?.[1];
  const provenance = (await client.get(`Provenance/${id}`)).body;
  expect(provenance.reason).toEqual([{ text: 'admission' }]);
  const checked = await client.post(`Provenance/$validate?profile=${SD}cn-signature-provenance`, provenance);
  expect(errors(checked.body)).toEqual([]);
});

test('a batch: the conforming entry is stored, the invalid one gets its own 422', async () => {
  const bad = instance('cn-patient', 'invalid-check-digit');
  const res = await client.post('', {
    resourceType: 'Bundle',
    type: 'batch',
    entry: [
      { resource: instance('cn-patient', 'valid-minimal'), request: { method: 'POST', url: 'Patient' } },
      { resource: bad, request: { method: 'POST', url: 'Patient' } },
    ],
  });
  expect(res.status).toBe(200);
  expect(res.body.entry.map((e: any) => e.response.status.slice(0, 3))).toEqual(['201', '422']);
  const outcome = res.body.entry[1].response.outcome;
  expect(outcome.issue.some((i: any) => i.expression?.[0] === 'Patient.identifier[0].value' && /^cn-pat-2: /.test(i.diagnostics))).toBe(true);
});

test('refused and unauthorized requests are audited too', async () => {
  expect((await client.post('Patient', instance('cn-patient', 'invalid-no-gender'))).status).toBe(422);
  expect((await server.client('not-a-token').get(`Patient/${patientId}`)).status).toBe(401);
});

/** Distinct shapes of what the server wrote: the same builder gives the same structure. */
function shape(resource: any): string {
  const codes = (x: any) => JSON.stringify(x, (key, value) => (['id', 'meta', 'data', 'when', 'recorded', 'reference', 'value', 'valueBase64Binary', 'query', 'display', 'text'].includes(key) ? undefined : value));
  return codes(resource);
}

test('every AuditEvent the server wrote conforms to cn-audit-event', async () => {
  const { rows } = await server.pool.query(`SELECT content FROM resource WHERE resource_type = 'AuditEvent' AND NOT deleted`);
  expect(rows.length).toBeGreaterThan(10);
  const seen = new Set<string>();
  let checked = 0;
  for (const { content } of rows) {
    const key = shape(content);
    if (seen.has(key)) continue;
    seen.add(key);
    const res = await client.post(`AuditEvent/$validate?profile=${SD}cn-audit-event`, content);
    expect(res.status).toBe(200);
    expect([content.subtype?.map((s: any) => s.code), errors(res.body)]).toEqual([content.subtype?.map((s: any) => s.code), []]);
    checked++;
  }
  expect(checked).toBeGreaterThan(3);
});

test('every Provenance the server wrote (for the pack at start-up and for each write) conforms to cn-signature-provenance', async () => {
  const { rows } = await server.pool.query(`SELECT content FROM resource WHERE resource_type = 'Provenance' AND NOT deleted`);
  expect(rows.length).toBeGreaterThan(5);
  const seen = new Set<string>();
  for (const { content } of rows) {
    const key = shape(content);
    if (seen.has(key)) continue;
    seen.add(key);
    const res = await client.post(`Provenance/$validate?profile=${SD}cn-signature-provenance`, content);
    expect(res.status).toBe(200);
    expect([content.target, errors(res.body)]).toEqual([content.target, []]);
  }
  expect(seen.size).toBeGreaterThan(1);
});

test('the benchmark data generator produces records that conform to the pack', async () => {
  expect((await client.post('', referenceData())).status).toBe(200);
  for (const index of [0, 1, 2, 3]) {
    const record = patientRecord(7, index);
    const res = await client.post('', record.bundle);
    if (res.status !== 200) console.log(JSON.stringify(issuesOf(res.body).filter((i) => i.severity === 'error')));
    expect(res.status).toBe(200);
  }
  expect((await client.post('Patient', standalonePatient(7, 1))).status).toBe(201);
  // Its extensions are the pack's (an unknown extension would only be a warning): none unknown, and the ethnicity is checked.
  const patient = patientRecord(7, 0).bundle.entry!.find((e) => e.resource?.resourceType === 'Patient')!.resource as any;
  expect(patient.extension.map((e: any) => e.url)).toContain('http://fhir-server.dev/cn/StructureDefinition/cn-ethnicity');
  const checked = await client.post('Patient/$validate', patient);
  expect(issuesOf(checked.body).filter((i) => i.severity !== 'information' && i.code !== 'invariant')).toEqual([]);
});
