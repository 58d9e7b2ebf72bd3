/**
 * The audit trail: every interaction, successful or not, leaves an AuditEvent (IHE BALP
 * shape) that is already stored when the response arrives; AuditEvents cannot be changed.
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

async function eventsFor(requestId: string): Promise<any[]> {
  const rows = await server.pool.query(
    `SELECT content FROM resource WHERE resource_type = 'AuditEvent'
       AND content->'entity' @> jsonb_build_array(jsonb_build_object('what', jsonb_build_object('identifier', jsonb_build_object('value', $1::text))))
     ORDER BY last_updated`,
    [requestId]
  );
  return rows.rows.map((r) => r.content);
}

const code = (codings: any[] | undefined) => codings?.map((c) => c.code);

test('a read leaves an AuditEvent, stored before the response arrived, naming the patient', async () => {
  const patient = (await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'Audit' }] })).body;
  const res = await client.get(`Patient/${patient.id}`, { 'X-Request-Id': 'audit-read-1' });
  expect(res.status).toBe(200);
  // No waiting: the record must already be durable.
  const [event] = await eventsFor('audit-read-1');
  expect(event).toBeDefined();
  expect(event.type.code).toBe('rest');
  expect(code(event.subtype)).toEqual(['read']);
  expect(event.action).toBe('R');
  expect(event.outcome).toBe('0');
  expect(code(event.agent.map((a: any) => a.type.coding[0]))).toEqual(['110153', '110152']);
  expect(event.agent[1].network).toEqual({ address: server.baseUrl, type: '5' });
  expect(event.entity).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ what: { reference: `Patient/${patient.id}` }, role: expect.objectContaining({ code: '1' }) }),
      expect.objectContaining({ what: { reference: `Patient/${patient.id}/_history/1` }, role: expect.objectContaining({ code: '4' }) }),
    ])
  );
  // The event is in the patient's compartment, which is how patients will find accesses to their record.
  const row = await server.pool.query("SELECT compartments FROM resource WHERE resource_type = 'AuditEvent' AND content->>'recorded' = $1", [event.recorded]);
  expect(row.rows.some((r) => r.compartments.includes(patient.id))).toBe(true);
});

test('a search names the patients of what it returned, matches and included resources alike', async () => {
  const [first, second] = [
    (await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'Searched' }] })).body,
    (await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'Searched' }] })).body,
  ];
  const code = { coding: [{ system: 'urn:test:audit', code: 'search-patients' }] };
  const observation = (await client.post('Observation', { resourceType: 'Observation', status: 'final', code, subject: { reference: `Patient/${first.id}` } })).body;
  const encounter = (await client.post('Encounter', { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${second.id}` } })).body;
  await client.put(`Observation/${observation.id}`, { ...observation, encounter: { reference: `Encounter/${encounter.id}` } });
  // The criteria name no patient: the patients come from the results.
  const res = await client.get('Observation?code=urn:test:audit|search-patients&_include=Observation:encounter', { 'X-Request-Id': 'audit-search-results' });
  expect(res.body.entry.map((e: any) => e.resource.resourceType)).toEqual(['Observation', 'Encounter']);
  // One event per patient concerned (BALP's patient-specific pattern).
  const events = await eventsFor('audit-search-results');
  const patients = events.flatMap((event) => event.entity.filter((e: any) => e.role?.code === '1').map((e: any) => e.what.reference));
  expect(patients.sort()).toEqual([`Patient/${first.id}`, `Patient/${second.id}`].sort());
});

test('failures and refusals are audited too, with their outcome', async () => {
  await client.get('Patient/not-there', { 'X-Request-Id': 'audit-404' });
  const [notFound] = await eventsFor('audit-404');
  expect(notFound.outcome).toBe('4');
  expect(notFound.outcomeDesc).toMatch(/not known/);
  await client.request('POST', 'Patient', { rawBody: '{broken', headers: { 'Content-Type': 'application/fhir+json', 'X-Request-Id': 'audit-400' } });
  const [bad] = await eventsFor('audit-400');
  expect(bad.outcome).toBe('4');
});

test('writes: create, update, delete carry their action and the exact version', async () => {
  const created = await client.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'x' } }, { 'X-Request-Id': 'audit-create', Prefer: 'return=minimal' });
  const id = created.headers.get('location')!.split('/').slice(-3)[0];
  const [c] = await eventsFor('audit-create');
  expect([c.action, code(c.subtype)]).toEqual(['C', ['create']]);
  expect(c.entity.map((e: any) => e.what.reference).filter(Boolean)).toEqual([`Observation/${id}/_history/1`]);
  await client.put(`Observation/${id}`, { resourceType: 'Observation', id, status: 'amended', code: { text: 'x' } }, { 'X-Request-Id': 'audit-update' });
  expect((await eventsFor('audit-update'))[0].action).toBe('U');
  await client.delete(`Observation/${id}`, { 'X-Request-Id': 'audit-delete' });
  const [d] = await eventsFor('audit-delete');
  expect([d.action, code(d.subtype)]).toEqual(['D', ['delete']]);
});

test('a transaction leaves one event for the Bundle and one per entry', async () => {
  await client.post(
    '',
    {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000001', resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000001' } }, request: { method: 'POST', url: 'Encounter' } },
      ],
    },
    { 'X-Request-Id': 'audit-tx' }
  );
  const events = await eventsFor('audit-tx');
  expect(events.map((e) => code(e.subtype)![0]).sort()).toEqual(['create', 'create', 'transaction']);
});

test('history reads record their query', async () => {
  await client.get('Patient/_history?_count=1', { 'X-Request-Id': 'audit-history' });
  const [event] = await eventsFor('audit-history');
  expect(code(event.subtype)).toEqual(['history-type']);
  const query = event.entity.find((e: any) => e.role?.code === '24');
  expect(Buffer.from(query.query, 'base64').toString()).toBe(`GET ${server.baseUrl}/Patient/_history?_count=1`);
});

test('AuditEvents can be created by clients but never updated, patched or deleted (405)', async () => {
  const created = await client.post('AuditEvent', {
    resourceType: 'AuditEvent',
    type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110100' },
    recorded: '2026-01-01T00:00:00Z',
    agent: [{ requestor: true, who: { display: 'external system' } }],
    source: { observer: { display: 'external' } },
  });
  expect(created.status).toBe(201);
  const id = created.body.id;
  expect((await client.put(`AuditEvent/${id}`, { ...created.body, outcome: '4' })).status).toBe(405);
  expect((await client.request('PATCH', `AuditEvent/${id}`, { body: [{ op: 'add', path: '/outcome', value: '4' }], headers: { 'Content-Type': 'application/json-patch+json' } })).status).toBe(405);
  const del = await client.delete(`AuditEvent/${id}`);
  expect(del.status).toBe(405);
  expect(del.body.resourceType).toBe('OperationOutcome');
  expect((await client.delete('AuditEvent?outcome=0')).status).toBe(405);
  expect((await client.get(`AuditEvent/${id}`)).body.meta.versionId).toBe('1');
  const cs = (await client.get('metadata')).body;
  const audit = cs.rest[0].resource.find((r: any) => r.type === 'AuditEvent');
  expect(audit.interaction.map((i: any) => i.code)).not.toEqual(expect.arrayContaining(['update']));
  expect(audit.interaction.map((i: any) => i.code)).not.toEqual(expect.arrayContaining(['delete']));
});

test('concurrent requests each get their own durable AuditEvent', async () => {
  const patient = (await client.post('Patient', { resourceType: 'Patient' })).body;
  await Promise.all(Array.from({ length: 40 }, (_, i) => client.get(`Patient/${patient.id}`, { 'X-Request-Id': `audit-burst-${i}` })));
  const rows = await server.pool.query(
    "SELECT count(*)::int AS n FROM resource WHERE resource_type = 'AuditEvent' AND content::text LIKE '%audit-burst-%'"
  );
  expect(rows.rows[0].n).toBe(40);
});

test('AUDIT_ENABLED=false records nothing', async () => {
  const quiet = await startTestServer({ AUDIT_ENABLED: 'false' });
  try {
    await quiet.client().get('metadata');
    await quiet.client().post('Patient', { resourceType: 'Patient' });
    const rows = await quiet.pool.query("SELECT count(*)::int AS n FROM resource WHERE resource_type = 'AuditEvent'");
    expect(rows.rows[0].n).toBe(0);
  } finally {
    await quiet.close();
  }
});
