/**
 * The benchmark's data generator: deterministic, national identifiers with valid check
 * characters, unique per patient, and consistent with the rest of the record.
 */
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { patientIdentity, patientRecord, referenceData } from '../../bench/data/generator';
import { crudChange, crudResource, CRUD_TYPES } from '../../bench/data/crud';
import { isValidResidentId, OID, residentIdCheckChar } from '../../bench/data/national';

test('the GB 11643 check character of the published examples', () => {
  for (const id of ['11010519491231002X', '440524188001010014', '34052419800101001X']) {
    expect(residentIdCheckChar(id.slice(0, 17))).toBe(id[17]);
    expect(isValidResidentId(id)).toBe(true);
  }
  expect(isValidResidentId('110105194912310021')).toBe(false);
  expect(isValidResidentId('11010519491231002')).toBe(false);
  expect(() => residentIdCheckChar('1101051949123100')).toThrow();
});

test('records are deterministic: the same seed and index give the same Bundle', () => {
  const a = patientRecord(1, 42);
  const b = patientRecord(1, 42);
  expect(JSON.stringify(a.bundle)).toBe(JSON.stringify(b.bundle));
  expect(JSON.stringify(patientRecord(2, 42).bundle)).not.toBe(JSON.stringify(a.bundle));
  expect(JSON.stringify(patientRecord(1, 43).bundle)).not.toBe(JSON.stringify(a.bundle));
  expect(JSON.stringify(referenceData())).toBe(JSON.stringify(referenceData()));
  expect(JSON.stringify(crudResource(1, 7, 'Encounter', 'p1'))).toBe(JSON.stringify(crudResource(1, 7, 'Encounter', 'p1')));
});

test('resident ID numbers are valid, unique, and agree with sex, birth date and address', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const identity = patientIdentity(1, i);
    const id = identity.residentId;
    expect(isValidResidentId(id)).toBe(true);
    expect(seen.has(id)).toBe(false);
    seen.add(id);
    expect(id.slice(0, 6)).toBe(identity.division.code);
    expect(id.slice(6, 14)).toBe(identity.birthDate.replace(/-/g, ''));
    // Odd sequence numbers are men, even ones women.
    expect(Number(id[16]) % 2 === 1).toBe(identity.gender === 'male');
  }
});

test('a record is one transaction of about a hundred linked resources of the expected types', () => {
  let total = 0;
  for (let i = 0; i < 50; i++) {
    const record = patientRecord(1, i);
    const bundle: Bundle = record.bundle;
    expect(bundle.type).toBe('transaction');
    expect(record.resourceCount).toBe(bundle.entry!.length);
    total += record.resourceCount;
    const patient = bundle.entry![0].resource as Patient;
    expect(patient.resourceType).toBe('Patient');
    expect(patient.identifier!.find((x) => x.system === OID.residentId)!.value).toBe(record.identity.residentId);
    expect(patient.birthDate).toBe(record.identity.birthDate);
    const fullUrls = new Set(bundle.entry!.map((e) => e.fullUrl));
    expect(fullUrls.size).toBe(bundle.entry!.length);
    // Every urn:uuid reference points at an entry of the same Bundle.
    const refs = JSON.stringify(bundle).match(/"reference":"urn:uuid:[^"]+"/g) ?? [];
    for (const ref of refs) expect(fullUrls.has(ref.slice(13, -1))).toBe(true);
  }
  const types = new Set(Array.from({ length: 50 }, (_, i) => patientRecord(1, i).bundle.entry!.map((e) => e.resource!.resourceType)).flat());
  expect([...types].sort()).toEqual(['Condition', 'Consent', 'DiagnosticReport', 'Encounter', 'ImagingStudy', 'Observation', 'Patient']);
  expect(total / 50).toBeGreaterThan(70);
  expect(total / 50).toBeLessThan(130);
});

test('the CRUD update changes each type of resource', () => {
  for (const type of CRUD_TYPES) {
    const resource = crudResource(1, 3, type, 'p1');
    expect(resource.resourceType).toBe(type);
    expect(JSON.stringify(crudChange(resource))).not.toBe(JSON.stringify(resource));
  }
});
