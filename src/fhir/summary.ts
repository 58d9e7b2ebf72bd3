/**
 * _summary and _elements: the subsets of a resource a client may ask for. A subsetted
 * resource is tagged SUBSETTED, as the spec requires, so no one mistakes it for the whole.
 */
import { tryGetDataType } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { mandatoryElements, summaryElements } from './definitions';
import { errors } from './outcome';

export type SummaryMode = 'true' | 'false' | 'text' | 'data' | 'count';

const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

export function parseSummary(value: string | undefined): SummaryMode | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (!['true', 'false', 'text', 'data', 'count'].includes(value)) {
    throw errors.badRequest(`Invalid _summary value "${value}": expected true, false, text, data or count`, '_summary');
  }
  return value as SummaryMode;
}

export function parseElements(value: string | undefined): string[] | undefined {
  if (value === undefined) {
    return undefined;
  }
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    // "Patient.name" is accepted as well as "name".
    .map((s) => s.replace(/^[A-Z][A-Za-z]+\./, ''));
  for (const name of names) {
    if (!/^[a-z][A-Za-z0-9]*$/.test(name)) {
      throw errors.badRequest(`Invalid element name "${name}" in _elements`, '_elements');
    }
  }
  return names;
}

/** The element name a JSON key belongs to: valueQuantity -> value, _birthDate -> birthDate. */
function elementNameOf(resourceType: string, key: string): string {
  const name = key.startsWith('_') ? key.slice(1) : key;
  const schema = tryGetDataType(resourceType);
  if (!schema || schema.elements[name]) {
    return name;
  }
  for (const element of Object.keys(schema.elements)) {
    if (element.endsWith('[x]')) {
      const prefix = element.slice(0, -3);
      if (name.startsWith(prefix) && /^[A-Z]/.test(name.slice(prefix.length))) {
        return prefix;
      }
    }
  }
  return name;
}

function keep(resource: Resource, predicate: (element: string) => boolean): Resource {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(resource)) {
    if (key === 'resourceType' || key === 'id' || key === 'meta' || predicate(elementNameOf(resource.resourceType, key))) {
      result[key] = value;
    }
  }
  return markSubsetted(result as unknown as Resource);
}

function markSubsetted(resource: Resource): Resource {
  const tags = (resource.meta?.tag ?? []).filter((t) => !(t.system === SUBSETTED.system && t.code === SUBSETTED.code));
  return { ...resource, meta: { ...resource.meta, tag: [...tags, SUBSETTED] } };
}

/** Whether subsetResource returns the resource whole with these parameters. */
export function keepsWhole(summary?: SummaryMode, elements?: string[]): boolean {
  return (summary === undefined || summary === 'false') && !(elements && elements.length);
}

/** Applies _summary (true | text | data | false) and/or _elements to one resource. */
export function subsetResource(resource: Resource, summary?: SummaryMode, elements?: string[]): Resource {
  if (elements && elements.length && (summary === undefined || summary === 'false')) {
    const wanted = new Set(elements);
    const mandatory = mandatoryElements(resource.resourceType);
    return keep(resource, (name) => wanted.has(name) || mandatory.has(name));
  }
  switch (summary) {
    case 'true': {
      const names = summaryElements(resource.resourceType);
      return keep(resource, (name) => names.has(name));
    }
    case 'text': {
      const mandatory = mandatoryElements(resource.resourceType);
      return keep(resource, (name) => name === 'text' || mandatory.has(name));
    }
    case 'data':
      return keep(resource, (name) => name !== 'text');
    default:
      return resource;
  }
}
