/**
 * Which patients' compartments a resource belongs to, by the R4 Patient CompartmentDefinition:
 * a resource is in Patient X's compartment when one of the listed search parameters of its
 * type references Patient/X. Computed at write time and stored with the row, so access
 * control and $everything filter in SQL.
 */
import { toTypedValue } from '@medplum/core';
import type { Reference, Resource } from '@medplum/fhirtypes';
import { patientCompartmentParams, searchParametersOf } from './definitions';
import { compileForType, type CompiledExpression, type Typed } from './fhirpath';

/** Compiled once per type: the expressions of its compartment parameters. */
const compiled = new Map<string, CompiledExpression[]>();

function compartmentExpressions(resourceType: string): CompiledExpression[] {
  let expressions = compiled.get(resourceType);
  if (!expressions) {
    const searchParams = searchParametersOf(resourceType);
    expressions = patientCompartmentParams(resourceType)
      .map((code) => searchParams[code]?.expression)
      .filter((e): e is string => !!e)
      .map((e) => compileForType(resourceType, e));
    compiled.set(resourceType, expressions);
  }
  return expressions;
}

export function patientCompartments(resource: Resource, baseUrl: string): string[] {
  if (resource.resourceType === 'Patient') {
    return resource.id ? [resource.id] : [];
  }
  const expressions = compartmentExpressions(resource.resourceType);
  if (expressions.length === 0) {
    return [];
  }
  const ids = new Set<string>();
  const typed = [toTypedValue(resource) as Typed];
  for (const expression of expressions) {
    for (const value of expression.eval({ variables: {} }, typed)) {
      const id = patientIdOf(value.value as Reference | string | undefined, baseUrl);
      if (id) {
        ids.add(id);
      }
    }
  }
  return [...ids].sort();
}

/** The Patient id a reference points to, when it points to a Patient on this server. */
export function patientIdOf(value: Reference | string | undefined, baseUrl: string): string | undefined {
  const reference = typeof value === 'string' ? value : value?.reference;
  if (!reference) {
    return undefined;
  }
  let local = reference;
  if (/^https?:\/\//.test(reference)) {
    if (!reference.startsWith(baseUrl + '/')) {
      return undefined;
    }
    local = reference.slice(baseUrl.length + 1);
  }
  const match = /^Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(local);
  return match?.[1];
}
