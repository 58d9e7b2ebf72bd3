/**
 * A deterministic generator of national-style clinical records: patient i of seed s is one
 * transaction Bundle (POST entries linked by urn:uuid fullUrls) holding the Patient, a
 * Consent, outpatient and inpatient Encounters with their diagnoses (Condition), vital
 * signs, laboratory DiagnosticReports with their result Observations, and imaging
 * DiagnosticReports with their ImagingStudies: about 95 resources on average.
 *
 * Records depend only on (seed, index), so any scale is the first N records of the same
 * sequence, and two runs load the same data. Patients' resident identity numbers are unique
 * (index → address, birth date and sequence number is a bijection) with valid check characters.
 * The shared directory (hospitals, clinicians) comes from referenceData().
 */
import type {
  Bundle,
  BundleEntry,
  CodeableConcept,
  Condition,
  Consent,
  DiagnosticReport,
  Encounter,
  ImagingStudy,
  Observation,
  Organization,
  Patient,
  Practitioner,
  Reference,
  Resource,
} from '@medplum/fhirtypes';
import {
  DICOM_DCM,
  IMAGING,
  LAB_PANELS,
  LOINC,
  OBSERVATION_CATEGORY,
  REPORT_CATEGORY,
  UCUM,
  VITALS,
  type Analyte,
} from './clinical';
import {
  CODE_SYSTEM,
  DIAGNOSES,
  DIVISIONS,
  ETHNICITIES,
  FAMILY_NAMES,
  GIVEN_CHARS,
  MARITAL_STATUS,
  OID,
  residentIdCheckChar,
} from './national';
import { Random } from './random';

export const ORGANIZATION_COUNT = 12;
export const PRACTITIONER_COUNT = 60;
/** Care happens in this window, so that searches by date have stable answers. */
export const CARE_START = Date.UTC(2019, 0, 1);
export const CARE_END = Date.UTC(2024, 11, 31);

const BIRTH_START = Date.UTC(1940, 0, 1);
const BIRTH_DAYS = 25_567; // 1940-01-01 .. 2009-12-31
const SEQUENCES = 500;
const IDENTITY_SPACE = DIVISIONS.length * BIRTH_DAYS * SEQUENCES;
/** Coprime with IDENTITY_SPACE (2^6·5^3·37·691): index → identity is a permutation, hence unique. */
const IDENTITY_STEP = 122_949_829n;
const DAY = 86_400_000;
/** The national pack's ethnicity extension (cn-ethnicity: a GB 3304 Coding, required binding). */
export const ETHNICITY_EXTENSION = 'http://fhir-server.dev/cn/StructureDefinition/cn-ethnicity';

export const organizationId = (n: number) => `hosp-${String(n).padStart(2, '0')}`;
export const practitionerId = (n: number) => `doc-${String(n).padStart(3, '0')}`;

export interface PatientIdentity {
  residentId: string;
  gender: 'male' | 'female';
  birthDate: string;
  division: (typeof DIVISIONS)[number];
}

/** The identity of patient `index`: unique for every index below IDENTITY_SPACE (~200 million). */
export function patientIdentity(seed: number, index: number): PatientIdentity {
  const rng = Random.of(seed, index, 1);
  let x = Number((BigInt(index) * IDENTITY_STEP + BigInt(seed >>> 0)) % BigInt(IDENTITY_SPACE));
  const division = DIVISIONS[x % DIVISIONS.length];
  x = Math.floor(x / DIVISIONS.length);
  const sequence = x % SEQUENCES;
  const day = Math.floor(x / SEQUENCES);
  const gender = rng.chance(0.5) ? 'male' : 'female';
  const birthDate = new Date(BIRTH_START + day * DAY).toISOString().slice(0, 10);
  // The sequence number's parity is the sex: odd for men, even for women.
  const seq3 = String(sequence * 2 + (gender === 'male' ? 1 : 0)).padStart(3, '0');
  const body = division.code + birthDate.replace(/-/g, '') + seq3;
  return { residentId: body + residentIdCheckChar(body), gender, birthDate, division };
}

const coding = (system: string, code: string, display?: string) => ({ system, code, ...(display && { display }) });
const concept = (system: string, code: string, display?: string, text?: string): CodeableConcept => ({
  coding: [coding(system, code, display)],
  ...(text && { text }),
});
// References are untyped here: each points wherever the element needs.
const ref = (reference: string, display?: string): Reference<any> => ({ reference, ...(display && { display }) });
/** Local (+08:00) timestamps, as hospital systems send them. */
function local(ms: number): string {
  const shifted = new Date(ms + 8 * 3600_000).toISOString();
  return shifted.slice(0, 19) + '+08:00';
}

function round(value: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

/** The hospitals and clinicians records refer to: a transaction of PUTs with fixed ids. */
export function referenceData(seed = 1): Bundle {
  const rng = Random.of(seed, 0x0ffe);
  const entries: BundleEntry[] = [];
  const cities = DIVISIONS;
  for (let n = 1; n <= ORGANIZATION_COUNT; n++) {
    const division = cities[(n - 1) % cities.length];
    const org: Organization = {
      resourceType: 'Organization',
      id: organizationId(n),
      identifier: [{ system: OID.institution, value: `${division.code}${rng.digits(6)}` }],
      active: true,
      type: [concept('http://terminology.hl7.org/CodeSystem/organization-type', 'prov', 'Healthcare Provider')],
      name: `${division.city}第${n}人民医院`,
      telecom: [{ system: 'phone', value: `0${rng.digits(2)}-${rng.digits(8)}`, use: 'work' }],
      address: [{ use: 'work', city: division.city, district: division.district, state: division.province, postalCode: division.postalCode, country: 'CN' }],
    };
    entries.push({ fullUrl: `Organization/${org.id}`, resource: org, request: { method: 'PUT', url: `Organization/${org.id}` } });
  }
  for (let n = 1; n <= PRACTITIONER_COUNT; n++) {
    const family = rng.pick(FAMILY_NAMES);
    const given = rng.pick(GIVEN_CHARS) + rng.pick(GIVEN_CHARS);
    const pr: Practitioner = {
      resourceType: 'Practitioner',
      id: practitionerId(n),
      identifier: [{ system: OID.clinician, value: `D${rng.digits(9)}` }],
      active: true,
      name: [{ use: 'official', text: family + given, family, given: [given] }],
      gender: rng.chance(0.5) ? 'male' : 'female',
      qualification: [{ code: { text: rng.pick(['主任医师', '副主任医师', '主治医师', '住院医师']) } }],
    };
    entries.push({ fullUrl: `Practitioner/${pr.id}`, resource: pr, request: { method: 'PUT', url: `Practitioner/${pr.id}` } });
  }
  return { resourceType: 'Bundle', type: 'transaction', entry: entries };
}

export interface GeneratedRecord {
  index: number;
  identity: PatientIdentity;
  bundle: Bundle;
  /** Resources in the bundle. */
  resourceCount: number;
}

/** Builds one patient's record; every random choice comes from rng, in a fixed order. */
class RecordBuilder {
  readonly entries: BundleEntry[] = [];
  readonly patientRef: Reference<any>;
  readonly org: Reference<any>;

  constructor(
    readonly rng: Random,
    readonly index: number,
    readonly identity: PatientIdentity,
    patientUrl: string
  ) {
    this.patientRef = ref(patientUrl);
    const orgN = (index % ORGANIZATION_COUNT) + 1;
    this.org = ref(`Organization/${organizationId(orgN)}`);
  }

  add<T extends Resource>(resource: T): string {
    const fullUrl = `urn:uuid:${this.rng.uuid()}`;
    this.entries.push({ fullUrl, resource, request: { method: 'POST', url: resource.resourceType } });
    return fullUrl;
  }

  doctor(): Reference<any> {
    return ref(`Practitioner/${practitionerId(this.rng.int(1, PRACTITIONER_COUNT))}`);
  }

  patient(): Patient {
    const { rng, identity } = this;
    const family = rng.pick(FAMILY_NAMES);
    const given = rng.pick(GIVEN_CHARS) + (rng.chance(0.7) ? rng.pick(GIVEN_CHARS) : '');
    const ethnicity = weighted(rng, ETHNICITIES);
    const marital = MARITAL_STATUS[rng.int(0, MARITAL_STATUS.length - 1)];
    const d = identity.division;
    const street = `${rng.pick(['人民路', '解放路', '中山路', '建设路', '和平路'])}${rng.int(1, 300)}号`;
    return {
      resourceType: 'Patient',
      extension: [
        {
          url: ETHNICITY_EXTENSION,
          valueCoding: coding(CODE_SYSTEM.ethnicity, ethnicity.code, ethnicity.display),
        },
      ],
      identifier: [
        {
          use: 'official',
          type: concept('urn:oid:2.16.156.10011.2.3.1.1', '01', '居民身份证'),
          system: OID.residentId,
          value: identity.residentId,
        },
        { use: 'usual', system: OID.healthCard, value: `HC${rng.digits(12)}` },
        { system: OID.medicalRecordNumber, value: `MRN${String(this.index).padStart(8, '0')}`, assigner: this.org },
      ],
      active: true,
      name: [{ use: 'official', text: family + given, family, given: [given] }],
      telecom: [{ system: 'phone', value: `1${rng.pick(['3', '5', '8'])}${rng.digits(9)}`, use: 'mobile' }],
      gender: identity.gender,
      birthDate: identity.birthDate,
      address: [
        {
          use: 'home',
          text: `${d.province}${d.city === d.province ? '' : d.city}${d.district}${street}`,
          line: [street],
          city: d.city,
          district: d.district,
          state: d.province,
          postalCode: d.postalCode,
          country: 'CN',
        },
      ],
      maritalStatus: {
        coding: [
          coding(CODE_SYSTEM.maritalStatus, marital.code, marital.display),
          coding('http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', marital.v3, marital.v3display),
        ],
      },
      managingOrganization: this.org,
    };
  }

  consent(): Consent {
    const { rng } = this;
    const signed = CARE_START - rng.int(0, 365) * DAY;
    return {
      resourceType: 'Consent',
      identifier: [{ system: OID.consentFormNumber, value: `IC${rng.digits(10)}` }],
      status: 'active',
      scope: concept('http://terminology.hl7.org/CodeSystem/consentscope', 'patient-privacy', 'Privacy Consent'),
      category: [concept(LOINC, '59284-0', 'Patient Consent')],
      patient: this.patientRef,
      dateTime: local(signed),
      performer: [this.patientRef],
      organization: [this.org],
      policyRule: concept('http://terminology.hl7.org/CodeSystem/v3-ActCode', 'OPTIN', 'opt-in'),
      provision: {
        type: 'permit',
        period: { start: local(signed) },
        actor: [{ role: concept('http://terminology.hl7.org/CodeSystem/v3-ParticipationType', 'CST', 'custodian'), reference: this.org }],
        purpose: [coding('http://terminology.hl7.org/CodeSystem/v3-ActReason', 'TREAT', 'treatment')],
      },
    };
  }

  encounter(inpatient: boolean, start: number, end: number, diagnosis: { code: string; display: string }): string {
    const { rng } = this;
    const emergency = !inpatient && rng.chance(0.1);
    const cls = inpatient ? ['IMP', 'inpatient encounter', '3', '住院'] : emergency ? ['EMER', 'emergency', '2', '急诊'] : ['AMB', 'ambulatory', '1', '门诊'];
    const encounter: Encounter = {
      resourceType: 'Encounter',
      identifier: [
        inpatient
          ? { system: OID.inpatientNumber, value: `ZY${rng.digits(9)}` }
          : { system: OID.outpatientNumber, value: `MZ${rng.digits(10)}` },
      ],
      status: 'finished',
      class: coding('http://terminology.hl7.org/CodeSystem/v3-ActCode', cls[0], cls[1]),
      type: [concept(CODE_SYSTEM.patientType, cls[2], cls[3])],
      subject: this.patientRef,
      participant: [
        {
          type: [concept('http://terminology.hl7.org/CodeSystem/v3-ParticipationType', 'ATND', 'attender')],
          individual: this.doctor(),
        },
      ],
      period: { start: local(start), end: local(end) },
      reasonCode: [concept(CODE_SYSTEM.icd10, diagnosis.code, diagnosis.display)],
      serviceProvider: this.org,
      ...(inpatient && {
        hospitalization: {
          admitSource: concept('http://terminology.hl7.org/CodeSystem/admit-source', rng.pick(['outp', 'emd']), undefined),
          dischargeDisposition: concept('http://terminology.hl7.org/CodeSystem/discharge-disposition', 'home', 'Home'),
        },
      }),
    };
    return this.add(encounter);
  }

  condition(encounterUrl: string, at: number, diagnosis: { code: string; display: string }): string {
    const condition: Condition = {
      resourceType: 'Condition',
      clinicalStatus: concept('http://terminology.hl7.org/CodeSystem/condition-clinical', this.rng.pick(['active', 'resolved'])),
      verificationStatus: concept('http://terminology.hl7.org/CodeSystem/condition-ver-status', 'confirmed'),
      category: [concept('http://terminology.hl7.org/CodeSystem/condition-category', 'encounter-diagnosis', 'Encounter Diagnosis')],
      code: { coding: [{ system: CODE_SYSTEM.icd10, version: '国家临床版2.0', code: diagnosis.code, display: diagnosis.display }], text: diagnosis.display },
      subject: this.patientRef,
      encounter: ref(encounterUrl),
      recordedDate: local(at),
      recorder: this.doctor(),
    };
    return this.add(condition);
  }

  private quantity(value: number, unit: string) {
    return { value, unit, system: UCUM, code: unit };
  }

  vitals(encounterUrl: string, at: number): void {
    const { rng } = this;
    const category = [concept(OBSERVATION_CATEGORY, 'vital-signs', 'Vital Signs')];
    const systolic = Math.round(rng.normal(125, 15));
    const diastolic = Math.round(rng.normal(80, 10));
    this.add<Observation>({
      resourceType: 'Observation',
      status: 'final',
      category,
      code: concept(LOINC, VITALS.bloodPressure.code, VITALS.bloodPressure.display, '血压'),
      subject: this.patientRef,
      encounter: ref(encounterUrl),
      effectiveDateTime: local(at),
      component: [
        { code: concept(LOINC, VITALS.systolic.code, VITALS.systolic.display), valueQuantity: this.quantity(systolic, 'mm[Hg]') },
        { code: concept(LOINC, VITALS.diastolic.code, VITALS.diastolic.display), valueQuantity: this.quantity(diastolic, 'mm[Hg]') },
      ],
    });
    this.add<Observation>({
      resourceType: 'Observation',
      status: 'final',
      category,
      code: concept(LOINC, VITALS.heartRate.code, VITALS.heartRate.display, '心率'),
      subject: this.patientRef,
      encounter: ref(encounterUrl),
      effectiveDateTime: local(at),
      valueQuantity: this.quantity(Math.round(rng.normal(76, 10)), '/min'),
    });
  }

  labReport(encounterUrl: string, at: number): void {
    const { rng } = this;
    const panel = rng.pick(LAB_PANELS);
    const issued = at + rng.int(1, 6) * 3600_000;
    const results = panel.analytes.map((analyte) => ref(this.add(this.labResult(analyte, encounterUrl, at, issued))));
    const report: DiagnosticReport = {
      resourceType: 'DiagnosticReport',
      identifier: [{ system: OID.labReportNumber, value: `LAB${rng.digits(10)}` }],
      status: 'final',
      category: [concept(REPORT_CATEGORY, 'LAB', 'Laboratory')],
      code: concept(LOINC, panel.code, panel.display),
      subject: this.patientRef,
      encounter: ref(encounterUrl),
      effectiveDateTime: local(at),
      issued: new Date(issued).toISOString(),
      performer: [this.org],
      resultsInterpreter: [this.doctor()],
      result: results,
    };
    this.add(report);
  }

  private labResult(analyte: Analyte, encounterUrl: string, at: number, issued: number): Observation {
    const value = Math.max(0, round(this.rng.normal(analyte.mean, analyte.sd), analyte.decimals));
    const flag = value < analyte.low ? ['L', 'Low'] : value > analyte.high ? ['H', 'High'] : ['N', 'Normal'];
    return {
      resourceType: 'Observation',
      status: 'final',
      category: [concept(OBSERVATION_CATEGORY, 'laboratory', 'Laboratory')],
      code: concept(LOINC, analyte.code, undefined, analyte.display),
      subject: this.patientRef,
      encounter: ref(encounterUrl),
      effectiveDateTime: local(at),
      issued: new Date(issued).toISOString(),
      valueQuantity: this.quantity(value, analyte.unit),
      interpretation: [concept('http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', flag[0], flag[1])],
      referenceRange: [{ low: this.quantity(analyte.low, analyte.unit), high: this.quantity(analyte.high, analyte.unit) }],
    };
  }

  imaging(encounterUrl: string, at: number): void {
    const { rng } = this;
    const procedure = rng.pick(IMAGING);
    const studyUid = `2.25.${rng.digits(38)}`;
    const series = Array.from({ length: procedure.series }, (_, s) => {
      const instances = rng.int(2, 4);
      return {
        uid: `${studyUid.slice(0, 40)}.${s + 1}`,
        number: s + 1,
        modality: coding(DICOM_DCM, procedure.modality, procedure.modalityDisplay),
        numberOfInstances: instances,
        bodySite: coding('http://snomed.info/sct', procedure.bodySite.code, procedure.bodySite.display),
        instance: Array.from({ length: instances }, (_, i) => ({
          uid: `${studyUid.slice(0, 40)}.${s + 1}.${i + 1}`,
          sopClass: coding('urn:ietf:rfc:3986', 'urn:oid:1.2.840.10008.5.1.4.1.1.2'),
          number: i + 1,
        })),
      };
    });
    const study: ImagingStudy = {
      resourceType: 'ImagingStudy',
      identifier: [{ system: 'urn:dicom:uid', value: `urn:oid:${studyUid}` }],
      status: 'available',
      modality: [coding(DICOM_DCM, procedure.modality, procedure.modalityDisplay)],
      subject: this.patientRef,
      encounter: ref(encounterUrl),
      started: local(at),
      numberOfSeries: series.length,
      numberOfInstances: series.reduce((n, s) => n + s.numberOfInstances, 0),
      procedureCode: [concept(LOINC, procedure.code, procedure.display)],
      series,
    };
    const studyUrl = this.add(study);
    const report: DiagnosticReport = {
      resourceType: 'DiagnosticReport',
      identifier: [{ system: OID.imagingReportNumber, value: `RIS${rng.digits(10)}` }],
      status: 'final',
      category: [concept(REPORT_CATEGORY, 'RAD', 'Radiology')],
      code: concept(LOINC, procedure.code, procedure.display),
      subject: this.patientRef,
      encounter: ref(encounterUrl),
      effectiveDateTime: local(at),
      issued: new Date(at + rng.int(1, 48) * 3600_000).toISOString(),
      performer: [this.org],
      resultsInterpreter: [this.doctor()],
      imagingStudy: [ref(studyUrl)],
      conclusion: rng.pick(procedure.conclusions),
    };
    this.add(report);
  }
}

function weighted<T extends { weight: number }>(rng: Random, items: readonly T[]): T {
  const total = items.reduce((n, i) => n + i.weight, 0);
  let x = rng.next() * total;
  for (const item of items) {
    x -= item.weight;
    if (x < 0) return item;
  }
  return items[items.length - 1];
}

/** Patient `index`'s whole record as one transaction Bundle. */
export function patientRecord(seed: number, index: number): GeneratedRecord {
  const identity = patientIdentity(seed, index);
  const rng = Random.of(seed, index, 2);
  const b = new RecordBuilder(rng, index, identity, `urn:uuid:${rng.uuid()}`);
  const patientUrl = b.patientRef.reference as string;
  b.entries.push({ fullUrl: patientUrl, resource: b.patient(), request: { method: 'POST', url: 'Patient' } });
  b.add(b.consent());

  const span = CARE_END - CARE_START;
  const outpatient = rng.int(5, 15);
  for (let v = 0; v < outpatient; v++) {
    // Office hours, local time.
    const day = CARE_START + Math.floor(rng.next() * (span / DAY)) * DAY;
    const start = day + rng.int(0, 8 * 60) * 60_000;
    const diagnosis = rng.pick(DIAGNOSES);
    const enc = b.encounter(false, start, start + rng.int(10, 60) * 60_000, diagnosis);
    b.condition(enc, start, diagnosis);
    b.vitals(enc, start + 5 * 60_000);
    if (rng.chance(0.5)) b.labReport(enc, start + 20 * 60_000);
    if (rng.chance(0.1)) b.imaging(enc, start + 30 * 60_000);
  }
  const inpatient = rng.chance(0.4) ? rng.int(1, 2) : 0;
  for (let s = 0; s < inpatient; s++) {
    const admitted = CARE_START + Math.floor(rng.next() * (span / DAY - 20)) * DAY + rng.int(0, 12 * 60) * 60_000;
    const days = rng.int(3, 12);
    const diagnosis = rng.pick(DIAGNOSES);
    const enc = b.encounter(true, admitted, admitted + days * DAY, diagnosis);
    b.condition(enc, admitted, diagnosis);
    b.condition(enc, admitted + DAY, rng.pick(DIAGNOSES));
    for (let d = 0; d < days; d++) b.vitals(enc, admitted + d * DAY + 2 * 3600_000);
    const labs = rng.int(2, 3);
    for (let l = 0; l < labs; l++) b.labReport(enc, admitted + l * 2 * DAY + 3600_000);
    if (rng.chance(0.6)) b.imaging(enc, admitted + DAY);
  }
  const bundle: Bundle = { resourceType: 'Bundle', type: 'transaction', entry: b.entries };
  return { index, identity, bundle, resourceCount: b.entries.length };
}

/**
 * A Patient outside the loaded population (for the CRUD workload): index n of a separate
 * sequence, with its own identity, and no encounters, so it may be deleted.
 */
export function standalonePatient(seed: number, n: number): Patient {
  const index = 50_000_000 + n;
  const rng = Random.of(seed, index, 3);
  return new RecordBuilder(rng, index, patientIdentity(seed, index), 'urn:uuid:unused').patient();
}
