/**
 * Shared bits of the validation tests: the fixture pack (test/fixtures/validation), its
 * canonical URLs, and readers for OperationOutcomes.
 */
import path from 'node:path';
import type { FhirTestClient } from './fhir-client';
import { startTestServer, type TestServer } from './server';

export const VALIDATION_FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'validation');

const EX = 'http://example.org/fhir';
export const TEST_PATIENT = `${EX}/StructureDefinition/test-patient`;
export const TEST_OBSERVATION = `${EX}/StructureDefinition/test-observation`;
export const TEST_ETHNICITY = `${EX}/StructureDefinition/test-ethnicity`;
export const TEST_DIFFERENTIAL = `${EX}/StructureDefinition/test-differential`;
export const TEST_CODES = `${EX}/CodeSystem/test-codes`;
export const RESIDENT_SYSTEM = 'urn:oid:2.16.840.1.113883.2.4.6.3';

export interface Issue {
  severity: string;
  code: string;
  diagnostics: string;
  expression?: string[];
}

/** The issues of an OperationOutcome body, without dom-6 (no narrative), which most test resources trigger. */
export function issuesOf(body: any): Issue[] {
  return ((body?.issue ?? []) as Issue[]).filter((i) => !i.diagnostics?.startsWith('dom-6'));
}

export function errorsOf(body: any): Issue[] {
  return issuesOf(body).filter((i) => i.severity === 'error' || i.severity === 'fatal');
}

/** The issue about one FHIRPath expression (the first, when several). */
export function issueAt(body: any, expression: string): Issue | undefined {
  return issuesOf(body).find((i) => i.expression?.[0] === expression);
}

/** A server with the validation fixtures as its profile pack. */
export async function startValidationServer(env: Record<string, string> = {}): Promise<{ server: TestServer; client: FhirTestClient }> {
  const server = await startTestServer({ PROFILES_DIR: VALIDATION_FIXTURES, ...env });
  return { server, client: server.client() };
}

/** A Patient that conforms to test-patient. */
export function conformingPatient(): any {
  return {
    resourceType: 'Patient',
    meta: { profile: [TEST_PATIENT] },
    extension: [{ url: TEST_ETHNICITY, valueCoding: { system: TEST_CODES, code: '01', display: 'Han' } }],
    identifier: [
      { system: RESIDENT_SYSTEM, value: '11010519491231002X' },
      { system: 'http://hospital.example.org/mrn', value: 'MRN-1' },
    ],
    active: true,
    name: [{ family: '王', given: ['芳'] }],
    gender: 'female',
    birthDate: '1949-12-31',
    maritalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M', display: 'Married' }] },
  };
}

/** An Observation that conforms to test-observation (its subject must be set). */
export function conformingObservation(subject: string): any {
  return {
    resourceType: 'Observation',
    meta: { profile: [TEST_OBSERVATION] },
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: TEST_CODES, code: 'gluc', display: 'Glucose' }] },
    subject: { reference: subject },
    valueQuantity: { value: 5.4, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
  };
}
