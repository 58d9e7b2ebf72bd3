/**
 * Legal retention: outpatient records 15 years from the last visit, inpatient 30 years from
 * discharge, inherited by resources that reference the Encounter; deletes and $expunge
 * before that are refused with the date.
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

const ActCode = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

async function patientWithEncounter(klass: string, period: { start?: string; end?: string }) {
  const patient = (await client.post('Patient', { resourceType: 'Patient' })).body;
  const encounter = (
    await client.post('Encounter', {
      resourceType: 'Encounter',
      status: period.end ? 'finished' : 'in-progress',
      class: { system: ActCode, code: klass },
      subject: { reference: `Patient/${patient.id}` },
      period,
    })
  ).body;
  const observation = (
    await client.post('Observation', {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'weight' },
      subject: { reference: `Patient/${patient.id}` },
      encounter: { reference: `Encounter/${encounter.id}` },
    })
  ).body;
  return { patient, encounter, observation };
}

test('an outpatient record is kept 15 years from the visit: delete refused with the date', async () => {
  const { patient, encounter, observation } = await patientWithEncounter('AMB', { start: '2026-03-01T09:00:00Z', end: '2026-03-01T10:00:00Z' });
  for (const path of [`Encounter/${encounter.id}`, `Observation/${observation.id}`, `Patient/${patient.id}`]) {
    const res = await client.delete(path);
    expect(res.status).toBe(422);
    expect(res.body.issue[0].code).toBe('business-rule');
    expect(res.body.issue[0].diagnostics).toMatch(/must be kept until 2041-03-01/);
    expect((await client.get(path)).status).toBe(200);
  }
});

test('an inpatient record is kept 30 years from discharge; an ongoing stay cannot be deleted at all', async () => {
  const recent = await patientWithEncounter('IMP', { start: '2001-05-01', end: '2001-05-20' });
  const res = await client.delete(`Observation/${recent.observation.id}`);
  expect(res.status).toBe(422);
  expect(res.body.issue[0].diagnostics).toMatch(/until 2031-05-20.*inpatient stay/);
  const ongoing = await patientWithEncounter('IMP', { start: '2026-11-01' });
  const open = await client.delete(`Encounter/${ongoing.encounter.id}`);
  expect(open.status).toBe(422);
  expect(open.body.issue[0].diagnostics).toMatch(/no discharge date yet/);
});

test('records past their retention, or outside any encounter, are soft-deleted as usual', async () => {
  const old = await patientWithEncounter('AMB', { start: '2005-01-01', end: '2005-01-01' });
  expect((await client.delete(`Observation/${old.observation.id}`)).status).toBe(204);
  expect((await client.get(`Observation/${old.observation.id}`)).status).toBe(410);
  const oldStay = await patientWithEncounter('IMP', { start: '1990-01-01', end: '1990-02-01' });
  expect((await client.delete(`Encounter/${oldStay.encounter.id}`)).status).toBe(204);
  const loose = (await client.post('Basic', { resourceType: 'Basic', code: { text: 'note' } })).body;
  expect((await client.delete(`Basic/${loose.id}`)).status).toBe(204);
});

test('a transaction with a refused delete writes nothing', async () => {
  const { observation } = await patientWithEncounter('EMER', { start: '2026-10-01', end: '2026-10-02' });
  const res = await client.post('', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { resource: { resourceType: 'Basic', code: { text: 'side effect' } }, request: { method: 'POST', url: 'Basic' } },
      { request: { method: 'DELETE', url: `Observation/${observation.id}` } },
    ],
  });
  expect(res.status).toBe(422);
  const rows = await server.pool.query("SELECT count(*)::int AS n FROM resource WHERE content->'code'->>'text' = 'side effect'");
  expect(rows.rows[0].n).toBe(0);
});

test('$expunge is refused within retention and removes every version after it', async () => {
  const kept = await patientWithEncounter('AMB', { start: '2026-01-01', end: '2026-01-01' });
  const refused = await client.post(`Observation/${kept.observation.id}/$expunge`, { resourceType: 'Parameters' });
  expect(refused.status).toBe(422);
  expect(refused.body.issue[0].diagnostics).toMatch(/cannot be expunged/);

  const old = await patientWithEncounter('AMB', { start: '2000-01-01', end: '2000-01-01' });
  await client.put(`Observation/${old.observation.id}`, { ...old.observation, status: 'amended' });
  await client.delete(`Observation/${old.observation.id}`);
  const done = await client.post(`Observation/${old.observation.id}/$expunge`, { resourceType: 'Parameters' });
  expect(done.status).toBe(200);
  expect(done.body.issue[0].diagnostics).toMatch(/3 version\(s\) permanently removed/);
  expect((await client.get(`Observation/${old.observation.id}`)).status).toBe(404);
  expect((await client.get(`Observation/${old.observation.id}/_history/1`)).status).toBe(404);
  const rows = await server.pool.query('SELECT count(*)::int AS n FROM resource_version WHERE id = $1', [old.observation.id]);
  expect(rows.rows[0].n).toBe(0);
  expect((await client.post('Observation/unknown/$expunge', { resourceType: 'Parameters' })).status).toBe(404);
});
