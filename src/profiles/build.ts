/**
 * Builds the whole national pack in memory from its sources (src/profiles/definitions):
 * terminology, extensions and profiles with generated snapshots, search parameters, the
 * ImplementationGuide and the required-profiles manifest. `npm run profiles` writes the result
 * to profiles/; the staleness test compares it with what is committed there. Deterministic:
 * no clock, no randomness, fixed ordering.
 */
import type { Resource, StructureDefinition } from '@medplum/fhirtypes';
import { CORE } from './definitions/common';
import { nationalCodeSystems } from './definitions/code-systems';
import { countryCodeSystem, divisionCodeSystem, provinceCodes } from './definitions/generated-tables';
import { packValueSets } from './definitions/value-sets';
import { packConceptMaps, packNamingSystems } from './definitions/maps-and-names';
import { packExtensions } from './definitions/extensions';
import { patientProfile } from './definitions/patient';
import { diagnosticReportProfiles, encounterProfile, imagingStudyProfile } from './definitions/clinical';
import { auditEventProfile, consentProfile, provenanceProfile } from './definitions/governance';
import { implementationGuide, packSearchParameters, REQUIRED_PROFILES } from './definitions/search-and-guide';
import { definitionResolver, r4Definitions } from './resolver';
import { withSnapshot } from './snapshot';

export const IMPLEMENTATION_GUIDE_FILE = 'ImplementationGuide-cn-core.json';
export const REQUIRED_FILE = 'required.json';

/** The manifest of required profiles (the same as ImplementationGuide.global, as a type -> URLs map). */
export interface RequiredProfiles {
  description: string;
  implementationGuide: string;
  profiles: Record<string, string[]>;
}

export interface Pack {
  /** Path relative to profiles/ -> content. */
  files: Map<string, Resource | RequiredProfiles>;
  resources: Resource[];
}

/** Profiles with snapshots, each generated once its base and the extensions it uses have theirs. */
function withSnapshots(definitions: StructureDefinition[]): StructureDefinition[] {
  const done = new Map<string, StructureDefinition>();
  const resolve = definitionResolver();
  const lookup = (url: string) => done.get(url) ?? resolve(url);
  const pending = [...definitions];
  while (pending.length) {
    const index = pending.findIndex((sd) => {
      const base = sd.baseDefinition as string;
      const uses = (sd.differential?.element ?? []).flatMap((e) => (e.type ?? []).flatMap((t) => t.profile ?? []));
      return [base, ...uses].every((url) => url.startsWith(CORE) || done.has(url) || !pending.some((p) => p.url === url));
    });
    if (index < 0) throw new Error(`circular profile dependencies among ${pending.map((p) => p.url).join(', ')}`);
    const [sd] = pending.splice(index, 1);
    const base = lookup(sd.baseDefinition as string) as StructureDefinition;
    done.set(sd.url as string, { ...withSnapshot(sd, lookup), mapping: base.mapping });
  }
  return definitions.map((sd) => done.get(sd.url as string) as StructureDefinition);
}

const fileOf = (r: Resource) => `${r.resourceType}/${r.id}.json`;

export function buildPack(): Pack {
  r4Definitions();
  const divisions = divisionCodeSystem();
  const codeSystems = [...nationalCodeSystems(), divisions, countryCodeSystem()].sort((a, b) => (a.id as string).localeCompare(b.id as string));
  const structureDefinitions = withSnapshots([
    ...packExtensions(),
    patientProfile(provinceCodes(divisions)),
    encounterProfile(),
    ...diagnosticReportProfiles(),
    imagingStudyProfile(),
    consentProfile(),
    provenanceProfile(),
    auditEventProfile(),
  ]);
  const resources: Resource[] = [
    ...structureDefinitions,
    ...codeSystems,
    ...packValueSets(codeSystems),
    ...packConceptMaps(),
    ...packNamingSystems(codeSystems),
    ...packSearchParameters(),
  ];
  const guide = implementationGuide(resources);
  const files = new Map<string, Resource | RequiredProfiles>(resources.map((r) => [fileOf(r), r]));
  if (files.size !== resources.length) throw new Error('two resources of the pack have the same type and id');
  files.set(IMPLEMENTATION_GUIDE_FILE, guide);
  files.set(REQUIRED_FILE, {
    description:
      'The profile every resource of a type must meet when the national pack is required (REQUIRED_PROFILES=national). ' +
      'Generated from ImplementationGuide.global of ImplementationGuide-cn-core.json by `npm run profiles`.',
    implementationGuide: guide.url as string,
    profiles: Object.fromEntries(Object.entries(REQUIRED_PROFILES).map(([type, url]) => [type, [url]])),
  });
  return { files, resources: [...resources, guide] };
}

/** The text of a pack file as written to disk. */
export function serialize(content: unknown): string {
  return JSON.stringify(content, null, 2) + '\n';
}
