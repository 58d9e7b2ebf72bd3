/**
 * ConceptMaps from national codes to FHIR codes (the proposed maps of national-standards.md)
 * and NamingSystems for every national OID: the identifier namespaces (with the HL7 China
 * community OIDs of the resident ID as aliases) and the code systems.
 */
import type { CodeSystem, ConceptMap, ConceptMapGroup, NamingSystem } from '@medplum/fhirtypes';
import { canonical, cmUrl, CONTACT, CS, HL7, ID, ID_CARD_ALIASES, JURISDICTION, PACK_DATE, PUBLISHER, vsUrl } from './common';
import { r4Display } from './value-sets';

type Equivalence = 'equivalent' | 'wider';

function group(source: string, target: string, pairs: [string, string, Equivalence][]): ConceptMapGroup {
  return {
    source,
    target,
    element: pairs.map(([code, to, equivalence]) => ({ code, target: [{ code: to, display: r4Display(target, to), equivalence }] })),
  };
}

function conceptMap(id: string, name: string, title: string, description: string, source: string, target: string, groups: ConceptMapGroup[]): ConceptMap {
  return {
    ...canonical('ConceptMap', id, cmUrl(id), name, title, 'draft', description),
    sourceCanonical: source,
    targetCanonical: target,
    group: groups,
  } as ConceptMap;
}

function patientTypeGroup(): ConceptMapGroup {
  const mapped = group(CS.patientType, HL7.actCode, [['1', 'AMB', 'equivalent'], ['2', 'EMER', 'equivalent'], ['3', 'IMP', 'equivalent']]);
  const other = { code: '9', target: [{ equivalence: 'unmatched' as const, comment: 'No encounter class corresponds to "other".' }] };
  return { ...mapped, element: [...(mapped.element ?? []), other] };
}

export function packConceptMaps(): ConceptMap[] {
  return [
    conceptMap(
      'gb-t-2261-1-to-administrative-gender', 'SexToAdministrativeGender', 'GB/T 2261.1 性别 → AdministrativeGender',
      'National sex codes to FHIR administrative gender (proposal): 1 male, 2 female, 0 and 9 unknown.',
      vsUrl('gb-t-2261-1'), 'http://hl7.org/fhir/ValueSet/administrative-gender',
      [group(CS.sex, HL7.gender, [['0', 'unknown', 'equivalent'], ['1', 'male', 'equivalent'], ['2', 'female', 'equivalent'], ['9', 'unknown', 'wider']])]
    ),
    conceptMap(
      'cv09-00-404-to-encounter-class', 'PatientTypeToEncounterClass', 'CV09.00.404 患者类型 → Encounter.class',
      'National patient type to the v3 ActCode encounter class (proposal): 1 AMB, 2 EMER, 3 IMP; 9 (other) has no class.',
      vsUrl('cv09-00-404'), 'http://terminology.hl7.org/ValueSet/v3-ActEncounterCode',
      [patientTypeGroup()]
    ),
    conceptMap(
      'gb-t-2261-2-to-v3-marital-status', 'MaritalStatusToV3', 'GB/T 2261.2 婚姻状况 → v3 MaritalStatus',
      'National marital status to HL7 v3 MaritalStatus (proposal): 10 S, 20-23 M, 30 W, 40 D, 90 UNK (NullFlavor).',
      vsUrl('gb-t-2261-2'), 'http://hl7.org/fhir/ValueSet/marital-status',
      [
        group(CS.marital, HL7.maritalStatus, [
          ['10', 'S', 'equivalent'], ['20', 'M', 'equivalent'], ['21', 'M', 'wider'], ['22', 'M', 'wider'],
          ['23', 'M', 'wider'], ['30', 'W', 'equivalent'], ['40', 'D', 'equivalent'],
        ]),
        group(CS.marital, HL7.nullFlavor, [['90', 'UNK', 'equivalent']]),
      ]
    ),
  ];
}

interface NameSource {
  id: string;
  name: string;
  oid: string;
  description: string;
  kind: 'identifier' | 'codesystem';
  /** v2-0203 identifier type. */
  type?: string;
  aliases?: { oid: string; comment: string }[];
}

function namingSystem(source: NameSource): NamingSystem {
  const bare = source.oid.replace(/^urn:oid:/, '');
  return {
    resourceType: 'NamingSystem',
    id: source.id,
    name: source.name,
    status: 'active',
    kind: source.kind,
    date: PACK_DATE,
    publisher: PUBLISHER,
    contact: CONTACT,
    responsible: '国家卫生健康委员会 (National Health Commission)',
    ...(source.type && { type: { coding: [{ system: HL7.v2_0203, code: source.type, display: r4Display(HL7.v2_0203, source.type) }] } }),
    description: source.description,
    jurisdiction: JURISDICTION,
    uniqueId: [
      { type: 'oid', value: bare, preferred: true },
      { type: 'uri', value: `urn:oid:${bare}`, preferred: false },
      ...(source.aliases ?? []).map((a) => ({ type: 'oid' as const, value: a.oid, preferred: false, comment: a.comment })),
    ],
  } as NamingSystem;
}

const IDENTIFIERS: [keyof typeof ID, string, string, string?][] = [
  ['healthRecord', 'HealthRecordNumber', '健康档案编号 (health-record number)'],
  ['idCard', 'ResidentIdentityCardNumber', '居民身份证号 (resident identity card number, GB 11643)', 'NI'],
  ['clinician', 'ClinicianIdentifier', '医务人员标识 (clinician)', 'PRN'],
  ['institution', 'HealthcareInstitutionIdentifier', '医疗机构标识 (healthcare institution)', 'XX'],
  ['outpatient', 'OutpatientNumber', '门(急)诊号 (outpatient/emergency number)', 'VN'],
  ['inpatient', 'InpatientNumber', '住院号 (inpatient number)', 'VN'],
  ['mrn', 'MedicalRecordNumber', '病案号 (medical record number)', 'MR'],
  ['specimen', 'SpecimenNumber', '标本编号 (specimen number)', 'SID'],
  ['insuranceCard', 'MedicalInsuranceCardNumber', '医保卡号 (medical-insurance card number)', 'SN'],
  ['healthCard', 'HealthCardNumber', '健康卡号 (health card number; the electronic health card is told apart by Identifier.type)', 'HC'],
  ['orderForm', 'ElectronicOrderFormNumber', '电子申请单编号 (electronic order form number)', 'PLAC'],
  ['examReport', 'ExaminationReportNumber', '检查报告单号 (examination/imaging report number)', 'FILL'],
  ['labReport', 'LaboratoryReportNumber', '检验报告单号 (laboratory report number)', 'FILL'],
  ['consentForm', 'InformedConsentFormNumber', '知情同意书编号 (informed-consent form number)'],
];

const kebab = (s: string) => s.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase();

export function packNamingSystems(codeSystems: CodeSystem[]): NamingSystem[] {
  const identifiers = IDENTIFIERS.map(([key, name, description, type]) =>
    namingSystem({
      id: `cn-id-${kebab(key)}`,
      name,
      oid: ID[key],
      kind: 'identifier',
      type,
      description: `${description}: identifier namespace ${ID[key]}.`,
      aliases: key === 'idCard' ? Object.values(ID_CARD_ALIASES).map((a) => ({ ...a })) : undefined,
    })
  );
  const systems = codeSystems.map((cs) =>
    namingSystem({ id: `cn-cs-${cs.id}`, name: cs.name as string, oid: cs.url as string, kind: 'codesystem', description: `${cs.title}: code system ${cs.url}.` })
  );
  return [...identifiers, ...systems];
}
