/**
 * The national profile pack enforced end to end: a server started with
 * REQUIRED_PROFILES=national, black-box over HTTP. For every profile of the pack a valid
 * instance is stored and invalid ones are refused with 422, each issue with its severity, code
 * and FHIRPath expression, and nothing of a refused write is stored. Also: $validate with
 * `profile`, the three binding strengths, and a whole patient record as a transaction.
 */
import type { Resource, StructureDefinition } from '@medplum/fhirtypes';
import { structureDefinition } from '../../src/profiles/definitions/common';
import { definitionResolver } from '../../src/profiles/resolver';
import { withSnapshot } from '../../src/profiles/snapshot';
import type { FhirTestClient } from '../helpers/fhir-client';
import { instance } from '../helpers/profiles';
import { startTestServer, type TestServer } from '../helpers/server';
import { issuesOf, type Issue } from '../helpers/validation';

const SD = 'http://fhir-server.dev/cn/StructureDefinition/';
const ID_CARD = 'urn:oid:2.16.156.10011.1.3';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer({ REQUIRED_PROFILES: 'national' });
  client = server.client();
});
afterAll(async () => server.close());

const rows = async (type: string): Promise<number> =>
  (await server.pool.query('SELECT count(*)::int AS n FROM resource WHERE resource_type = $1', [type])).rows[0].n;


interface Expected {
  severity: 'error' | 'warning';
  code: string;
  expression: string;
  /** The start of the diagnostics (an invariant key, an element path). */
  text: RegExp;
}

function find(body: any, expected: Expected): Issue | undefined {
  return issuesOf(body).find(
    (i) => i.severity === expected.severity && i.code === expected.code && i.expression?.[0] === expected.expression && expected.text.test(i.diagnostics)
  );
}

let marks = 0;

/** Rows of a type whose content carries a marker tag (AuditEvents of the request itself do not). */
const marked = async (type: string, mark: string): Promise<number> =>
  (await server.pool.query(`SELECT count(*)::int AS n FROM resource WHERE resource_type = $1 AND content @> $2::jsonb`, [type, JSON.stringify({ meta: { tag: [{ code: mark }] } })])).rows[0].n;

/** POSTs a resource that must be refused: 422 with the expected issue, and no row of it written. */
async function refused(resource: any, expected: Expected): Promise<Issue[]> {
  const mark = `refused-${++marks}`;
  resource.meta = { ...resource.meta, tag: [...(resource.meta?.tag ?? []), { system: 'urn:test', code: mark }] };
  const before = await rows(resource.resourceType);
  const res = await client.post(resource.resourceType, resource);
  expect(res.status).toBe(422);
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect(find(res.body, expected)).toBeDefined();
  for (const i of issuesOf(res.body)) {
    expect(typeof i.diagnostics).toBe('string');
    expect(i.expression?.length).toBeGreaterThan(0);
  }
  expect(await marked(resource.resourceType, mark)).toBe(0);
  // No other row of the type either (but the AuditEvent that records the refusal).
  if (resource.resourceType !== 'AuditEvent') expect(await rows(resource.resourceType)).toBe(before);
  return issuesOf(res.body);
}

const err = (code: string, expression: string, text: RegExp): Expected => ({ severity: 'error', code, expression, text });

describe('every profile of the pack: valid instances are stored', () => {
  test.each([
    ['cn-patient', 'valid-full'],
    ['cn-patient', 'valid-minimal'],
    ['cn-patient', 'valid-leap-day'],
    ['cn-patient', 'valid-legacy-15-digit'],
    ['cn-encounter', 'valid-inpatient'],
    ['cn-encounter', 'valid-outpatient'],
    ['cn-lab-report', 'valid'],
    ['cn-imaging-report', 'valid'],
    ['cn-imaging-study', 'valid'],
    ['cn-consent', 'valid'],
    ['cn-consent', 'valid-with-exception'],
    ['cn-audit-event', 'valid'],
  ])('%s %s: 201, no error', async (profile, name) => {
    const resource = instance(profile, name);
    const res = await client.post(resource.resourceType, resource);
    expect(res.status).toBe(201);
    const stored = await client.get(`${resource.resourceType}/${res.body.id}`);
    expect(stored.status).toBe(200);
  });

  test('a required profile applies without meta.profile: an unclaimed valid Encounter is stored, an unclaimed invalid one is not', async () => {
    const valid = instance('cn-encounter', 'valid-inpatient');
    delete valid.meta;
    expect((await client.post('Encounter', valid)).status).toBe(201);
    const invalid = instance('cn-encounter', 'invalid-inpatient-without-inpatient-number');
    delete invalid.meta;
    await refused(invalid, err('invariant', 'Encounter', /^cn-enc-2: .*\(profile .*cn-encounter\)$/));
  });

  test('the performing institution as national data names it: by its institution code (2.16.156.10011.1.5), or contained', async () => {
    const byCode = { ...instance('cn-lab-report', 'valid'), performer: [{ identifier: { system: 'urn:oid:2.16.156.10011.1.5', value: '40000231-7' }, display: '北京协和医院' }] };
    expect((await client.post('DiagnosticReport', byCode)).status).toBe(201);
    const contained = {
      ...instance('cn-lab-report', 'valid'),
      contained: [{ resourceType: 'Organization', id: 'lab', name: '检验科' }],
      performer: [{ reference: '#lab' }],
    };
    expect((await client.post('DiagnosticReport', contained)).status).toBe(201);
    // A contained Practitioner is not an institution.
    const practitioner = { ...contained, contained: [{ resourceType: 'Practitioner', id: 'lab' }] };
    await refused(practitioner, err('invariant', 'DiagnosticReport', /^cn-dr-1: /));
  });

  test('a signature Provenance meets cn-signature-provenance ($validate), and one the server stores from X-Provenance does too', async () => {
    const checked = await client.post('Provenance/$validate', instance('cn-signature-provenance', 'valid'));
    expect(checked.status).toBe(200);
    expect(issuesOf(checked.body).filter((i) => i.severity === 'error')).toEqual([]);

    const res = await client.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'Hb' } }, {
      'X-Provenance': JSON.stringify({ resourceType: 'Provenance', reason: [{ text: 'ward round' }] }),
    });
    expect(res.status).toBe(201);
    const found = await client.get(`Provenance?target=Observation/${res.body.id}`);
    const provenance = found.body.entry?.[0]?.resource;
    expect(provenance.reason).toEqual([{ text: 'ward round' }]);
    const again = await client.get(`Provenance/${provenance.id}/$validate?profile=${SD}cn-signature-provenance`);
    expect(issuesOf(again.body).filter((i) => i.severity === 'error')).toEqual([]);
  });
});

describe('invalid instances are refused with 422, the issue says what and where, nothing is stored', () => {
  test.each<[string, string, Expected]>([
    // CN Patient: GB 11643 resident identity number, sex, ethnicity, marital status
    ['cn-patient', 'invalid-check-digit', err('invariant', 'Patient.identifier[0].value', /^cn-pat-2: .*check character/)],
    ['cn-patient', 'invalid-lowercase-x', err('invariant', 'Patient.identifier[0].value', /^cn-pat-1: /)],
    ['cn-patient', 'invalid-impossible-birth-date', err('invariant', 'Patient.identifier[0].value', /^cn-pat-3: /)],
    ['cn-patient', 'invalid-not-a-leap-year', err('invariant', 'Patient.identifier[0].value', /^cn-pat-3: /)],
    ['cn-patient', 'invalid-future-birth-date', err('invariant', 'Patient.identifier[0].value', /^cn-pat-3: /)],
    ['cn-patient', 'invalid-unknown-province', err('invariant', 'Patient.identifier[0].value', /^cn-pat-4: /)],
    ['cn-patient', 'invalid-id-card-type-outside-namespace', err('invariant', 'Patient.identifier[1]', /^cn-pat-5: /)],
    ['cn-patient', 'invalid-two-resident-ids', err('structure', 'Patient.identifier', /slice "idCard" allows at most 1/)],
    ['cn-patient', 'invalid-no-gender', err('required', 'Patient.gender', /minimum required = 1/)],
    ['cn-patient', 'invalid-sex-code-disagrees', err('invariant', 'Patient', /^cn-pat-8: /)],
    ['cn-patient', 'invalid-unknown-ethnicity', err('code-invalid', 'Patient.extension[0].value.ofType(Coding)', /#99 is not in the value set .*gb-3304 \(required binding\)/)],
    ['cn-patient', 'invalid-ethnicity-from-another-table', err('value', 'Patient.extension[0].value.ofType(Coding)', /must match the pattern/)],
    ['cn-patient', 'invalid-marital-status-without-national-code', err('required', 'Patient.maritalStatus.coding', /slice "national" requires at least 1/)],
    // CN Encounter
    ['cn-encounter', 'invalid-inpatient-without-inpatient-number', err('invariant', 'Encounter', /^cn-enc-2: /)],
    ['cn-encounter', 'invalid-outpatient-without-outpatient-number', err('invariant', 'Encounter', /^cn-enc-3: /)],
    ['cn-encounter', 'invalid-outpatient-type-with-class-imp', err('invariant', 'Encounter', /^cn-enc-1: /)],
    ['cn-encounter', 'invalid-no-period', err('required', 'Encounter.period', /minimum required = 1/)],
    // CN Lab Report / CN Imaging Report (claimed) on CN DiagnosticReport (required)
    ['cn-lab-report', 'invalid-without-lab-report-number', err('invariant', 'DiagnosticReport', /^cn-dr-2: .*\(profile .*cn-(lab|diagnostic)-report\)$/)],
    ['cn-lab-report', 'invalid-no-performing-organization', err('invariant', 'DiagnosticReport', /^cn-dr-1: /)],
    ['cn-lab-report', 'invalid-no-results', err('required', 'DiagnosticReport.result', /\(profile .*cn-lab-report\)$/)],
    ['cn-imaging-report', 'invalid-lab-number-on-imaging-report', err('invariant', 'DiagnosticReport', /^cn-dr-3: /)],
    ['cn-imaging-report', 'invalid-no-diagnostic-service-section', err('required', 'DiagnosticReport.category', /slice "imaging" requires at least 1/)],
    // CN ImagingStudy: DICOM UIDs and modalities
    ['cn-imaging-study', 'invalid-study-uid-leading-zero', err('invariant', 'ImagingStudy.identifier[0]', /^cn-is-1: /)],
    ['cn-imaging-study', 'invalid-study-uid-without-urn-oid', err('invariant', 'ImagingStudy.identifier[0]', /^cn-is-1: /)],
    ['cn-imaging-study', 'invalid-series-uid', err('invariant', 'ImagingStudy.series[0]', /^cn-is-2: /)],
    ['cn-imaging-study', 'invalid-instance-uid', err('invariant', 'ImagingStudy.series[0]', /^cn-is-3: /)],
    ['cn-imaging-study', 'invalid-modality-not-dicom', err('invariant', 'ImagingStudy', /^cn-is-4: /)],
    ['cn-imaging-study', 'invalid-no-study-uid', err('required', 'ImagingStudy.identifier', /slice "studyInstanceUid" requires at least 1/)],
    // CN Consent
    ['cn-consent', 'invalid-scope-not-privacy', err('value', 'Consent.scope', /must match the pattern/)],
    ['cn-consent', 'invalid-no-patient', err('required', 'Consent.patient', /minimum required = 1/)],
    ['cn-consent', 'invalid-provision-without-type', err('invariant', 'Consent', /^cn-con-1: /)],
    ['cn-consent', 'invalid-provision-without-period', err('invariant', 'Consent', /^cn-con-2: /)],
    ['cn-consent', 'invalid-actor-not-organization-or-practitioner', err('structure', 'Consent.provision.actor[0].reference', /not to Patient/)],
    ['cn-consent', 'invalid-nested-actor-not-organization-or-practitioner', err('invariant', 'Consent', /^cn-con-3: /)],
    // CN Signature Provenance
    ['cn-signature-provenance', 'invalid-unsigned', err('required', 'Provenance.signature', /minimum required = 1/)],
    ['cn-signature-provenance', 'invalid-no-activity', err('required', 'Provenance.activity', /minimum required = 1/)],
    ['cn-signature-provenance', 'invalid-target-without-version', err('invariant', 'Provenance.target[0]', /^cn-prov-1: /)],
    ['cn-signature-provenance', 'invalid-no-author', err('invariant', 'Provenance', /^cn-prov-2: /)],
    ['cn-signature-provenance', 'invalid-custodian-not-an-organization', err('invariant', 'Provenance', /^cn-prov-3: /)],
    ['cn-signature-provenance', 'invalid-application-not-a-device', err('invariant', 'Provenance', /^cn-prov-4: /)],
    ['cn-signature-provenance', 'invalid-signature-format', err('value', 'Provenance.signature[0].sigFormat', /must be exactly "application\/jose"/)],
    // CN AuditEvent
    ['cn-audit-event', 'invalid-no-outcome', err('required', 'AuditEvent.outcome', /minimum required = 1/)],
    ['cn-audit-event', 'invalid-no-requestor', err('invariant', 'AuditEvent', /^cn-ae-1: /)],
    ['cn-audit-event', 'invalid-agent-without-who', err('invariant', 'AuditEvent.agent[1]', /^cn-ae-2: /)],
    ['cn-audit-event', 'invalid-patient-entity-not-a-patient', err('invariant', 'AuditEvent.entity[1]', /^cn-ae-3: /)],
  ])('%s %s', async (profile, name, expected) => {
    await refused(instance(profile, name), expected);
  });

  test('a wrong check digit: the one error is at the identifier value, and a search by that number finds nothing', async () => {
    const patient = instance('cn-patient', 'invalid-check-digit');
    const errors = (await refused(patient, err('invariant', 'Patient.identifier[0].value', /^cn-pat-2: /))).filter((i) => i.severity === 'error');
    expect(errors).toHaveLength(1);
    const search = await client.get(`Patient?identifier=${encodeURIComponent(`${ID_CARD}|${patient.identifier[0].value}`)}`);
    expect(search.status).toBe(200);
    expect(search.body.total ?? search.body.entry?.length ?? 0).toBe(0);
  });

  test('a resident ID number under an alias OID of its NamingSystem (HL7 China community ID card, social security card) is checked the same way', async () => {
    for (const alias of ['urn:oid:2.16.840.1.113883.2.23.1.19.1', 'urn:oid:2.16.840.1.113883.2.23.1.19.2']) {
      const patient = instance('cn-patient', 'invalid-check-digit');
      patient.identifier[0].system = alias;
      const errors = (await refused(patient, err('invariant', 'Patient.identifier[0].value', /^cn-pat-2: /))).filter((i) => i.severity === 'error');
      expect(errors).toHaveLength(1);
      // The valid number under the alias is stored, and cn-pat-6/7 read it too (an even sequence digit for a man: a warning).
      const valid = instance('cn-patient', 'valid-full');
      valid.identifier = valid.identifier.map((i: any) => (i.system === ID_CARD ? { ...i, system: alias } : i));
      expect(valid.identifier.some((i: any) => i.system === alias)).toBe(true);
      expect((await client.post('Patient', valid)).status).toBe(201);
      // 11010519491231002X: an even sequence digit (a woman) and born 1949-12-31; a man born on another day gets both warnings.
      const { _gender, ...rest } = valid;
      expect(_gender).toBeDefined();
      const other = (await client.post('Patient/$validate', { ...rest, gender: 'male', birthDate: '1950-01-01' })).body;
      expect(issuesOf(other).filter((i) => i.severity === 'warning' && /^cn-pat-[67]: /.test(i.diagnostics)).map((i) => i.diagnostics.slice(0, 8))).toEqual(['cn-pat-6', 'cn-pat-7']);
    }
  });

  test('a national sex code outside GB/T 2261.1 on _gender (an extension slice of a primitive) is an error there', async () => {
    const patient = instance('cn-patient', 'valid-full');
    patient._gender.extension[0].valueCoding = { system: 'urn:oid:2.16.156.10011.2.3.3.4', code: '6' }; // a 1980 code, no longer valid
    const issues = await refused(patient, err('code-invalid', 'Patient.gender.extension[0].value.ofType(Coding)', /"6"|#6/));
    // One problem, reported once (the base walk, the profile and the extension's own definition agree on it).
    const keys = issues.map((i) => `${i.severity}|${i.code}|${i.expression}|${i.diagnostics.replace(/^\S+: /, '').replace(/ \(profile \S+\)$/, '')}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  test('a profile that requires an extension on a primitive (gender.extension:nationalSex 1..1) is enforced through _gender', async () => {
    // A stricter profile on CN Patient, built and given its snapshot as the pack's are.
    const differential = structureDefinition({
      id: 'test-sexed-patient', name: 'TestSexedPatient', title: 'Test: CN Patient with the national sex code', description: 'Test profile',
      type: 'Patient', baseDefinition: `${SD}cn-patient`,
      elements: [{ id: 'Patient.gender.extension:nationalSex', min: 1 }],
    });
    const cnPatient = (await client.get(`StructureDefinition?url=${SD}cn-patient`)).body.entry[0].resource as StructureDefinition;
    const resolve = definitionResolver();
    const profile = withSnapshot(differential, (url) => (url === `${SD}cn-patient` ? cnPatient : resolve(url)));
    expect((await client.post('StructureDefinition', profile)).status).toBe(201);
    const url = profile.url as string;

    const patient = instance('cn-patient', 'valid-full');
    const ok = await client.post(`Patient/$validate?profile=${url}`, patient);
    expect(issuesOf(ok.body).filter((i) => i.severity === 'error')).toEqual([]);

    delete patient._gender;
    const missing = await client.post(`Patient/$validate?profile=${url}`, patient);
    expect(find(missing.body, err('required', 'Patient.gender.extension', /nationalSex.*minimum required = 1|slice "nationalSex"/))).toBeDefined();

    patient._gender = { extension: [{ url: 'http://example.org/other', valueString: 'x' }] };
    const other = await client.post(`Patient/$validate?profile=${url}`, patient);
    expect(find(other.body, err('required', 'Patient.gender.extension', /slice "nationalSex" requires at least 1|nationalSex/))).toBeDefined();
  });

  test('the base spec still applies: an impossible birthDate and an unknown element', async () => {
    const patient = { ...instance('cn-patient', 'valid-minimal'), birthDate: '1990-02-30', nickname: 'x' };
    const issues = await refused(patient, err('value', 'Patient.birthDate', /./));
    expect(issues.some((i) => i.severity === 'error' && i.code === 'structure' && i.expression?.[0] === 'Patient.nickname')).toBe(true);
  });

  test('update and patch are held to the profiles too, and the stored version is unchanged', async () => {
    const created = await client.post('Patient', instance('cn-patient', 'valid-full'));
    expect(created.status).toBe(201);
    const id = created.body.id;
    const broken = { ...instance('cn-patient', 'invalid-check-digit'), id };
    const put = await client.put(`Patient/${id}`, broken);
    expect(put.status).toBe(422);
    expect(find(put.body, err('invariant', 'Patient.identifier[0].value', /^cn-pat-2: /))).toBeDefined();
    const patch = await client.request('PATCH', `Patient/${id}`, {
      rawBody: JSON.stringify([{ op: 'remove', path: '/gender' }, { op: 'remove', path: '/_gender' }]),
      headers: { 'Content-Type': 'application/json-patch+json' },
    });
    expect(patch.status).toBe(422);
    expect(find(patch.body, err('required', 'Patient.gender', /minimum required = 1/))).toBeDefined();
    const stored = await client.get(`Patient/${id}`);
    expect(stored.body.meta.versionId).toBe('1');
    expect(stored.body.gender).toBe('female');
  });
});

describe('$validate against national profiles', () => {
  test('profile= checks a profile the resource does not claim: an imaging report is not a lab report', async () => {
    const report = instance('cn-imaging-report', 'valid');
    const asImaging = await client.post(`DiagnosticReport/$validate?profile=${SD}cn-imaging-report`, report);
    expect(asImaging.status).toBe(200);
    expect(issuesOf(asImaging.body).filter((i) => i.severity === 'error')).toEqual([]);
    delete report.meta;
    const asLab = await client.post(`DiagnosticReport/$validate?profile=${SD}cn-lab-report`, report);
    expect(asLab.status).toBe(200);
    const errors = issuesOf(asLab.body).filter((i) => i.severity === 'error');
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((i) => i.diagnostics.endsWith(`(profile ${SD}cn-lab-report)`))).toBe(true);
    expect(find(asLab.body, err('required', 'DiagnosticReport.identifier', /slice "labReportNumber" requires at least 1/))).toBeDefined();
  });

  test('a Parameters body with resource and profile; the required profile applies as well', async () => {
    const patient = instance('cn-patient', 'invalid-check-digit');
    delete patient.meta;
    const res = await client.post('Patient/$validate', {
      resourceType: 'Parameters',
      parameter: [
        { name: 'resource', resource: patient },
        { name: 'profile', valueCanonical: `${SD}cn-patient` },
      ],
    });
    expect(res.status).toBe(200);
    expect(find(res.body, err('invariant', 'Patient.identifier[0].value', /^cn-pat-2: /))).toBeDefined();
    expect(await rows('Patient')).toBeGreaterThan(0); // (the earlier stored ones; $validate stores nothing)
  });

  test('a profile of another type is an error', async () => {
    const res = await client.post(`Observation/$validate?profile=${SD}cn-patient`, { resourceType: 'Observation', status: 'final', code: { text: 'x' } });
    expect(res.status).toBe(200);
    expect(issuesOf(res.body).some((i) => i.severity === 'error' && /is a profile of Patient, not of Observation/.test(i.diagnostics))).toBe(true);
  });

  test('a stored resource against a national profile (GET /[type]/[id]/$validate?profile=)', async () => {
    const stored = await client.post('Patient', { resourceType: 'Patient', gender: 'male' });
    const res = await client.get(`Patient/${stored.body.id}/$validate?profile=${SD}cn-patient`);
    expect(res.status).toBe(200);
    expect(issuesOf(res.body).filter((i) => i.severity === 'error')).toEqual([]);
  });
});

describe('binding strengths', () => {
  test('required: a code outside the value set is an error (the ethnicity extension, GB 3304)', async () => {
    await refused(instance('cn-patient', 'invalid-unknown-ethnicity'), err('code-invalid', 'Patient.extension[0].value.ofType(Coding)', /\(required binding\)/));
  });

  test('extensible: a code outside the value set is a warning, the resource is stored (identifier type, re-bound by cn-patient)', async () => {
    const patient = instance('cn-patient', 'valid-minimal');
    patient.identifier = [{ type: { coding: [{ system: 'http://example.org/id-types', code: 'staff' }] }, system: 'urn:example:staff', value: 'S-1' }];
    const checked = await client.post('Patient/$validate', patient);
    const warning = find(checked.body, { severity: 'warning', code: 'code-invalid', expression: 'Patient.identifier[0].type', text: /cn-identifier-type \(extensible binding\)/ });
    expect(warning).toBeDefined();
    // The profile's binding replaces the base one: no second warning about the base value set.
    expect(issuesOf(checked.body).filter((i) => i.expression?.[0] === 'Patient.identifier[0].type')).toHaveLength(1);
    expect((await client.post('Patient', patient)).status).toBe(201);
  });

  test('extensible, re-bound: a national document type (CV02.01.101) is in the profile value set, so no warning at all', async () => {
    const patient = instance('cn-patient', 'valid-full');
    const checked = await client.post('Patient/$validate', patient);
    expect(issuesOf(checked.body).filter((i) => i.expression?.[0] === 'Patient.identifier[1].type')).toEqual([]);
  });

  test('MIME types (sigFormat, contentType) are checked by the BCP 13 grammar: a media type passes, a short name is a warning', async () => {
    const provenance = instance('cn-signature-provenance', 'valid');
    const ok = await client.post('Provenance/$validate', provenance);
    expect(issuesOf(ok.body).filter((i) => i.expression?.[0]?.endsWith('sigFormat'))).toEqual([]);
    const report = { ...instance('cn-lab-report', 'valid'), presentedForm: [{ contentType: 'application/pdf; charset=utf-8', title: 'ok' }, { contentType: 'pdf', title: 'bad' }] };
    const res = await client.post('DiagnosticReport/$validate', report);
    const at = (n: number) => issuesOf(res.body).filter((i) => i.expression?.[0] === `DiagnosticReport.presentedForm[${n}].contentType`);
    expect(at(0)).toEqual([]);
    expect(at(1)).toEqual([expect.objectContaining({ severity: 'warning', code: 'code-invalid', diagnostics: expect.stringMatching(/"pdf" is not a media type \(BCP 13\)/) })]);
  });

  test('preferred: not checked (Patient.communication.language with a made-up code)', async () => {
    const patient = { ...instance('cn-patient', 'valid-minimal'), communication: [{ language: { coding: [{ system: 'http://example.org/languages', code: 'zz' }] } }] };
    const checked = await client.post('Patient/$validate', patient);
    expect(issuesOf(checked.body).filter((i) => i.expression?.[0]?.startsWith('Patient.communication'))).toEqual([]);
    expect((await client.post('Patient', patient)).status).toBe(201);
  });

  test('example: not checked (Observation.code with a made-up code)', async () => {
    const observation = { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://example.org/local-tests', code: 'GLU-1' }] } };
    const checked = await client.post('Observation/$validate', observation);
    expect(issuesOf(checked.body).filter((i) => i.expression?.[0]?.startsWith('Observation.code'))).toEqual([]);
    expect((await client.post('Observation', observation)).status).toBe(201);
  });
});

describe('warnings of a successful write (Prefer: return=OperationOutcome, as HAPI answers)', () => {
  const withWarning = () => {
    const patient = instance('cn-patient', 'valid-minimal');
    patient.identifier = [{ type: { coding: [{ system: 'http://example.org/id-types', code: 'staff' }] }, system: 'urn:example:staff', value: 'S-2' }];
    return patient;
  };
  const warningAt = (outcome: any) =>
    find(outcome, { severity: 'warning', code: 'code-invalid', expression: 'Patient.identifier[0].type', text: /\(extensible binding\)/ });

  test('create and update: 201/200 with the informational issue and the warnings', async () => {
    const created = await client.post('Patient', withWarning(), { Prefer: 'return=OperationOutcome' });
    expect(created.status).toBe(201);
    expect(created.body.resourceType).toBe('OperationOutcome');
    expect(created.body.issue[0]).toEqual(expect.objectContaining({ severity: 'information', code: 'informational' }));
    expect(warningAt(created.body)).toBeDefined();
    const id = /Patient\/([^/]+)/.exec(created.headers.get('location') as string)?.[1];
    const updated = await client.put(`Patient/${id}`, { ...withWarning(), id, active: true }, { Prefer: 'return=OperationOutcome' });
    expect(updated.status).toBe(200);
    expect(warningAt(updated.body)).toBeDefined();
    // Without warnings, only the informational issue.
    const clean = await client.post('Patient', { ...instance('cn-patient', 'valid-full'), text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">王芳</div>' } }, { Prefer: 'return=OperationOutcome' });
    expect(clean.status).toBe(201);
    expect(clean.body.issue.map((i: any) => i.severity)).toEqual(['information']);
  });

  test('each transaction entry carries its own warnings', async () => {
    const res = await client.post('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: withWarning(), request: { method: 'POST', url: 'Patient' } }],
    }, { Prefer: 'return=OperationOutcome' });
    expect(res.status).toBe(200);
    expect(warningAt(res.body.entry[0].response.outcome)).toBeDefined();
  });
});

describe('a full patient record as a transaction', () => {
  function record(marker: string): { bundle: any; idNumber: string } {
    const patient = instance('cn-patient', 'valid-full');
    const idNumber = '440524188001010014';
    patient.identifier = [{ system: ID_CARD, value: idNumber }, { system: 'urn:oid:2.16.156.10011.1.13', value: `MR-${marker}` }];
    patient.gender = 'male';
    patient._gender.extension[0].valueCoding = { system: 'urn:oid:2.16.156.10011.2.3.3.4', code: '1', display: '男性' };
    patient.birthDate = '1880-01-01';
    const ref = (urn: string) => ({ reference: urn });
    const encounter = { ...instance('cn-encounter', 'valid-inpatient'), subject: ref('urn:uuid:p') };
    const observation = { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '2345-7', display: 'Glucose' }] }, subject: ref('urn:uuid:p'), encounter: ref('urn:uuid:e'), valueQuantity: { value: 5.4, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' } };
    const study = { ...instance('cn-imaging-study', 'valid'), subject: ref('urn:uuid:p') };
    const lab = { ...instance('cn-lab-report', 'valid'), subject: ref('urn:uuid:p'), encounter: ref('urn:uuid:e'), result: [ref('urn:uuid:o')] };
    const imaging = { ...instance('cn-imaging-report', 'valid'), subject: ref('urn:uuid:p'), imagingStudy: [ref('urn:uuid:s')] };
    const consent = { ...instance('cn-consent', 'valid'), patient: ref('urn:uuid:p') };
    const entries: [string, Resource][] = [['p', patient], ['e', encounter], ['o', observation as Resource], ['s', study], ['l', lab], ['i', imaging], ['c', consent]];
    return {
      idNumber,
      bundle: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: entries.map(([urn, resource]) => ({ fullUrl: `urn:uuid:${urn}`, resource, request: { method: 'POST', url: resource.resourceType } })),
      },
    };
  }

  test('a conforming record goes through; one invalid entry rolls the whole transaction back', async () => {
    const { bundle, idNumber } = record('tx-ok');
    const ok = await client.post('', bundle);
    expect(ok.status).toBe(200);
    expect(ok.body.entry.map((e: any) => e.response.status)).toEqual(Array(7).fill('201 Created'));
    const search = await client.get(`Patient?identifier=${encodeURIComponent('urn:oid:2.16.156.10011.1.13|MR-tx-ok')}`);
    expect(search.body.entry).toHaveLength(1);

    const counts = async () => Promise.all(['Patient', 'Encounter', 'Observation', 'ImagingStudy', 'DiagnosticReport', 'Consent', 'Provenance'].map(rows));
    const before = await counts();
    const bad = record('tx-bad');
    delete bad.bundle.entry[1].resource.identifier; // the inpatient Encounter loses its inpatient number
    const refusedTx = await client.post('', bad.bundle);
    expect(refusedTx.status).toBe(422);
    expect(issuesOf(refusedTx.body).some((i) => i.severity === 'error' && i.code === 'invariant' && /^cn-enc-2: /.test(i.diagnostics))).toBe(true);
    expect(await counts()).toEqual(before);
    const none = await client.get(`Patient?identifier=${encodeURIComponent('urn:oid:2.16.156.10011.1.13|MR-tx-bad')}`);
    expect(none.body.entry ?? []).toEqual([]);
    expect(idNumber).toHaveLength(18);
  });
});
