/**
 * $validate at type and instance level: the resource in the body or in a Parameters body,
 * with and without a profile, each mode (create, update, delete), the GET form; always 200
 * with an OperationOutcome when the validation could be made.
 */
import type { TestServer } from '../helpers/server';
import type { FhirTestClient } from '../helpers/fhir-client';
import { conformingPatient, errorsOf, issuesOf, startValidationServer, TEST_PATIENT } from '../helpers/validation';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  ({ server, client } = await startValidationServer());
});
afterAll(async () => {
  await server.close();
});

const count = async () => Number((await server.pool.query("SELECT count(*)::int AS n FROM resource WHERE resource_type = 'Patient'")).rows[0].n);
const informational = (body: any) => {
  expect(body.resourceType).toBe('OperationOutcome');
  expect(body.issue).toEqual([expect.objectContaining({ severity: 'information', code: 'informational' })]);
};

describe('type level', () => {
  test('a valid resource: 200 with one informational issue; nothing is stored', async () => {
    const before = await count();
    const res = await client.post('Patient/$validate', { resourceType: 'Patient', name: [{ family: 'Li' }], text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Li</div>' } });
    expect(res.status).toBe(200);
    informational(res.body);
    expect(await count()).toBe(before);
  });

  test('an invalid resource: still 200, with every issue and its expression', async () => {
    const res = await client.post('Patient/$validate', { resourceType: 'Patient', gender: 'x', birthDate: 'yesterday', foo: 1 });
    expect(res.status).toBe(200);
    expect(errorsOf(res.body).map((i) => i.expression?.[0]).sort()).toEqual(['Patient.birthDate', 'Patient.foo', 'Patient.gender']);
    // Warnings come too (dom-6: no narrative).
    expect(res.body.issue.some((i: any) => i.severity === 'warning')).toBe(true);
  });

  test('with a profile, as a query parameter or in a Parameters body', async () => {
    const plain = { resourceType: 'Patient', name: [{ family: 'Li' }], gender: 'male', birthDate: '1990-01-01' };
    const withoutProfile = await client.post('Patient/$validate', plain);
    expect(errorsOf(withoutProfile.body)).toEqual([]);
    const query = await client.post(`Patient/$validate?profile=${encodeURIComponent(TEST_PATIENT)}`, plain);
    expect(query.status).toBe(200);
    expect(errorsOf(query.body).map((i) => i.diagnostics)).toEqual(
      expect.arrayContaining([expect.stringMatching(/Patient.identifier: minimum required = 1.*test-patient/), expect.stringMatching(/Patient.active: minimum|slice "resident"/)])
    );
    const parameters = await client.post('Patient/$validate', {
      resourceType: 'Parameters',
      parameter: [
        { name: 'resource', resource: conformingPatient() },
        { name: 'mode', valueCode: 'create' },
        { name: 'profile', valueCanonical: TEST_PATIENT },
      ],
    });
    expect(parameters.status).toBe(200);
    expect(errorsOf(parameters.body)).toEqual([]);
  });

  test('a profile that cannot be used is an error', async () => {
    const res = await client.post('Patient/$validate?profile=http://example.org/fhir/StructureDefinition/unknown', { resourceType: 'Patient' });
    expect(res.status).toBe(200);
    expect(errorsOf(res.body)).toEqual([expect.objectContaining({ code: 'not-found', diagnostics: expect.stringMatching(/unknown is not known on this server/) })]);
  });

  test('requests that cannot be validated are 400', async () => {
    expect((await client.post('Patient/$validate?mode=update', { resourceType: 'Patient' })).status).toBe(400);
    expect((await client.post('Patient/$validate?mode=delete', { resourceType: 'Patient' })).status).toBe(400);
    expect((await client.post('Patient/$validate?mode=merge', { resourceType: 'Patient' })).status).toBe(400);
    const mismatch = await client.post('Patient/$validate', { resourceType: 'Observation' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.issue[0].diagnostics).toMatch(/is a Observation, but this is Patient\/\$validate/);
    expect((await client.get('Patient/$validate')).status).toBe(400);
    expect((await client.post('Patient/$validate', { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'create' }] })).status).toBe(400);
  });

  test('a Parameters resource can itself be validated', async () => {
    const res = await client.post('Parameters/$validate', { resourceType: 'Parameters', parameter: [{ name: 'x', valueInteger: 1.5 }] });
    expect(res.status).toBe(200);
    expect(errorsOf(res.body)[0].expression).toEqual(['Parameters.parameter[0].value.ofType(integer)']);
  });
});

describe('instance level', () => {
  let id: string;

  beforeAll(async () => {
    id = (await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'Zhang' }] })).body.id;
  });

  test('mode=update checks that the id matches', async () => {
    const ok = await client.post(`Patient/${id}/$validate?mode=update`, { resourceType: 'Patient', id, name: [{ family: 'Zhang' }] });
    expect(ok.status).toBe(200);
    expect(errorsOf(ok.body)).toEqual([]);
    const other = await client.post(`Patient/${id}/$validate?mode=update`, { resourceType: 'Patient', id: 'another', name: [{ family: 'Zhang' }] });
    expect(errorsOf(other.body)).toEqual([expect.objectContaining({ code: 'invalid', diagnostics: expect.stringMatching(/needs a resource with id/) })]);
  });

  test('GET validates the stored version, against a profile if asked', async () => {
    const stored = await client.get(`Patient/${id}/$validate`);
    expect(stored.status).toBe(200);
    expect(errorsOf(stored.body)).toEqual([]);
    const profiled = await client.get(`Patient/${id}/$validate?profile=${encodeURIComponent(TEST_PATIENT)}`);
    expect(profiled.status).toBe(200);
    expect(errorsOf(profiled.body).length).toBeGreaterThan(0);
    expect(errorsOf(profiled.body).every((i) => i.diagnostics.includes(TEST_PATIENT))).toBe(true);
    expect((await client.get('Patient/does-not-exist/$validate')).status).toBe(404);
  });

  test('mode=profile validates the stored resource against the profile parameter (resource-validation-mode)', async () => {
    const profile = encodeURIComponent(TEST_PATIENT);
    const get = await client.get(`Patient/${id}/$validate?mode=profile&profile=${profile}`);
    expect(get.status).toBe(200);
    expect(errorsOf(get.body).length).toBeGreaterThan(0);
    expect(errorsOf(get.body).every((i) => i.diagnostics.includes(TEST_PATIENT))).toBe(true);
    const params = (...extra: any[]) => ({ resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'profile' }, ...extra] });
    const post = await client.post(`Patient/${id}/$validate`, params({ name: 'profile', valueUri: TEST_PATIENT }));
    expect(post.status).toBe(200);
    expect(errorsOf(post.body)).toEqual(errorsOf(get.body));
    // A conforming stored Patient: valid against the profile.
    const conforming = await client.post('Patient', conformingPatient());
    expect(conforming.status).toBe(201);
    const valid = await client.get(`Patient/${conforming.body.id}/$validate?mode=profile&profile=${profile}`);
    expect(valid.status).toBe(200);
    expect(errorsOf(valid.body)).toEqual([]);
    // Not possible: without a profile, at type level, with the resource given, for an unknown instance.
    const noProfile = await client.get(`Patient/${id}/$validate?mode=profile`);
    expect(noProfile.status).toBe(400);
    expect(noProfile.body.issue[0]).toMatchObject({ severity: 'error', code: 'invalid', diagnostics: expect.stringMatching(/mode=profile needs the profile/) });
    expect((await client.post(`Patient/$validate?mode=profile&profile=${profile}`, { resourceType: 'Patient' })).status).toBe(400);
    expect((await client.post(`Patient/${id}/$validate`, params({ name: 'profile', valueUri: TEST_PATIENT }, { name: 'resource', resource: { resourceType: 'Patient', id } }))).status).toBe(400);
    expect((await client.get(`Patient/does-not-exist/$validate?mode=profile&profile=${profile}`)).status).toBe(404);
  });

  test('mode=delete answers whether the resource could be deleted now: yes', async () => {
    const res = await client.post(`Patient/${id}/$validate`, { resourceType: 'Parameters', parameter: [{ name: 'mode', valueCode: 'delete' }] });
    expect(res.status).toBe(200);
    informational(res.body);
    expect(res.body.issue[0].diagnostics).toMatch(/could be deleted/);
    expect((await client.get(`Patient/${id}`)).status).toBe(200);
    // As a GET too.
    informational((await client.get(`Patient/${id}/$validate?mode=delete`)).body);
  });

  test('mode=delete: no, during legal retention (an inpatient stay without a discharge date)', async () => {
    const encounter = await client.post('Encounter', {
      resourceType: 'Encounter',
      status: 'in-progress',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
      subject: { reference: `Patient/${id}` },
      period: { start: '2024-05-01T08:00:00+08:00' },
    });
    expect(encounter.status).toBe(201);
    const res = await client.get(`Encounter/${encounter.body.id}/$validate?mode=delete`);
    expect(res.status).toBe(200);
    expect(errorsOf(res.body)).toEqual([expect.objectContaining({ code: 'business-rule', diagnostics: expect.stringMatching(/cannot be deleted: the record must be kept/) })]);
    // The delete itself is refused the same way.
    expect((await client.delete(`Encounter/${encounter.body.id}`)).status).toBe(422);
    // The patient is kept as long as their encounters.
    expect(errorsOf((await client.get(`Patient/${id}/$validate?mode=delete`)).body)[0].code).toBe('business-rule');
  });

  test('mode=delete of an AuditEvent: never', async () => {
    const audit = await server.pool.query("SELECT id FROM resource WHERE resource_type = 'AuditEvent' LIMIT 1");
    const res = await client.get(`AuditEvent/${audit.rows[0].id}/$validate?mode=delete`);
    expect(res.status).toBe(200);
    expect(issuesOf(res.body)[0]).toMatchObject({ severity: 'error', code: 'not-supported' });
  });
});
