/**
 * REQUIRED_PROFILES: profiles every resource of their type must conform to, named by an
 * ImplementationGuide of the pack (its global profiles) or by canonical URL; applied to
 * writes and $validate whether or not the resource claims them, and stated in the
 * CapabilityStatement. What cannot be resolved stops the start-up.
 */
import { loadConfig } from '../../src/config';
import { startServer, type RunningServer } from '../../src/server';
import { FhirTestClient } from '../helpers/fhir-client';
import { clientCredentialsToken, type TestServer } from '../helpers/server';
import {
  conformingObservation,
  conformingPatient,
  errorsOf,
  startValidationServer,
  TEST_DIFFERENTIAL,
  TEST_ETHNICITY,
  TEST_OBSERVATION,
  TEST_PATIENT,
  VALIDATION_FIXTURES,
} from '../helpers/validation';

let server: TestServer;
let client: FhirTestClient;

const config = (env: Record<string, string>) =>
  loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', DATABASE_URL: server.databaseUrl, PROFILES_DIR: VALIDATION_FIXTURES, ...env });

beforeAll(async () => {
  ({ server, client } = await startValidationServer({ REQUIRED_PROFILES: 'test-pack' }));
});
afterAll(async () => {
  await server.close();
});

describe('REQUIRED_PROFILES naming an ImplementationGuide of the pack', () => {
  test('a Patient that does not conform is refused, even without meta.profile', async () => {
    const res = await client.post('Patient', { resourceType: 'Patient', active: false, name: [{ family: 'Li' }], gender: 'male', birthDate: '1990-01-01' });
    expect(res.status).toBe(422);
    const errors = errorsOf(res.body);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((i) => i.diagnostics.endsWith(`(profile ${TEST_PATIENT})`))).toBe(true);
    expect(errors.map((i) => i.expression?.[0])).toEqual(expect.arrayContaining(['Patient.identifier', 'Patient.active']));
  });

  test('a Patient that conforms is stored, whether or not it claims the profile', async () => {
    const patient = conformingPatient();
    delete patient.meta;
    expect((await client.post('Patient', patient)).status).toBe(201);
    expect((await client.post('Patient', conformingPatient())).status).toBe(201);
  });

  test('other types are not concerned', async () => {
    expect((await client.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'x' } })).status).toBe(201);
  });

  test('$validate applies it too', async () => {
    const res = await client.post('Patient/$validate?mode=create', { resourceType: 'Patient' });
    expect(res.status).toBe(200);
    expect(errorsOf(res.body).some((i) => i.diagnostics.includes(TEST_PATIENT))).toBe(true);
  });

  test('the CapabilityStatement names it as the profile of Patient', async () => {
    const statement = (await client.get('metadata')).body;
    const patient = statement.rest[0].resource.find((r: any) => r.type === 'Patient');
    expect(patient.profile).toBe(TEST_PATIENT);
    expect(patient.supportedProfile).toContain(TEST_PATIENT);
    expect(statement.rest[0].resource.find((r: any) => r.type === 'Observation').profile).toBe('http://hl7.org/fhir/StructureDefinition/Observation');
  });
});

describe('REQUIRED_PROFILES naming a StructureDefinition by canonical URL', () => {
  let byUrl: RunningServer;
  let urlClient: FhirTestClient;

  beforeAll(async () => {
    byUrl = await startServer(config({ REQUIRED_PROFILES: TEST_OBSERVATION }));
    const token = await clientCredentialsToken(byUrl.baseUrl, 'admin', server.adminSecret!, 'system/*.cruds');
    urlClient = new FhirTestClient(byUrl.baseUrl, { Authorization: `Bearer ${token}` });
  });
  afterAll(async () => {
    await byUrl.close();
  });

  test('it applies to resources of its type', async () => {
    const patient = (await urlClient.post('Patient', { resourceType: 'Patient' })).body.id;
    const plain = await urlClient.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${patient}` } });
    expect(plain.status).toBe(422);
    expect(errorsOf(plain.body).some((i) => i.diagnostics.includes(TEST_OBSERVATION))).toBe(true);
    const observation = conformingObservation(`Patient/${patient}`);
    delete observation.meta;
    expect((await urlClient.post('Observation', observation)).status).toBe(201);
  });
});

describe('what cannot be required stops the start-up', () => {
  test.each([
    ['a name of no ImplementationGuide', 'national-pack-missing', /names no ImplementationGuide/],
    ['an unknown profile', 'http://example.org/fhir/StructureDefinition/none', /none is not known on this server/],
    ['a profile without a snapshot', TEST_DIFFERENTIAL, /has no snapshot/],
    ['an extension', TEST_ETHNICITY, /is a profile of Extension, not of a resource type/],
  ])('%s', async (_label, value, message) => {
    await expect(startServer(config({ REQUIRED_PROFILES: value }))).rejects.toThrow(message);
  });

  test('the ImplementationGuide may also be named by its packageId, name or URL', async () => {
    for (const name of ['example.test.pack', 'testpack', 'http://example.org/fhir/ImplementationGuide/test-pack']) {
      const running = await startServer(config({ REQUIRED_PROFILES: name }));
      await running.close();
    }
  });
});
