/**
 * Profiles: the ones a resource claims (meta.profile), from the profile pack (PROFILES_DIR,
 * here test/fixtures/validation) and stored by clients (seen at once by every server
 * process); cardinality, fixed values, slicing, invariants, extensions and every binding
 * strength of a profile; unknown profiles and profiles without a snapshot.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { startServer, type RunningServer } from '../../src/server';
import { FhirTestClient } from '../helpers/fhir-client';
import { clientCredentialsToken, type TestServer } from '../helpers/server';
import {
  conformingObservation,
  conformingPatient,
  errorsOf,
  issuesOf,
  RESIDENT_SYSTEM,
  startValidationServer,
  TEST_CODES,
  TEST_DIFFERENTIAL,
  TEST_OBSERVATION,
  TEST_PATIENT,
  VALIDATION_FIXTURES,
} from '../helpers/validation';

let server: TestServer;
let client: FhirTestClient;
/** A second server process on the same database, as a second worker would be. */
let other: RunningServer;
let otherClient: FhirTestClient;

beforeAll(async () => {
  ({ server, client } = await startValidationServer());
  other = await startServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', DATABASE_URL: server.databaseUrl, PROFILES_DIR: VALIDATION_FIXTURES }));
  const token = await clientCredentialsToken(other.baseUrl, 'admin', server.adminSecret!, 'system/*.cruds');
  otherClient = new FhirTestClient(other.baseUrl, { Authorization: `Bearer ${token}` });
});
afterAll(async () => {
  await other.close();
  await server.close();
});

/** The issue at an expression whose text matches. */
const find = (body: any, expression: string, text?: RegExp) =>
  issuesOf(body).find((i) => i.expression?.[0] === expression && (!text || text.test(i.diagnostics)));

describe('a profile of the pack, claimed in meta.profile', () => {
  let patientId: string;

  test('a conforming resource is stored', async () => {
    const res = await client.post('Patient', conformingPatient());
    expect(res.status).toBe(201);
    patientId = res.body.id;
    const obs = await client.post('Observation', conformingObservation(`Patient/${patientId}`));
    expect(obs.status).toBe(201);
  });

  test('cardinality, fixed value, slicing, invariants and the extension`s own definition', async () => {
    const patient = conformingPatient();
    delete patient.name;
    delete patient.birthDate;
    patient.active = false;
    patient.identifier = [
      { system: RESIDENT_SYSTEM, value: '123' },
      { system: RESIDENT_SYSTEM, value: '11010519491231002X' },
    ];
    patient.extension[0].valueCoding.code = 'gluc';
    const res = await client.post('Patient', patient);
    expect(res.status).toBe(422);
    const body = res.body;
    expect(find(body, 'Patient.name')).toMatchObject({ severity: 'error', code: 'required', diagnostics: expect.stringContaining(`(profile ${TEST_PATIENT})`) });
    expect(find(body, 'Patient.active')?.diagnostics).toMatch(/must be exactly true/);
    expect(find(body, 'Patient.identifier', /slice "resident" allows at most 1/)).toBeDefined();
    expect(find(body, 'Patient.identifier[0].value')?.diagnostics).toMatch(/^tp-2: A resident number has 17 digits/);
    expect(find(body, 'Patient')?.diagnostics).toMatch(/^tp-1: A patient needs a birth date or a deceased indication/);
    expect(
      find(body, 'Patient.extension[0].value.ofType(Coding)', /test-codes#gluc is not in the value set http:\/\/example.org\/fhir\/ValueSet\/test-ethnicity \(required binding\)/)
    ).toMatchObject({ severity: 'error', code: 'code-invalid' });
    // An extension slice (matched by url through the extension's own definition) at most once.
    const twice = conformingPatient();
    twice.extension.push(twice.extension[0]);
    const ext = await client.post('Patient', twice);
    expect(ext.status).toBe(422);
    expect(find(ext.body, 'Patient.extension', /slice "ethnicity" allows at most 1 value\(s\), but found 2/)).toBeDefined();
    // A mandatory slice that is missing.
    const noResident = conformingPatient();
    noResident.identifier = [{ system: 'http://hospital.example.org/mrn', value: 'MRN-2' }];
    const missing = await client.post('Patient', noResident);
    expect(missing.status).toBe(422);
    expect(find(missing.body, 'Patient.identifier', /slice "resident" requires at least 1 value\(s\), but found 0/)).toBeDefined();
  });

  test('binding strengths: required is an error, extensible a warning, preferred not checked', async () => {
    const observation = conformingObservation(`Patient/${patientId}`);
    // preferred (method): a code outside the value set passes.
    observation.method = { coding: [{ system: TEST_CODES, code: 'visual' }] };
    // extensible (category): a code outside the value set is a warning; the mandatory lab slice stays.
    observation.category.push({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'exam' }] });
    const accepted = await client.post('Observation', observation);
    expect(accepted.status).toBe(201);
    const issues = await server.services.validator.validate(observation, { mode: 'create' });
    expect(issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(issues.find((i) => i.expression?.[0] === 'Observation.category[1]')).toMatchObject({ severity: 'warning', code: 'code-invalid' });
    expect(issues.some((i) => i.expression?.[0]?.startsWith('Observation.method'))).toBe(false);

    // required (code, units of the Quantity, gender of the Patient profile): errors.
    const wrong = conformingObservation(`Patient/${patientId}`);
    wrong.code = { coding: [{ system: TEST_CODES, code: 'visual' }] };
    wrong.valueQuantity = { value: 5, system: 'http://unitsofmeasure.org', code: 'kg' };
    const res = await client.post('Observation', wrong);
    expect(res.status).toBe(422);
    expect(find(res.body, 'Observation.code')).toMatchObject({ severity: 'error', code: 'code-invalid' });
    expect(find(res.body, 'Observation.value.ofType(Quantity)')?.diagnostics).toMatch(/unitsofmeasure.org#kg is not in the value set .*test-units/);
    const patient = { ...conformingPatient(), gender: 'other' };
    const gender = await client.post('Patient', patient);
    expect(gender.status).toBe(422);
    expect(find(gender.body, 'Patient.gender')?.diagnostics).toMatch(/test-gender \(required binding\)/);
  });

  test('profile restrictions on types, reference targets and slices', async () => {
    const observation = conformingObservation('Group/1');
    delete observation.valueQuantity;
    observation.valueString = 'high';
    observation.category = [{ coding: [{ system: TEST_CODES, code: 'screening' }] }];
    const res = await client.post('Observation', observation);
    expect(res.status).toBe(422);
    expect(find(res.body, 'Observation.subject')?.diagnostics).toMatch(/may refer to Patient, not to Group/);
    expect(find(res.body, 'Observation.valueString')?.diagnostics).toMatch(/does not allow the type string here \(allowed: Quantity\)/);
    expect(find(res.body, 'Observation.category', /slice "lab" requires at least 1/)).toBeDefined();
  });
});

describe('profiles that cannot be used', () => {
  test('an unknown profile in meta.profile is a warning: the resource is stored', async () => {
    const patient = { resourceType: 'Patient', meta: { profile: ['http://example.org/fhir/StructureDefinition/nowhere'] } };
    expect((await client.post('Patient', patient)).status).toBe(201);
    const issues = await server.services.validator.validate(patient as any, { mode: 'create' });
    expect(issues).toContainEqual(
      expect.objectContaining({ severity: 'warning', code: 'not-found', diagnostics: expect.stringMatching(/nowhere is not known on this server/) })
    );
    // Asked for explicitly, it is an error.
    const asked = await server.services.validator.validate(patient as any, { mode: 'create', profiles: ['http://example.org/fhir/StructureDefinition/nowhere'] });
    expect(asked.find((i) => i.code === 'not-found')?.severity).toBe('error');
  });

  test('a profile without a snapshot says so', async () => {
    const issues = await server.services.validator.validate({ resourceType: 'Patient', meta: { profile: [TEST_DIFFERENTIAL] } } as any, { mode: 'create' });
    expect(issues).toContainEqual(expect.objectContaining({ severity: 'warning', code: 'not-supported', diagnostics: expect.stringMatching(/has no snapshot/) }));
  });

  test('a profile of another type is an error', async () => {
    const res = await client.post('Patient', { resourceType: 'Patient', meta: { profile: [TEST_OBSERVATION] } });
    expect(res.status).toBe(422);
    expect(errorsOf(res.body)[0].diagnostics).toMatch(/is a profile of Observation, not of Patient/);
  });
});

describe('profiles clients store', () => {
  const URL = 'http://hospital.example.org/fhir/StructureDefinition/stored-patient';
  const storedProfile = (birthDateMin: number) => {
    const sd = JSON.parse(fs.readFileSync(path.join(VALIDATION_FIXTURES, 'StructureDefinition-test-patient.json'), 'utf8'));
    sd.id = 'stored-patient';
    sd.url = URL;
    sd.name = 'StoredPatient';
    const birthDate = sd.snapshot.element.find((e: any) => e.id === 'Patient.birthDate');
    birthDate.min = birthDateMin;
    return sd;
  };
  const claiming = () => {
    const patient = conformingPatient();
    patient.meta.profile = [URL];
    delete patient.birthDate;
    patient.deceasedBoolean = false;
    return patient;
  };

  test('a profile POSTed is used by the very next write, in this process and in another one', async () => {
    // Unknown yet: a warning, so stored.
    expect((await client.post('Patient', claiming())).status).toBe(201);
    expect((await otherClient.post('Patient', claiming())).status).toBe(201);

    expect((await client.put('StructureDefinition/stored-patient', storedProfile(1))).status).toBe(201);
    const here = await client.post('Patient', claiming());
    expect(here.status).toBe(422);
    expect(find(here.body, 'Patient.birthDate')?.diagnostics).toMatch(new RegExp(`minimum required = 1.*profile ${URL}`));
    const there = await otherClient.post('Patient', claiming());
    expect(there.status).toBe(422);

    // Relaxed again: both processes follow the update at once.
    expect((await otherClient.put('StructureDefinition/stored-patient', storedProfile(0))).status).toBe(200);
    expect((await client.post('Patient', claiming())).status).toBe(201);
    expect((await otherClient.post('Patient', claiming())).status).toBe(201);
  });

  test('an invariant of a profile that cannot be evaluated is a warning, never a silent pass nor an error', async () => {
    const sd = storedProfile(0);
    sd.id = 'stored-unevaluable';
    sd.url = 'http://hospital.example.org/fhir/StructureDefinition/stored-unevaluable';
    const root = sd.snapshot.element.find((e: any) => e.id === 'Patient');
    root.constraint = [
      ...(root.constraint ?? []),
      { key: 'hosp-1', severity: 'error', human: 'unknown function', expression: 'name.noSuchFunction()' },
      { key: 'hosp-2', severity: 'error', human: 'several values', expression: 'identifier.system' },
      { key: 'hosp-3', severity: 'error', human: 'no expression', xpath: 'f:name' },
    ];
    expect((await client.put('StructureDefinition/stored-unevaluable', sd)).status).toBe(201);
    const res = await client.post('Patient/$validate?profile=' + encodeURIComponent(sd.url), claiming());
    expect(res.status).toBe(200);
    expect(errorsOf(res.body)).toEqual([]);
    const warnings = issuesOf(res.body).filter((i) => i.code === 'not-supported');
    expect(warnings.map((i) => i.diagnostics)).toEqual([
      expect.stringMatching(/^The invariant hosp-1 \(name.noSuchFunction\(\)\) could not be evaluated: .*noSuchFunction/),
      expect.stringMatching(/^The invariant hosp-2 .* could not be evaluated: it gave 2 values, not one boolean/),
      expect.stringMatching(/^The invariant hosp-3 could not be evaluated: it has no FHIRPath expression/),
    ]);
    expect(warnings.every((i) => i.severity === 'warning' && i.expression?.[0] === 'Patient')).toBe(true);
  });

  test('a stored profile without a snapshot gives a clear OperationOutcome', async () => {
    const sd = storedProfile(1);
    sd.id = 'stored-differential';
    sd.url = 'http://hospital.example.org/fhir/StructureDefinition/stored-differential';
    sd.differential = { element: [{ id: 'Patient', path: 'Patient' }, { id: 'Patient.birthDate', path: 'Patient.birthDate', min: 1 }] };
    delete sd.snapshot;
    expect((await client.put('StructureDefinition/stored-differential', sd)).status).toBe(201);
    // $validate of the StructureDefinition itself says it already.
    const itself = await client.post('StructureDefinition/$validate', sd);
    expect(issuesOf(itself.body)).toContainEqual(expect.objectContaining({ severity: 'information', diagnostics: expect.stringMatching(/has no snapshot: resources cannot be validated against it/) }));
    const res = await client.post('Patient/$validate?profile=' + encodeURIComponent(sd.url), { resourceType: 'Patient' });
    expect(res.status).toBe(200);
    expect(errorsOf(res.body)).toEqual([
      expect.objectContaining({ code: 'not-supported', diagnostics: expect.stringMatching(/stored-differential has no snapshot \(only a differential\)/) }),
    ]);
  });
});

describe('the pack is served', () => {
  test('every conformance resource of the pack is stored at start-up under its own id', async () => {
    const sd = await client.get(`StructureDefinition?url=${encodeURIComponent(TEST_PATIENT)}`);
    expect(sd.status).toBe(200);
    expect(sd.body.entry.map((e: any) => e.resource.id)).toEqual(['test-patient']);
    expect(sd.body.entry[0].resource.snapshot.element.length).toBeGreaterThan(40);
    expect((await client.get('ValueSet/test-gender')).body.url).toBe('http://example.org/fhir/ValueSet/test-gender');
    expect((await client.get(`CodeSystem?url=${encodeURIComponent(TEST_CODES)}`)).body.entry).toHaveLength(1);
    expect((await client.get('ImplementationGuide/test-pack')).status).toBe(200);
    expect((await client.get('SearchParameter/test-ethnicity')).status).toBe(200);
    expect((await client.get('StructureDefinition/test-ethnicity')).body.type).toBe('Extension');
    // Terminology operations work on them by id too, with the same content as the built-in copies.
    const expanded = await client.get('ValueSet/test-gender/$expand');
    expect(expanded.body.expansion.contains.map((c: any) => c.code)).toEqual(['male', 'female']);
    const lookup = await client.get('CodeSystem/test-codes/$lookup?code=gluc');
    expect(lookup.body.parameter.find((p: any) => p.name === 'display').valueString).toBe('Glucose');
    // Resources in the pack's Bundle files are stored one by one, the Bundle itself not.
    expect((await client.get('Bundle/test-terminology')).status).toBe(404);
  });

  test('a restart writes nothing when nothing changed, and restores a pack resource a client changed', async () => {
    const versions = async () => Number((await server.pool.query("SELECT count(*)::int AS n FROM resource_version WHERE resource_type = 'ValueSet'")).rows[0].n);
    const before = await versions();
    const again = await startServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', DATABASE_URL: server.databaseUrl, PROFILES_DIR: VALIDATION_FIXTURES }));
    await again.close();
    expect(await versions()).toBe(before);

    const changed = (await client.get('ValueSet/test-gender')).body;
    changed.title = 'Changed by a client';
    expect((await client.put('ValueSet/test-gender', changed)).status).toBe(200);
    const restart = await startServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', DATABASE_URL: server.databaseUrl, PROFILES_DIR: VALIDATION_FIXTURES }));
    await restart.close();
    const restored = (await client.get('ValueSet/test-gender')).body;
    expect(restored.title).toBeUndefined();
    expect(restored.meta.versionId).toBe('3');
  });

  test('the CapabilityStatement lists the pack`s profiles as supportedProfile of their types', async () => {
    const statement = (await client.get('metadata')).body;
    const resource = (type: string) => statement.rest[0].resource.find((r: any) => r.type === type);
    expect(resource('Patient').supportedProfile.sort()).toEqual([TEST_DIFFERENTIAL, TEST_PATIENT]);
    expect(resource('Observation').supportedProfile).toEqual([TEST_OBSERVATION]);
    expect(resource('Encounter').supportedProfile).toBeUndefined();
    // Nothing is required on this server, so profile stays the base definition.
    expect(resource('Patient').profile).toBe('http://hl7.org/fhir/StructureDefinition/Patient');
    expect(resource('Patient').operation).toContainEqual({ name: 'validate', definition: 'http://hl7.org/fhir/OperationDefinition/Resource-validate' });
  });

  test('the pack`s SearchParameter works, and its stored copy is not a second definition', async () => {
    const patient = conformingPatient();
    patient.extension[0].valueCoding.code = '03';
    const id = (await client.post('Patient', patient)).body.id;
    const found = await client.get(`Patient?ethnicity=${encodeURIComponent(TEST_CODES)}|03`);
    expect(found.body.entry.map((e: any) => e.resource.id)).toEqual([id]);
    const params = server.services.search.capability('Patient').searchParam.filter((p) => p.name === 'ethnicity');
    expect(params).toHaveLength(1);
  });
});
