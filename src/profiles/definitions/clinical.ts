/**
 * CN Encounter, the diagnostic report profiles (a common CN DiagnosticReport with CN Lab
 * Report and CN Imaging Report on top of it) and CN ImagingStudy.
 *
 * Rules that depend on other elements (patient type <-> class, the number an encounter of a
 * class needs, the report number a category needs) are invariants on the resource; rules
 * inside a repeating backbone element are invariants on that element, so they hold for every
 * repetition.
 */
import type { StructureDefinition } from '@medplum/fhirtypes';
import { CORE, CS, DICOM_UID, type DiffElement, HL7, ID, invariant, sdUrl, slicedBy, structureDefinition, vsUrl } from './common';
import { IMAGING_SECTIONS, LAB_SECTIONS } from './value-sets';

const list = (codes: string[]) => `(${codes.map((c) => `'${c}'`).join(' | ')})`;
const INPATIENT = ['IMP', 'ACUTE', 'NONAC'];

function identifierSlice(resource: string, name: string, system: string, short: string, min = 0): DiffElement[] {
  const id = `${resource}.identifier:${name}`;
  return [
    { id, sliceName: name, short, min, max: '1', mustSupport: true },
    { id: `${id}.system`, min: 1, fixedUri: system },
    { id: `${id}.value`, min: 1 },
  ];
}

export const ENCOUNTER_INVARIANTS = {
  patientType: invariant(
    'cn-enc-1',
    'The national patient type agrees with the class: 1 (outpatient) AMB, 2 (emergency) EMER, 3 (inpatient) IMP',
    `type.coding.where(system = '${CS.patientType}').all(` +
      `(code = '1' implies %resource.class.where(system = '${HL7.actCode}' and code = 'AMB').exists()) and ` +
      `(code = '2' implies %resource.class.where(system = '${HL7.actCode}' and code = 'EMER').exists()) and ` +
      `(code = '3' implies %resource.class.where(system = '${HL7.actCode}' and code in ${list(INPATIENT)}).exists()))`
  ),
  inpatientNumber: invariant(
    'cn-enc-2',
    'An inpatient encounter (class IMP) has an inpatient number (2.16.156.10011.1.12)',
    `class.where(system = '${HL7.actCode}' and code in ${list(INPATIENT)}).exists() implies identifier.where(system = '${ID.inpatient}' and value.exists()).exists()`
  ),
  outpatientNumber: invariant(
    'cn-enc-3',
    'An outpatient or emergency encounter (class AMB or EMER) has an outpatient/emergency number (2.16.156.10011.1.11)',
    `class.where(system = '${HL7.actCode}' and (code = 'AMB' or code = 'EMER')).exists() implies identifier.where(system = '${ID.outpatient}' and value.exists()).exists()`
  ),
};

export function encounterProfile(): StructureDefinition {
  const i = ENCOUNTER_INVARIANTS;
  return structureDefinition({
    id: 'cn-encounter',
    name: 'CNEncounter',
    title: 'CN Encounter',
    description:
      'A visit: its national patient type (CV09.00.404) agrees with its class (1 AMB, 2 EMER, 3 IMP); outpatient and emergency ' +
      'visits carry their outpatient/emergency number, inpatient stays their inpatient number; the period is required (it ' +
      'decides how long the record is kept).',
    type: 'Encounter',
    elements: [
      { id: 'Encounter', constraint: [i.patientType, i.inpatientNumber, i.outpatientNumber] },
      { id: 'Encounter.identifier', slicing: slicedBy('system', 'By namespace: outpatient/emergency and inpatient numbers'), mustSupport: true },
      ...identifierSlice('Encounter', 'outpatientNumber', ID.outpatient, '门(急)诊号 (outpatient/emergency number)'),
      ...identifierSlice('Encounter', 'inpatientNumber', ID.inpatient, '住院号 (inpatient number)'),
      { id: 'Encounter.class', mustSupport: true },
      { id: 'Encounter.type', slicing: slicedBy('$this', 'The national patient type, next to other types', 'pattern') },
      {
        id: 'Encounter.type:patientType',
        sliceName: 'patientType',
        short: '患者类型 (CV09.00.404)',
        min: 0,
        max: '1',
        patternCodeableConcept: { coding: [{ system: CS.patientType }] },
        binding: { strength: 'required', description: 'National patient type', valueSet: vsUrl('cv09-00-404') },
        mustSupport: true,
      },
      { id: 'Encounter.subject', min: 1, type: [{ code: 'Reference', targetProfile: [CORE + 'Patient'] }] },
      { id: 'Encounter.period', min: 1, mustSupport: true },
      { id: 'Encounter.period.start', min: 1 },
    ],
  });
}

const sectionsOf = (codes: string[]) => `category.coding.where(system = '${HL7.v2_0074}' and code in ${list(codes)}).exists()`;

export const REPORT_INVARIANTS = {
  performerOrganization: invariant(
    'cn-dr-1',
    'A performer is an Organization (the institution that stands behind the recognised result)',
    // Named as institutions are named in national data too: by their national institution code
    // (logical reference in the 2.16.156.10011.1.5 namespace), or contained in the report.
    "performer.where(type = 'Organization' or reference.matches('(^|/)Organization/[A-Za-z0-9.-]{1,64}(/_history/[A-Za-z0-9.-]{1,64})?$') " +
      `or identifier.system = '${ID.institution}' ` +
      "or (reference.startsWith('#') and (%resource.contained.ofType(Organization).id contains reference.substring(1)))).exists()"
  ),
  labNumber: invariant(
    'cn-dr-2',
    'A laboratory report has a laboratory report number (2.16.156.10011.1.33)',
    `${sectionsOf(LAB_SECTIONS)} implies identifier.where(system = '${ID.labReport}' and value.exists()).exists()`
  ),
  examNumber: invariant(
    'cn-dr-3',
    'An examination (imaging) report has an examination report number (2.16.156.10011.1.32)',
    `(${sectionsOf(IMAGING_SECTIONS)} or imagingStudy.exists()) implies identifier.where(system = '${ID.examReport}' and value.exists()).exists()`
  ),
};

export function diagnosticReportProfiles(): StructureDefinition[] {
  const i = REPORT_INVARIANTS;
  const common = structureDefinition({
    id: 'cn-diagnostic-report',
    name: 'CNDiagnosticReport',
    title: 'CN DiagnosticReport',
    description:
      'What every diagnostic report shares: the performing organization, the report number of its kind (laboratory ' +
      '2.16.156.10011.1.33, examination 2.16.156.10011.1.32), and results as Observations kept apart from the conclusion ' +
      '(the 2022 measures on mutual recognition recognise the results, not the conclusion).',
    type: 'DiagnosticReport',
    elements: [
      { id: 'DiagnosticReport', constraint: [i.performerOrganization, i.labNumber, i.examNumber] },
      { id: 'DiagnosticReport.identifier', slicing: slicedBy('system', 'By namespace: laboratory and examination report numbers'), mustSupport: true },
      ...identifierSlice('DiagnosticReport', 'labReportNumber', ID.labReport, '检验报告单号 (laboratory report number)'),
      ...identifierSlice('DiagnosticReport', 'examReportNumber', ID.examReport, '检查报告单号 (examination report number)'),
      { id: 'DiagnosticReport.category', min: 1, mustSupport: true },
      { id: 'DiagnosticReport.subject', min: 1, type: [{ code: 'Reference', targetProfile: [CORE + 'Patient'] }] },
      { id: 'DiagnosticReport.performer', min: 1, mustSupport: true },
      {
        id: 'DiagnosticReport.result',
        comment: 'The results themselves, as Observations (LOINC codes preferred): these are what other institutions recognise.',
        mustSupport: true,
      },
      { id: 'DiagnosticReport.conclusion', comment: "The physician's conclusion: not part of the mutually recognised results." },
    ],
  });
  const categorySlice = (resource: string, name: string, valueSet: string, short: string): DiffElement[] => [
    { id: `${resource}.category`, slicing: slicedBy('$this', 'The diagnostic service section that makes the kind of report', 'pattern') },
    {
      id: `${resource}.category:${name}`,
      sliceName: name,
      short,
      min: 1,
      patternCodeableConcept: { coding: [{ system: HL7.v2_0074 }] },
      binding: { strength: 'required', description: short, valueSet },
    },
  ];
  const lab = structureDefinition({
    id: 'cn-lab-report',
    name: 'CNLabReport',
    title: 'CN Lab Report',
    description: 'A laboratory report (WS/T 500 C0007): laboratory section, laboratory report number, results as Observations.',
    type: 'DiagnosticReport',
    baseDefinition: sdUrl('cn-diagnostic-report'),
    elements: [
      ...categorySlice('DiagnosticReport', 'laboratory', vsUrl('cn-lab-report-category'), '检验 (laboratory section)'),
      { id: 'DiagnosticReport.identifier', min: 1 },
      { id: 'DiagnosticReport.identifier:labReportNumber', min: 1 },
      { id: 'DiagnosticReport.specimen', mustSupport: true },
      { id: 'DiagnosticReport.result', min: 1 },
    ],
  });
  const imaging = structureDefinition({
    id: 'cn-imaging-report',
    name: 'CNImagingReport',
    title: 'CN Imaging Report',
    description: 'An examination (imaging) report (WS/T 500 C0006): imaging section, examination report number, the ImagingStudy.',
    type: 'DiagnosticReport',
    baseDefinition: sdUrl('cn-diagnostic-report'),
    elements: [
      ...categorySlice('DiagnosticReport', 'imaging', vsUrl('cn-imaging-report-category'), '检查 (imaging section)'),
      { id: 'DiagnosticReport.identifier', min: 1 },
      { id: 'DiagnosticReport.identifier:examReportNumber', min: 1 },
      { id: 'DiagnosticReport.imagingStudy', mustSupport: true },
    ],
  });
  return [common, lab, imaging];
}

export const IMAGING_INVARIANTS = {
  studyUid: invariant(
    'cn-is-1',
    'A DICOM study instance UID identifier is urn:oid: followed by a DICOM UID (digits and dots, no leading zeros, at most 64 characters)',
    `system = 'urn:dicom:uid' implies (value.startsWith('urn:oid:') and value.substring(8).matches('${DICOM_UID}') and value.length() <= 72)`
  ),
  seriesUid: invariant('cn-is-2', 'A series UID is a DICOM UID', `uid.matches('${DICOM_UID}') and uid.length() <= 64`),
  instanceUid: invariant('cn-is-3', 'Every instance UID is a DICOM UID', `instance.all(uid.matches('${DICOM_UID}') and uid.length() <= 64)`),
  dicomModality: invariant(
    'cn-is-4',
    'Modalities are DICOM codes (http://dicom.nema.org/resources/ontology/DCM)',
    `modality.all(system = '${HL7.dicom}') and series.modality.all(system = '${HL7.dicom}')`
  ),
};

export function imagingStudyProfile(): StructureDefinition {
  const i = IMAGING_INVARIANTS;
  const modality = { strength: 'extensible' as const, description: 'DICOM acquisition modality (CID 29)', valueSet: vsUrl('cn-dicom-modality') };
  return structureDefinition({
    id: 'cn-imaging-study',
    name: 'CNImagingStudy',
    title: 'CN ImagingStudy',
    description:
      'An imaging study identified by its DICOM study instance UID (system urn:dicom:uid, value urn:oid:<UID>), with DICOM ' +
      'modalities and well-formed series and instance UIDs.',
    type: 'ImagingStudy',
    elements: [
      { id: 'ImagingStudy', constraint: [i.dicomModality] },
      { id: 'ImagingStudy.identifier', min: 1, slicing: slicedBy('system', 'The DICOM study instance UID, next to other identifiers'), constraint: [i.studyUid] },
      ...identifierSlice('ImagingStudy', 'studyInstanceUid', 'urn:dicom:uid', 'DICOM Study Instance UID (0020,000D)', 1),
      { id: 'ImagingStudy.modality', min: 1, binding: modality, mustSupport: true },
      { id: 'ImagingStudy.subject', type: [{ code: 'Reference', targetProfile: [CORE + 'Patient'] }] },
      { id: 'ImagingStudy.started', mustSupport: true },
      { id: 'ImagingStudy.series', constraint: [i.seriesUid, i.instanceUid], mustSupport: true },
      { id: 'ImagingStudy.series.modality', binding: modality },
    ],
  });
}
