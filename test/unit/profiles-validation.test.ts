/**
 * Valid and invalid instances of every profile of the pack (test/fixtures/profiles/<profile>/),
 * validated with @medplum/core against the committed snapshots (and each pack extension found
 * against its definition). Each invalid instance breaks one rule and must fail with exactly
 * that issue: where (FHIRPath expression) and what (message). Warning invariants, which
 * medplum does not evaluate, are evaluated here with FHIRPath. The AuditEvents the server
 * writes (IHE BALP) must meet CN AuditEvent.
 */
import { evalFhirPathTyped, toTypedValue } from '@medplum/core';
import type { Patient, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { toAuditEvent, type AuditContext } from '../../src/audit/balp';
import type { AuditRecord } from '../../src/fhir/context';
import { errorsOf, fixture, fixtureNames, loadPack, validateAgainst } from '../helpers/profiles';

const SD = 'http://fhir-server.dev/cn/StructureDefinition/';
const constraint = (key: string) => expect.stringMatching(new RegExp(`^Constraint ${key} not met: `));
const slice = (name: string, expected: string) => `Incorrect number of values provided for slice '${name}': expected ${expected}, but found 0`;

/** For every invalid fixture: the one error it must produce, [expression, message]. */
const INVALID: Record<string, Record<string, [string, string | ReturnType<typeof constraint>]>> = {
  'cn-patient': {
    'invalid-id-card-type-outside-namespace': ['Patient.identifier[1]', constraint('cn-pat-5')],
    'invalid-no-gender': ['Patient.gender', 'Missing required property'],
    'invalid-sex-code-disagrees': ['Patient', constraint('cn-pat-8')],
    'invalid-two-resident-ids': ['Patient.identifier', "Incorrect number of values provided for slice 'idCard': expected 0..1, but found 2"],
    'invalid-marital-status-without-national-code': ['Patient.maritalStatus.coding', slice('national', '1..1')],
    'invalid-ethnicity-from-another-table': ['Patient.extension[0].value[x]', 'Value did not match expected pattern'],
  },
  'cn-encounter': {
    'invalid-inpatient-without-inpatient-number': ['Encounter', constraint('cn-enc-2')],
    'invalid-outpatient-type-with-class-imp': ['Encounter', constraint('cn-enc-1')],
    'invalid-outpatient-without-outpatient-number': ['Encounter', constraint('cn-enc-3')],
    'invalid-no-period': ['Encounter.period', 'Missing required property'],
  },
  'cn-lab-report': {
    'invalid-without-lab-report-number': ['DiagnosticReport', constraint('cn-dr-2')],
    'invalid-no-performing-organization': ['DiagnosticReport', constraint('cn-dr-1')],
    'invalid-no-results': ['DiagnosticReport.result', 'Missing required property'],
  },
  'cn-imaging-report': {
    'invalid-lab-number-on-imaging-report': ['DiagnosticReport', constraint('cn-dr-3')],
    'invalid-no-diagnostic-service-section': ['DiagnosticReport.category', slice('imaging', '1..*')],
  },
  'cn-imaging-study': {
    'invalid-study-uid-leading-zero': ['ImagingStudy.identifier[0]', constraint('cn-is-1')],
    'invalid-study-uid-without-urn-oid': ['ImagingStudy.identifier[0]', constraint('cn-is-1')],
    'invalid-series-uid': ['ImagingStudy.series[0]', constraint('cn-is-2')],
    'invalid-instance-uid': ['ImagingStudy.series[0]', constraint('cn-is-3')],
    'invalid-modality-not-dicom': ['ImagingStudy', constraint('cn-is-4')],
    'invalid-no-study-uid': ['ImagingStudy.identifier', 'Missing required property'],
  },
  'cn-consent': {
    'invalid-no-patient': ['Consent.patient', 'Missing required property'],
    'invalid-scope-not-privacy': ['Consent.scope', 'Value did not match expected pattern'],
    'invalid-provision-without-type': ['Consent', constraint('cn-con-1')],
    'invalid-provision-without-period': ['Consent', constraint('cn-con-2')],
    'invalid-actor-not-organization-or-practitioner': ['Consent', constraint('cn-con-3')],
    'invalid-nested-actor-not-organization-or-practitioner': ['Consent', constraint('cn-con-3')],
  },
  'cn-signature-provenance': {
    'invalid-target-without-version': ['Provenance.target[0]', constraint('cn-prov-1')],
    'invalid-unsigned': ['Provenance.signature', 'Missing required property'],
    'invalid-signature-format': ['Provenance.signature.sigFormat', 'Value did not match expected pattern'],
    'invalid-no-author': ['Provenance', constraint('cn-prov-2')],
    'invalid-custodian-not-an-organization': ['Provenance', constraint('cn-prov-3')],
    'invalid-application-not-a-device': ['Provenance', constraint('cn-prov-4')],
    'invalid-no-activity': ['Provenance.activity', 'Missing required property'],
  },
  'cn-audit-event': {
    'invalid-no-requestor': ['AuditEvent', constraint('cn-ae-1')],
    'invalid-agent-without-who': ['AuditEvent.agent[1]', constraint('cn-ae-2')],
    'invalid-patient-entity-not-a-patient': ['AuditEvent.entity[1]', constraint('cn-ae-3')],
    'invalid-no-outcome': ['AuditEvent.outcome', 'Missing required property'],
  },
};

/** The further errors an invalid fixture produces, where one mistake breaks two rules. */
const ALSO: Record<string, [string, string][]> = {
  'invalid-without-lab-report-number': [['DiagnosticReport.identifier', 'Missing required property']],
  'invalid-lab-number-on-imaging-report': [['DiagnosticReport.identifier', slice('examReportNumber', '1..1')]],
};

/**
 * Invalid fixtures whose rule is a terminology binding: structurally they pass (medplum does
 * not check bindings); test/http/profiles-pack.test.ts checks their codes against the pack's
 * value sets, as the validation engine's binding check does.
 */
const BINDING_ONLY = new Set(['cn-patient/invalid-unknown-ethnicity']);

/**
 * Invalid fixtures whose rule is an invariant on a slice's child (the resident identity number
 * rules on Patient.identifier:idCard.value): medplum does not evaluate those, so they are
 * evaluated here with FHIRPath (and over HTTP in test/http/national-profiles.test.ts).
 */
const ID_NUMBER: Record<string, string> = {
  'invalid-check-digit': 'cn-pat-2',
  'invalid-impossible-birth-date': 'cn-pat-3',
  'invalid-not-a-leap-year': 'cn-pat-3',
  'invalid-future-birth-date': 'cn-pat-3',
  'invalid-unknown-province': 'cn-pat-4',
  'invalid-lowercase-x': 'cn-pat-1',
};

beforeAll(() => loadPack());

describe.each(Object.keys(INVALID))('%s', (profile) => {
  const names = fixtureNames(profile);

  test('has valid and invalid fixtures, every invalid one with its expected issue', () => {
    expect(names.some((n) => n.startsWith('valid'))).toBe(true);
    const invalid = names.filter((n) => n.startsWith('invalid') && !BINDING_ONLY.has(`${profile}/${n}`) && !(profile === 'cn-patient' && ID_NUMBER[n]));
    expect(invalid.sort()).toEqual(Object.keys(INVALID[profile]).sort());
  });

  test.each(names.filter((n) => n.startsWith('valid')))('%s passes', (name) => {
    expect(errorsOf(validateAgainst(SD + profile, fixture(profile, name)))).toEqual([]);
  });

  test.each(Object.entries(INVALID[profile]))('%s fails where and why it should', (name, [expression, message]) => {
    const errors = errorsOf(validateAgainst(SD + profile, fixture(profile, name)));
    expect(errors[0]).toEqual(expect.objectContaining({ severity: 'error', expression: [expression], details: { text: message } }));
    // Nothing else is wrong with it, but for report numbers, which the lab and imaging profiles also demand by cardinality.
    expect(errors.slice(1).map((i) => [i.expression?.[0], i.details?.text])).toEqual(ALSO[name] ?? []);
  });
});

test('an invalid instance of a derived profile also breaks the rules of its base (lab report -> CN DiagnosticReport)', () => {
  const report = fixture('cn-lab-report', 'invalid-without-lab-report-number');
  expect(errorsOf(validateAgainst(SD + 'cn-diagnostic-report', report)).map((i) => i.details?.text)).toEqual([constraint('cn-dr-2')]);
  expect(errorsOf(validateAgainst(SD + 'cn-diagnostic-report', fixture('cn-lab-report', 'valid')))).toEqual([]);
});

describe('resident identity number invariants on Patient.identifier:idCard.value (FHIRPath)', () => {
  const rules = () => {
    const sd = loadPack().get(SD + 'cn-patient') as StructureDefinition;
    return (sd.snapshot?.element?.find((e) => e.id === 'Patient.identifier:idCard.value')?.constraint ?? []).filter((c) => c.key?.startsWith('cn-'));
  };
  const broken = (value: string) =>
    rules()
      .filter((c) => evalFhirPathTyped(c.expression as string, [{ type: 'string', value }], {}).map((v) => v.value)[0] !== true)
      .map((c) => c.key);

  test('they are the four GB 11643 rules, errors', () => {
    expect(rules().map((c) => [c.key, c.severity])).toEqual([['cn-pat-1', 'error'], ['cn-pat-2', 'error'], ['cn-pat-3', 'error'], ['cn-pat-4', 'error']]);
  });

  test.each(Object.entries(ID_NUMBER))('%s breaks %s and nothing else', (name, key) => {
    const patient = fixture('cn-patient', name) as Patient;
    const idCard = patient.identifier?.find((i) => i.system === 'urn:oid:2.16.156.10011.1.3');
    expect(broken(idCard?.value as string)).toEqual([key]);
  });

  test.each(['11010519491231002X', '440524188001010014', '34052419800101001X', '110105491231002'])('%s is a valid number', (value) => {
    expect(broken(value)).toEqual([]);
  });
});

describe('warning invariants of CN Patient (FHIRPath)', () => {
  const invariant = (key: string) => {
    const sd = loadPack().get(SD + 'cn-patient') as StructureDefinition;
    const c = sd.snapshot?.element?.[0].constraint?.find((x) => x.key === key);
    expect(c?.severity).toBe('warning');
    return (patient: Patient) => {
      const resource = toTypedValue(patient);
      return evalFhirPathTyped(c?.expression as string, [resource], { '%resource': resource }).map((v) => v.value);
    };
  };
  const patient = fixture('cn-patient', 'valid-full') as Patient;

  test('cn-pat-6: the sequence digit is odd for men, even for women', () => {
    const parity = invariant('cn-pat-6');
    expect(parity(patient)).toEqual([true]); // 11010519491231002X: 002, a woman
    expect(parity({ ...patient, gender: 'male' })).toEqual([false]);
    expect(parity({ ...patient, gender: 'unknown' })).toEqual([true]);
    expect(parity({ ...patient, gender: 'male', identifier: [{ system: 'urn:oid:2.16.156.10011.1.3', value: '110105194912310038' }] })).toEqual([true]);
  });

  test('cn-pat-7: birthDate agrees with the number', () => {
    const agrees = invariant('cn-pat-7');
    expect(agrees(patient)).toEqual([true]);
    expect(agrees({ ...patient, birthDate: '1949-12-30' })).toEqual([false]);
    expect(agrees({ ...patient, birthDate: '1949' })).toEqual([true]);
  });
});

describe('the AuditEvents this server writes (IHE BALP) meet CN AuditEvent', () => {
  const ctx = (principal: AuditContext['principal']): AuditContext => ({ principal, requestId: 'req-1', remoteAddress: '10.0.0.7', baseUrl: 'https://ehr.example/fhir' });
  const record = (r: Partial<AuditRecord>): AuditRecord => ({ interaction: 'read', status: 200, method: 'GET', url: '/fhir/Patient/p1', ...r });
  const patient: Resource = { resourceType: 'Patient', id: 'p1' };
  const cases: [string, AuditRecord, AuditContext][] = [
    ['a practitioner reads a patient', record({ resourceType: 'Patient', id: 'p1', versionId: '2', response: patient }), ctx({ kind: 'user', clientId: 'portal', userId: 'u1', fhirUser: 'Practitioner/li', organization: 'pumch', scopes: [], purposeOfUse: ['TREAT'] })],
    ['a backend client searches', record({ interaction: 'search', resourceType: 'Observation', url: '/fhir/Observation?patient=p1', response: { resourceType: 'Bundle', type: 'searchset', entry: [] } as Resource }), ctx({ kind: 'client', clientId: 'lab-feed', scopes: [] })],
    ['an anonymous request is refused', record({ interaction: 'read', resourceType: 'Patient', id: 'p1', status: 401, outcomeText: 'no token' }), ctx({ kind: 'anonymous', scopes: [] })],
    ['a user logs in with break-the-glass', record({ interaction: 'login', url: '/fhir/oauth2/authorize' }), ctx({ kind: 'user', clientId: 'ehr', userId: 'u2', scopes: [], purposeOfUse: ['ETREAT'] })],
    ['a transaction writes', record({ interaction: 'transaction', method: 'POST', url: '/fhir', status: 200 }), ctx({ kind: 'system', clientId: 'admin', scopes: [] })],
  ];

  test.each(cases)('%s', (_name, audit, context) => {
    const event = toAuditEvent(audit, context, '2026-11-20T09:00:00.000Z');
    expect(errorsOf(validateAgainst(SD + 'cn-audit-event', event))).toEqual([]);
  });
});
