/**
 * Resources for the CRUD workload: each is created, read, updated and deleted again, as in
 * public FHIR server benchmarks. They are chosen so that the delete is allowed: no resource
 * is tied to a recent Encounter (retention), and Encounters are legacy visits from 2005-2008,
 * whose 15-year outpatient retention has ended.
 */
import type { DiagnosticReport, Encounter, Observation, Resource } from '@medplum/fhirtypes';
import { LAB_PANELS, LOINC, OBSERVATION_CATEGORY, REPORT_CATEGORY, UCUM, VITALS } from './clinical';
import { CODE_SYSTEM, DIAGNOSES, OID } from './national';
import { organizationId, standalonePatient } from './generator';
import { Random } from './random';

export const CRUD_TYPES = ['Patient', 'Observation', 'Encounter', 'DiagnosticReport'] as const;
export type CrudType = (typeof CRUD_TYPES)[number];

const DAY = 86_400_000;

function legacyTime(rng: Random): string {
  const ms = Date.UTC(2005, 0, 1) + rng.int(0, 4 * 365) * DAY + rng.int(0, 8 * 3600) * 1000;
  return new Date(ms).toISOString().slice(0, 19) + '+08:00';
}

/** The n-th resource of the workload, of the given type, about an existing patient. */
export function crudResource(seed: number, n: number, type: CrudType, patientId: string): Resource {
  const rng = Random.of(seed, n, 4);
  const subject = { reference: `Patient/${patientId}` };
  const org = { reference: `Organization/${organizationId(rng.int(1, 12))}` };
  switch (type) {
    case 'Patient':
      return standalonePatient(seed, n);
    case 'Observation':
      return {
        resourceType: 'Observation',
        status: 'final',
        category: [{ coding: [{ system: OBSERVATION_CATEGORY, code: 'vital-signs' }] }],
        code: { coding: [{ system: LOINC, code: VITALS.heartRate.code, display: VITALS.heartRate.display }], text: '心率' },
        subject,
        effectiveDateTime: legacyTime(rng),
        valueQuantity: { value: rng.int(55, 110), unit: '/min', system: UCUM, code: '/min' },
      } satisfies Observation;
    case 'Encounter': {
      const start = legacyTime(rng);
      const diagnosis = rng.pick(DIAGNOSES);
      return {
        resourceType: 'Encounter',
        identifier: [{ system: OID.outpatientNumber, value: `MZ${rng.digits(10)}` }],
        status: 'finished',
        class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB', display: 'ambulatory' },
        type: [{ coding: [{ system: CODE_SYSTEM.patientType, code: '1', display: '门诊' }] }],
        subject,
        period: { start, end: start },
        reasonCode: [{ coding: [{ system: CODE_SYSTEM.icd10, code: diagnosis.code, display: diagnosis.display }] }],
        serviceProvider: org,
      } satisfies Encounter;
    }
    case 'DiagnosticReport': {
      const panel = rng.pick(LAB_PANELS);
      return {
        resourceType: 'DiagnosticReport',
        identifier: [{ system: OID.labReportNumber, value: `LAB${rng.digits(10)}` }],
        status: 'final',
        category: [{ coding: [{ system: REPORT_CATEGORY, code: 'LAB', display: 'Laboratory' }] }],
        code: { coding: [{ system: LOINC, code: panel.code, display: panel.display }] },
        subject,
        effectiveDateTime: legacyTime(rng),
        performer: [org],
        conclusion: '未见明显异常。',
      } satisfies DiagnosticReport;
    }
  }
}

/** A changed copy for the update step (a new value, a corrected status). */
export function crudChange(resource: Resource): Resource {
  const copy = structuredClone(resource) as Resource & Record<string, any>;
  switch (copy.resourceType) {
    case 'Patient':
      copy.telecom = [{ system: 'phone', value: '13800000000', use: 'mobile' }];
      break;
    case 'Observation':
      copy.status = 'amended';
      copy.valueQuantity = { ...copy.valueQuantity, value: (copy.valueQuantity?.value ?? 70) + 1 };
      break;
    case 'Encounter':
      copy.status = 'finished';
      copy.priority = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActPriority', code: 'R', display: 'routine' }] };
      break;
    case 'DiagnosticReport':
      copy.status = 'amended';
      copy.conclusion = '复核：未见明显异常。';
      break;
  }
  return copy;
}
