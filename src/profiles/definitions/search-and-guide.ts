/**
 * SearchParameters that make the pack's extensions searchable, and the ImplementationGuide
 * that lists the pack and says which profile every resource of a type must meet when the
 * national pack is required (ImplementationGuide.global).
 */
import type { ImplementationGuide, Resource, SearchParameter } from '@medplum/fhirtypes';
import { canonical, CANONICAL_BASE, sdUrl, spUrl } from './common';
import { EXT } from './extensions';

interface ParamSource {
  id: string;
  code: string;
  name: string;
  description: string;
  base: string[];
  /** The FHIRPath for one base type (Type is replaced); unioned over the bases. */
  path: (type: string) => string;
}

function searchParameter(source: ParamSource): SearchParameter {
  return {
    ...canonical('SearchParameter', source.id, spUrl(source.id), source.name, undefined, 'active', source.description),
    code: source.code,
    base: source.base,
    type: 'token',
    expression: source.base.map(source.path).join(' | '),
    xpathUsage: 'normal',
  } as SearchParameter;
}

const extensionValue = (url: string) => `.extension.where(url = '${url}').value.ofType(Coding)`;

export function packSearchParameters(): SearchParameter[] {
  return [
    searchParameter({
      id: 'cn-patient-ethnicity', code: 'ethnicity', name: 'CNPatientEthnicity',
      description: 'The ethnic group of the patient (GB 3304 code of the cn-ethnicity extension), e.g. ethnicity=urn:oid:2.16.156.10011.2.3.3.3|01.',
      base: ['Patient'], path: (t) => `${t}${extensionValue(EXT.ethnicity)}`,
    }),
    searchParameter({
      id: 'cn-patient-nationality', code: 'nationality', name: 'CNPatientNationality',
      description: 'The nationality of the patient (GB/T 2659 code of the cn-nationality extension), e.g. nationality=urn:oid:2.16.156.10011.2.3.3.1|156.',
      base: ['Patient'], path: (t) => `${t}${extensionValue(EXT.nationality)}`,
    }),
    searchParameter({
      id: 'cn-patient-education', code: 'education', name: 'CNPatientEducation',
      description: 'The education level of the patient (GB/T 4658 code of the cn-education extension).',
      base: ['Patient'], path: (t) => `${t}${extensionValue(EXT.education)}`,
    }),
    searchParameter({
      id: 'cn-patient-marital-status', code: 'marital-status', name: 'CNPatientMaritalStatus',
      description: 'The marital status of the patient (any of its codings: GB/T 2261.2 or v3 MaritalStatus).',
      base: ['Patient'], path: (t) => `${t}.maritalStatus`,
    }),
    searchParameter({
      id: 'cn-address-division', code: 'address-division', name: 'CNAddressDivision',
      description:
        'The GB/T 2260 division code of an address (cn-address-division extension), e.g. address-division=urn:oid:2.16.156.10011.2.3.3.2|110102. ' +
        'Exact codes only: a province or city code does not find the counties in it.',
      base: ['Patient', 'Person', 'Practitioner', 'RelatedPerson', 'Organization', 'Location'],
      path: (t) => `${t}.address${extensionValue(EXT.division)}`,
    }),
  ];
}

/** The profile each resource of a type must meet when the national pack is required. */
export const REQUIRED_PROFILES: Record<string, string> = {
  Patient: sdUrl('cn-patient'),
  Encounter: sdUrl('cn-encounter'),
  DiagnosticReport: sdUrl('cn-diagnostic-report'),
  ImagingStudy: sdUrl('cn-imaging-study'),
  Consent: sdUrl('cn-consent'),
  AuditEvent: sdUrl('cn-audit-event'),
  Provenance: sdUrl('cn-signature-provenance'),
};

const describe = (r: Resource): string =>
  ((r as { title?: string }).title ?? (r as { name?: string }).name ?? r.id) as string;

export function implementationGuide(resources: Resource[]): ImplementationGuide {
  const base = canonical(
    'ImplementationGuide',
    'cn-core',
    `${CANONICAL_BASE}/ImplementationGuide/cn-core`,
    'CNCore',
    'CN Core (national profile pack)',
    'draft',
    'Profiles, extensions, code systems, value sets, concept maps, naming systems and search parameters for health records ' +
      'exchanged in China, built on the national OIDs and code tables (WS 363/364, WS/T 500). `global` names the profile every ' +
      'resource of a type must meet when the pack is required.'
  );
  return {
    ...base,
    packageId: 'dev.fhir-server.cn.core',
    license: 'MIT',
    fhirVersion: ['4.0.1'],
    global: Object.entries(REQUIRED_PROFILES).map(([type, profile]) => ({ type, profile })),
    definition: {
      resource: resources.map((r) => ({
        reference: { reference: `${r.resourceType}/${r.id}` },
        name: describe(r),
        ...((r as { description?: string }).description && { description: (r as { description: string }).description }),
        exampleBoolean: false,
      })),
    },
  } as ImplementationGuide;
}
