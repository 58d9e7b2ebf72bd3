/**
 * What every resource of the national pack shares: the canonical base, version, publisher,
 * jurisdiction, the national OIDs, and small builders that give each resource the same
 * metadata in the same key order (the files are generated and compared byte for byte).
 */
import type {
  CodeableConcept,
  ElementDefinition,
  StructureDefinition,
  StructureDefinitionContext,
} from '@medplum/fhirtypes';
import { CANONICAL_BASE } from '../../fhir/canonical';

export { CANONICAL_BASE };
export const PACK_VERSION = '0.1.0';
/** Fixed, so that regenerating gives identical files; bump with the version. */
export const PACK_DATE = '2026-12-01';
export const PUBLISHER = 'fhir-server project';
export const JURISDICTION: CodeableConcept[] = [{ coding: [{ system: 'urn:iso:std:iso:3166', code: 'CN', display: 'China' }] }];
export const CONTACT = [{ name: 'fhir-server project', telecom: [{ system: 'url' as const, value: CANONICAL_BASE }] }];

export const sdUrl = (id: string): string => `${CANONICAL_BASE}/StructureDefinition/${id}`;
export const vsUrl = (id: string): string => `${CANONICAL_BASE}/ValueSet/${id}`;
export const cmUrl = (id: string): string => `${CANONICAL_BASE}/ConceptMap/${id}`;
export const spUrl = (id: string): string => `${CANONICAL_BASE}/SearchParameter/${id}`;
export const oid = (value: string): string => `urn:oid:${value}`;
export const CORE = 'http://hl7.org/fhir/StructureDefinition/';

/** Identifier namespaces (national-standards.md, "Identifier namespaces"). */
export const ID = {
  healthRecord: oid('2.16.156.10011.1.2'),
  idCard: oid('2.16.156.10011.1.3'),
  clinician: oid('2.16.156.10011.1.4'),
  institution: oid('2.16.156.10011.1.5'),
  outpatient: oid('2.16.156.10011.1.11'),
  inpatient: oid('2.16.156.10011.1.12'),
  mrn: oid('2.16.156.10011.1.13'),
  specimen: oid('2.16.156.10011.1.14'),
  insuranceCard: oid('2.16.156.10011.1.15'),
  healthCard: oid('2.16.156.10011.1.19'),
  orderForm: oid('2.16.156.10011.1.24'),
  examReport: oid('2.16.156.10011.1.32'),
  labReport: oid('2.16.156.10011.1.33'),
  consentForm: oid('2.16.156.10011.1.34'),
} as const;

/**
 * Aliases of the resident identity number namespace (ID.idCard), listed by its NamingSystem:
 * the HL7 China community IG's identity card and social security card OIDs ("by law the
 * social-security number is the citizen ID number", national-standards.md). A number under
 * them is the same GB 11643 number and is checked the same way.
 */
export const ID_CARD_ALIASES = {
  idCardCommunity: { oid: '2.16.840.1.113883.2.23.1.19.1', comment: 'HL7 China community IG: identity card number' },
  socialSecurityCard: { oid: '2.16.840.1.113883.2.23.1.19.2', comment: 'HL7 China community IG: social security card number, which by law is the citizen ID number' },
} as const;

/** Code systems (national-standards.md, "Code systems"); their canonical URL is the urn:oid form. */
export const CS = {
  country: oid('2.16.156.10011.2.3.3.1'),
  division: oid('2.16.156.10011.2.3.3.2'),
  ethnicity: oid('2.16.156.10011.2.3.3.3'),
  sex: oid('2.16.156.10011.2.3.3.4'),
  marital: oid('2.16.156.10011.2.3.3.5'),
  education: oid('2.16.156.10011.2.3.3.6'),
  familyRelationship: oid('2.16.156.10011.2.3.3.8'),
  icd10: oid('2.16.156.10011.2.3.3.11'),
  icd9cm3: oid('2.16.156.10011.2.3.3.12'),
  idDocument: oid('2.16.156.10011.2.3.1.1'),
  patientType: oid('2.16.156.10011.2.3.1.271'),
  abo: oid('2.16.156.10011.2.3.1.85'),
  rh: oid('2.16.156.10011.2.3.1.250'),
  documentType: oid('2.16.156.10011.2.4'),
} as const;

export const HL7 = {
  v2_0203: 'http://terminology.hl7.org/CodeSystem/v2-0203',
  v2_0074: 'http://terminology.hl7.org/CodeSystem/v2-0074',
  actCode: 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
  maritalStatus: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus',
  nullFlavor: 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor',
  dataOperation: 'http://terminology.hl7.org/CodeSystem/v3-DataOperation',
  gender: 'http://hl7.org/fhir/administrative-gender',
  consentScope: 'http://terminology.hl7.org/CodeSystem/consentscope',
  provenanceParticipant: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type',
  objectRole: 'http://terminology.hl7.org/CodeSystem/object-role',
  entityType: 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
  dicom: 'http://dicom.nema.org/resources/ontology/DCM',
  signatureType: 'urn:iso-astm:E1762-95:2013',
  resourceTypes: 'http://hl7.org/fhir/resource-types',
} as const;

/** The FHIRPath of a DICOM UID (PS3.5 9.1: dot-separated numbers without leading zeros, at most 64 characters). */
export const DICOM_UID = '^[0-2]([.](0|[1-9][0-9]*))+$';

/** Metadata every canonical resource of the pack carries, in a fixed key order. */
export function canonical(resourceType: string, id: string, url: string, name: string, title: string | undefined, status: string, description: string) {
  return {
    resourceType,
    id,
    url,
    version: PACK_VERSION,
    name,
    ...(title !== undefined && { title }),
    status,
    experimental: false,
    date: PACK_DATE,
    publisher: PUBLISHER,
    contact: CONTACT,
    description,
    jurisdiction: JURISDICTION,
  };
}

/** A differential element as written in the sources: the path follows from the id. */
export type DiffElement = Omit<ElementDefinition, 'path'> & { path?: string };

export interface ProfileSource {
  id: string;
  name: string;
  title: string;
  description: string;
  /** The resource type, or Extension. */
  type: string;
  /** Default: the R4 base definition of the type. */
  baseDefinition?: string;
  /** Extensions only: where they may appear. */
  context?: StructureDefinitionContext[];
  status?: 'draft' | 'active';
  purpose?: string;
  elements: DiffElement[];
}

/** A StructureDefinition with its differential; the snapshot is generated (see ../build.ts). */
export function structureDefinition(source: ProfileSource): StructureDefinition {
  const isExtension = source.type === 'Extension';
  return {
    ...canonical('StructureDefinition', source.id, sdUrl(source.id), source.name, source.title, source.status ?? 'draft', source.description),
    ...(source.purpose && { purpose: source.purpose }),
    fhirVersion: '4.0.1',
    kind: isExtension ? 'complex-type' : 'resource',
    abstract: false,
    ...(source.context && { context: source.context }),
    type: source.type,
    baseDefinition: source.baseDefinition ?? CORE + source.type,
    derivation: 'constraint',
    differential: {
      element: source.elements.map(({ id, path, ...rest }) => ({ id, path: path ?? pathOf(id as string), ...rest })),
    },
  } as StructureDefinition;
}

function pathOf(id: string): string {
  return id
    .split('.')
    .map((s) => s.split(':')[0])
    .join('.');
}

/** An invariant of the pack (error unless said otherwise). */
export function invariant(key: string, human: string, expression: string, severity: 'error' | 'warning' = 'error') {
  return { key, severity, human, expression };
}

/** Slicing of a repeating element by the value of one child (typically `system`). */
export function slicedBy(path: string, description: string, type: 'value' | 'pattern' = 'value') {
  return { discriminator: [{ type, path }], description, ordered: false, rules: 'open' as const };
}
