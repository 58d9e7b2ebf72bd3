/**
 * _summary and _elements: the subsets of a resource a client may ask for. A subsetted
 * resource is tagged SUBSETTED, as the spec requires, so no one mistakes it for the whole.
 */
import { tryGetDataType } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { baseStructureDefinition, mandatoryElements, summaryElements } from './definitions';
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

/**
 * The backbone elements of a type's base definition (paths with child elements), each with the
 * names of its summary children (isSummary in the StructureDefinition snapshot). Built once
 * per type. A contentReference (CapabilityStatement.rest.operation is defined as
 * #CapabilityStatement.rest.resource.operation) points at the element it reuses.
 */
interface Backbones {
  summary: Map<string, Set<string>>;
  references: Map<string, string>;
}
const backbonesByType = new Map<string, Backbones>();

function backbonesOf(resourceType: string): Backbones {
  let found = backbonesByType.get(resourceType);
  if (found) return found;
  found = { summary: new Map(), references: new Map() };
  const elements = baseStructureDefinition(`http://hl7.org/fhir/StructureDefinition/${resourceType}`)?.snapshot?.element ?? [];
  for (const element of elements) {
    const path = element.path ?? '';
    const dot = path.lastIndexOf('.');
    if (dot < 0) continue;
    const parent = path.slice(0, dot);
    if (!found.summary.has(parent)) found.summary.set(parent, new Set());
    if (element.isSummary) found.summary.get(parent)!.add(path.slice(dot + 1).replace(/\[x\]$/, ''));
    if (element.contentReference) found.references.set(path, element.contentReference.replace(/^#/, ''));
  }
  backbonesByType.set(resourceType, found);
  return found;
}

/**
 * _summary=true below the top level: inside a summary backbone element (CapabilityStatement.rest,
 * rest.resource) only its summary children stay, so rest.resource.interaction and searchParam
 * go. Values of data types (ContactDetail, Coding) stay whole.
 */
function summarizeBackbone(value: unknown, path: string, backbones: Backbones): unknown {
  if (Array.isArray(value)) return value.map((item) => summarizeBackbone(item, path, backbones));
  const definedAt = backbones.references.get(path) ?? path;
  const wanted = backbones.summary.get(definedAt);
  if (!wanted || value === null || typeof value !== 'object') return value;
  const result: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    const name = key.startsWith('_') ? key.slice(1) : key;
    const element = [...wanted].find((w) => name === w || (name.startsWith(w) && /^[A-Z]/.test(name.slice(w.length))));
    if (element !== undefined || key === 'id') {
      result[key] = summarizeBackbone(child, `${definedAt}.${element ?? name}`, backbones);
    }
  }
  return result;
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
      const kept = keep(resource, (name) => names.has(name)) as unknown as Record<string, unknown>;
      const backbones = backbonesOf(resource.resourceType);
      for (const [key, value] of Object.entries(kept)) {
        if (key !== 'meta' && key !== 'resourceType') {
          kept[key] = summarizeBackbone(value, `${resource.resourceType}.${key}`, backbones);
        }
      }
      return kept as unknown as Resource;
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
