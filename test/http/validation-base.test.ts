/**
 * Validation of every write against the R4 base: structure (unknown elements, cardinality,
 * JSON shape, primitive formats, choice types, contained resources, reference targets),
 * invariants and terminology, on create, update, patch and transaction entries. An invalid
 * resource is never stored: 422 with every issue and its FHIRPath.
 */
import type { TestServer } from '../helpers/server';
import { startTestServer } from '../helpers/server';
import type { FhirTestClient } from '../helpers/fhir-client';
import { errorsOf, issueAt, issuesOf } from '../helpers/validation';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});
afterAll(async () => {
  await server.close();
});

const rows = async (type: string) =>
  Number((await server.pool.query('SELECT count(*)::int AS n FROM resource WHERE resource_type = $1', [type])).rows[0].n);

/** POSTs, expects 422 and that nothing was stored; returns the OperationOutcome. */
async function refused(resource: any): Promise<any> {
  const before = await rows(resource.resourceType);
  const res = await client.post(resource.resourceType, resource);
  expect(res.status).toBe(422);
  expect(res.body.resourceType).toBe('OperationOutcome');
  for (const i of res.body.issue) {
    expect(i).toEqual(expect.objectContaining({ severity: expect.any(String), code: expect.any(String), diagnostics: expect.any(String), expression: [expect.any(String)] }));
  }
  expect(await rows(resource.resourceType)).toBe(before);
  return res.body;
}

describe('structure', () => {
  test('a valid resource is stored', async () => {
    const res = await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'Li' }], gender: 'male', birthDate: '1980-02-29' });
    expect(res.status).toBe(201);
  });

  test('unknown elements, at the top and nested', async () => {
    const body = await refused({ resourceType: 'Patient', nickname: 'x', name: [{ family: 'Li', middle: 'Q' }] });
    expect(issueAt(body, 'Patient.nickname')).toMatchObject({ severity: 'error', code: 'structure' });
    expect(issueAt(body, 'Patient.name[0].middle')?.diagnostics).toMatch(/Unknown element "middle"/);
  });

  test('cardinality and JSON shape: a single value given as an array, an array as a single value, a missing required element', async () => {
    const body = await refused({ resourceType: 'Patient', gender: ['male'], name: { family: 'Li' } });
    expect(issueAt(body, 'Patient.gender')?.diagnostics).toMatch(/single value, not an array/);
    expect(issueAt(body, 'Patient.name')?.diagnostics).toMatch(/array of values/);
    // Observation.status and Observation.code are 1..1.
    const obs = await refused({ resourceType: 'Observation', valueString: 'x' });
    expect(issueAt(obs, 'Observation.status')).toMatchObject({ code: 'required' });
    expect(issueAt(obs, 'Observation.code')?.diagnostics).toMatch(/minimum required = 1, but only found 0/);
  });

  test('null, empty arrays, empty objects and empty strings', async () => {
    const body = await refused({ resourceType: 'Patient', active: null, telecom: [], name: [{}], address: [{ city: '' }] });
    expect(issueAt(body, 'Patient.active')?.diagnostics).toMatch(/must not be null/);
    expect(issueAt(body, 'Patient.telecom')?.diagnostics).toMatch(/must not be empty/);
    expect(issueAt(body, 'Patient.name[0]')?.diagnostics).toMatch(/ele-1/);
    expect(issueAt(body, 'Patient.address[0].city')?.diagnostics).toMatch(/must not be empty/);
  });

  test('ele-1: an element whose only child is its id is empty; an extension is content', async () => {
    const obs = await refused({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { id: 'x' }, _issued: { id: 'i1' } });
    expect(issueAt(obs, 'Observation.subject')).toMatchObject({ severity: 'error', code: 'invariant', diagnostics: expect.stringMatching(/other than its id \(ele-1\)/) });
    expect(issueAt(obs, 'Observation.issued')).toMatchObject({ severity: 'error', code: 'invariant', diagnostics: expect.stringMatching(/ele-1/) });
    const patient = await refused({ resourceType: 'Patient', gender: 'male', name: [{ id: 'n' }], _birthDate: { id: 'b' } });
    expect(errorsOf(patient).map((i) => i.expression?.[0])).toEqual(['Patient.name[0]', 'Patient.birthDate']);
    // An id next to a value or an extension is fine.
    const absent = { url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' };
    const res = await client.post('Patient', { resourceType: 'Patient', gender: 'male', name: [{ id: 'n', family: 'Li' }], _birthDate: { id: 'b', extension: [absent] }, _gender: { id: 'g' } });
    expect(res.status).toBe(201);
  });

  test('primitive formats: dates, dateTimes, ids, codes, integers, booleans', async () => {
    const body = await refused({
      resourceType: 'Patient',
      id: 'not valid!',
      birthDate: '2023-02-30',
      deceasedDateTime: '2020-01-01T10:00',
      gender: ' male',
      active: 'yes',
      multipleBirthInteger: 1.5,
    });
    expect(issueAt(body, 'Patient.birthDate')?.diagnostics).toMatch(/not a date of the calendar/);
    expect(issueAt(body, 'Patient.deceased.ofType(dateTime)')?.diagnostics).toMatch(/time zone/);
    expect(issueAt(body, 'Patient.gender')).toMatchObject({ code: 'value' });
    expect(issueAt(body, 'Patient.active')?.diagnostics).toMatch(/JSON boolean/);
    expect(issueAt(body, 'Patient.multipleBirth.ofType(integer)')?.diagnostics).toMatch(/not an integer/);
    // A create's id is the server's, and a PUT's must match its URL: a bad id shows in a contained resource
    // (and in $validate, in-process).
    const contained = await refused({ resourceType: 'Patient', contained: [{ resourceType: 'Organization', id: 'bad id!', name: 'x' }], managingOrganization: { reference: '#bad id!' } });
    expect(issueAt(contained, 'Patient.contained[0].id')?.diagnostics).toMatch(/not an id/);
    const issues = await server.services.validator.validate({ resourceType: 'Patient', id: 'not valid!' } as any, { mode: 'create' });
    expect(issues.find((i) => i.expression?.[0] === 'Patient.id')?.diagnostics).toMatch(/"not valid!" is not an id/);
  });

  test('choice types: an unknown type, and two types of one choice', async () => {
    const body = await refused({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueAge: { value: 1 }, effectiveString: 'today' });
    expect(issueAt(body, 'Observation.valueAge')?.diagnostics).toMatch(/value\[x\] does not allow the type Age/);
    expect(issueAt(body, 'Observation.effectiveString')?.diagnostics).toMatch(/allowed: dateTime, Period, Timing, instant/);
    const two = await refused({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueString: 'a', valueBoolean: true });
    expect(errorsOf(two)[0].diagnostics).toMatch(/Only one of "valueString" and "valueBoolean"/);
  });

  test('contained resources are validated too, and must be referenced (dom-3)', async () => {
    const body = await refused({
      resourceType: 'Patient',
      contained: [
        { resourceType: 'Organization', id: 'org', name: 'Clinic', bogus: true },
        { resourceType: 'Practitioner', id: 'unused' },
      ],
      managingOrganization: { reference: '#org' },
    });
    expect(issueAt(body, 'Patient.contained[0].bogus')).toMatchObject({ severity: 'error', code: 'structure' });
    expect(errorsOf(body).some((i) => /contained resource "unused" is not referenced/.test(i.diagnostics))).toBe(true);
    const dangling = await refused({ resourceType: 'Patient', managingOrganization: { reference: '#nowhere' } });
    expect(issueAt(dangling, 'Patient.managingOrganization.reference')?.diagnostics).toMatch(/names no contained resource/);
  });

  test('reference target types: relative, absolute and contained references', async () => {
    const body = await refused({
      resourceType: 'Patient',
      generalPractitioner: [{ reference: 'Practitioner/1' }, { reference: 'Observation/2' }],
      managingOrganization: { reference: 'https://other.example.org/fhir/Patient/3' },
    });
    expect(issueAt(body, 'Patient.generalPractitioner[1]')?.diagnostics).toMatch(/may refer to Organization, Practitioner, PractitionerRole, not to Observation/);
    expect(issueAt(body, 'Patient.generalPractitioner[0]')).toBeUndefined();
    expect(issueAt(body, 'Patient.managingOrganization')?.diagnostics).toMatch(/not to Patient/);
    const typed = await refused({ resourceType: 'Patient', managingOrganization: { reference: 'Organization/1', type: 'Practitioner' } });
    expect(issueAt(typed, 'Patient.managingOrganization.type')?.diagnostics).toMatch(/Reference.type says Practitioner/);
    // References whose target cannot be known are not judged.
    const res = await client.post('Patient', { resourceType: 'Patient', managingOrganization: { identifier: { system: 'urn:x', value: '1' } } });
    expect(res.status).toBe(201);
  });

  test('extensions are checked against their own definitions', async () => {
    const body = await refused({
      resourceType: 'Patient',
      extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', valueString: 'Beijing' }],
    });
    expect(issueAt(body, 'Patient.extension[0].valueString')?.diagnostics).toMatch(/does not allow the type string here \(allowed: Address\)/);
    const ok = await client.post('Patient', {
      resourceType: 'Patient',
      extension: [
        { url: 'http://hl7.org/fhir/StructureDefinition/patient-birthPlace', valueAddress: { city: 'Beijing' } },
        { url: 'http://example.org/unknown-extension', valueString: 'kept' },
      ],
    });
    expect(ok.status).toBe(201);
    // An extension with both a value and extensions breaks ext-1.
    const both = await refused({ resourceType: 'Patient', extension: [{ url: 'http://example.org/x', valueString: 'a', extension: [{ url: 'y', valueString: 'b' }] }] });
    expect(errorsOf(both)).toEqual([expect.objectContaining({ expression: ['Patient.extension[0]'], diagnostics: expect.stringMatching(/^ext-1/) })]);
  });

  test('a narrative with a script is refused (txt-1)', async () => {
    const body = await refused({
      resourceType: 'Patient',
      text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><p>Li</p><script>alert(1)</script></div>' },
    });
    expect(issueAt(body, 'Patient.text.div')?.diagnostics).toMatch(/<script>.*txt-1/);
  });
});

describe('invariants', () => {
  test('a Patient contact with neither name, telecom, address nor organization breaks pat-1', async () => {
    const body = await refused({ resourceType: 'Patient', contact: [{ gender: 'male' }] });
    expect(issueAt(body, 'Patient.contact[0]')).toMatchObject({ severity: 'error', code: 'invariant' });
    expect(issueAt(body, 'Patient.contact[0]')?.diagnostics).toMatch(/^pat-1: SHALL at least contain a contact's details/);
  });

  test('a Period that ends before it starts breaks per-1; different precisions are not compared', async () => {
    const body = await refused({ resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, period: { start: '2024-03-02', end: '2024-03-01' } });
    expect(issueAt(body, 'Encounter.period')?.diagnostics).toMatch(/^per-1/);
    const res = await client.post('Encounter', { resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, period: { start: '2024-03', end: '2024-03-01T10:00:00Z' } });
    expect(res.status).toBe(201);
  });

  test('obs-7: a component with the code of the Observation itself, while the Observation has a value (intersect() with %resource)', async () => {
    const loinc = (code: string) => ({ coding: [{ system: 'http://loinc.org', code }] });
    const observation = (componentCode: string) => ({
      resourceType: 'Observation',
      status: 'final',
      code: loinc('8480-6'),
      valueQuantity: { value: 1 },
      component: [{ code: loinc(componentCode), valueQuantity: { value: 2 } }],
    });
    const body = await refused(observation('8480-6'));
    expect(errorsOf(body)).toEqual([expect.objectContaining({ code: 'invariant', expression: ['Observation'], diagnostics: expect.stringMatching(/^obs-7: /) })]);
    // FHIRPath equality, not identity: an equal Coding written separately is the same code; another code is not.
    expect((await client.post('Observation', observation('8462-4'))).status).toBe(201);
    const noValue: any = observation('8480-6');
    delete noValue.valueQuantity;
    expect((await client.post('Observation', noValue)).status).toBe(201);
  });

  test('a warning invariant does not refuse the write: dom-6 (no narrative)', async () => {
    expect((await client.post('Patient', { resourceType: 'Patient' })).status).toBe(201);
    const issues = await server.services.validator.validate({ resourceType: 'Patient' } as any, { mode: 'create' });
    expect(issues).toEqual([expect.objectContaining({ severity: 'warning', code: 'invariant', expression: ['Patient'], diagnostics: expect.stringMatching(/^dom-6/) })]);
  });
});

describe('terminology', () => {
  test('required binding: a code outside the value set is an error', async () => {
    const body = await refused({ resourceType: 'Patient', gender: 'femme' });
    expect(issueAt(body, 'Patient.gender')).toMatchObject({ severity: 'error', code: 'code-invalid' });
    expect(issueAt(body, 'Patient.gender')?.diagnostics).toMatch(/not in the value set http:\/\/hl7.org\/fhir\/ValueSet\/administrative-gender.*required binding/);
  });

  test('a code unknown to a code system this server knows is an error; a wrong display is a warning', async () => {
    const body = await refused({
      resourceType: 'Observation',
      status: 'final',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-sign' }] }],
      code: { text: 'x' },
    });
    expect(issueAt(body, 'Observation.category[0].coding[0]')?.diagnostics).toMatch(/Unknown code "vital-sign" in the code system/);
    const wrongDisplay = { resourceType: 'Patient', maritalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M', display: 'Wed' }] } };
    expect((await client.post('Patient', wrongDisplay)).status).toBe(201);
    const issues = await server.services.validator.validate(wrongDisplay as any, { mode: 'create' });
    expect(issues.find((i) => i.expression?.[0] === 'Patient.maritalStatus.coding[0]')).toMatchObject({
      severity: 'warning',
      code: 'code-invalid',
      diagnostics: expect.stringMatching(/The display "Wed" is not a display of the code .*#M \(expected "Married"\)/),
    });
  });

  test('codes of terminologies not loaded here (LOINC) are never errors', async () => {
    const res = await client.post('Observation', { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '0000-0-not-real' }] } });
    expect(res.status).toBe(201);
  });

  test('a CodeableConcept under a required binding needs a code; under extensible or preferred ones text is enough', async () => {
    const body = await refused({ resourceType: 'Condition', subject: { reference: 'Patient/1' }, clinicalStatus: { text: 'active' } });
    expect(errorsOf(body).map((i) => i.expression?.[0])).toEqual(['Condition.clinicalStatus']);
    expect(errorsOf(body)[0].diagnostics).toMatch(/a code from the value set .* is required/);
    // communication.language is preferred, maritalStatus and contact.relationship extensible.
    const res = await client.post('Patient', {
      resourceType: 'Patient',
      communication: [{ language: { text: 'Chinese' } }],
      maritalStatus: { text: 'married' },
      contact: [{ name: { family: 'Li' }, relationship: [{ text: 'friend' }] }],
    });
    expect(res.status).toBe(201);
  });
});

describe('every write path', () => {
  test('update and patch results are validated like a create', async () => {
    const created = await client.post('Patient', { resourceType: 'Patient', gender: 'male' });
    const id = created.body.id;
    const put = await client.put(`Patient/${id}`, { resourceType: 'Patient', id, gender: 'unknown-ish' });
    expect(put.status).toBe(422);
    expect(issueAt(put.body, 'Patient.gender')).toBeDefined();
    const patch = await client.request('PATCH', `Patient/${id}`, {
      rawBody: JSON.stringify([{ op: 'add', path: '/birthDate', value: '1990-13-01' }]),
      headers: { 'Content-Type': 'application/json-patch+json' },
    });
    expect(patch.status).toBe(422);
    expect(issueAt(patch.body, 'Patient.birthDate')).toBeDefined();
    expect((await client.get(`Patient/${id}`)).body.meta.versionId).toBe('1');
  });

  test('an invalid transaction entry rolls back the whole transaction, with the entry`s issues', async () => {
    const before = await rows('Patient');
    const res = await client.post('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:6f1c2f3e-0000-4000-8000-000000000001', resource: { resourceType: 'Patient', name: [{ family: 'Valid' }] }, request: { method: 'POST', url: 'Patient' } },
        {
          resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:6f1c2f3e-0000-4000-8000-000000000001' }, performer: [{ reference: 'Encounter/1' }] },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    });
    expect(res.status).toBe(422);
    // The OperationOutcome is about the Bundle: expressions lead into the entry's resource, as $validate of the Bundle has them.
    expect(issueAt(res.body, 'Bundle.entry[1].resource.performer[0]')?.diagnostics).toMatch(/not to Encounter/);
    expect(issueAt(res.body, 'Observation.performer[0]')).toBeUndefined();
    expect(issuesOf(res.body).some((i) => i.expression?.[0] === 'Bundle.entry[1]')).toBe(true);
    const validated = await client.post('Bundle/$validate', { resourceType: 'Bundle', type: 'transaction', entry: [{ fullUrl: 'urn:uuid:6f1c2f3e-0000-4000-8000-000000000002', resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, performer: [{ reference: 'Encounter/1' }] }, request: { method: 'POST', url: 'Observation' } }] });
    expect(issueAt(validated.body, 'Bundle.entry[0].resource.performer[0]')?.diagnostics).toMatch(/not to Encounter/);
    expect(await rows('Patient')).toBe(before);
  });

  test('a batch entry that is invalid fails alone', async () => {
    const res = await client.post('', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { resourceType: 'Patient', gender: 'nope' }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', gender: 'other' }, request: { method: 'POST', url: 'Patient' } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response.status).toMatch(/^422/);
    expect(issueAt(res.body.entry[0].response.outcome, 'Patient.gender')).toBeDefined();
    expect(res.body.entry[1].response.status).toMatch(/^201/);
  });

  test('unparseable JSON is 400, not 422', async () => {
    const res = await client.request('POST', 'Patient', { rawBody: '{"resourceType": "Patient",', headers: { 'Content-Type': 'application/fhir+json' } });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].code).toBe('structure');
  });
});

test('the validator is callable in-process (services.validator) and reports without writing', async () => {
  const issues = await server.services.validator.validate({ resourceType: 'Patient', gender: 'x' } as any, { mode: 'create' });
  expect(issues.filter((i) => i.severity === 'error').map((i) => i.expression?.[0])).toEqual(['Patient.gender']);
});

test('concurrent transactions outnumbering the connection pool still complete: validation`s lookups have a pool of their own', async () => {
  const small = await startTestServer({ DB_POOL_SIZE: '2' });
  try {
    const smallClient = small.client();
    // LOINC is not loaded, so checking the code reads the stored terminology (a database lookup) inside each transaction.
    const bundle = () => ({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:0c3f6b1e-0000-4000-8000-000000000001', resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
        {
          resource: { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '1234-5' }] }, subject: { reference: 'urn:uuid:0c3f6b1e-0000-4000-8000-000000000001' } },
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    });
    const results = await Promise.all(Array.from({ length: 6 }, () => smallClient.post('', bundle())));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
  } finally {
    await small.close();
  }
});
