/**
 * A child element of a typed FHIR value, as @medplum/core's getTypedPropertyValue finds it,
 * with the element definition's lookup done once per (type, name) instead of at every step.
 *
 * Why: indexing evaluates some thirty search-parameter paths per resource written (and per
 * AuditEvent, which every audited request writes). medplum resolves each step from the type
 * schema anew: it finds the element, then for a choice element (`value[x]`, eleven types on
 * Observation) builds each candidate key (`valueQuantity`, `valueCodeableConcept`, ...) as a
 * new string and probes it. That resolution was a quarter of the indexing time. Here the
 * candidate keys and the type each one yields are computed on first use and kept; reading a
 * value is then a few property reads. Values that carry primitive extensions (`_birthDate`)
 * and types without a schema keep medplum's own path, so the result is the same in every case.
 */
import { getElementDefinition, getTypedPropertyValue, isEmpty } from '@medplum/core';
import type { Typed } from './fhirpath';

/** Where an element's value may sit in the JSON, in the element's type order. */
interface Candidate {
  key: string;
  /** The type given to a value found under key. */
  type: string;
}

const candidatesByType = new Map<string, Map<string, Candidate[]>>();

function capitalize(s: string): string {
  return s ? s.charAt(0).toUpperCase() + s.substring(1) : '';
}

/** The keys to probe for `name` on `type`, or undefined when the type has no definition of it. */
function candidates(type: string, name: string): Candidate[] | undefined {
  let byName = candidatesByType.get(type);
  if (!byName) candidatesByType.set(type, (byName = new Map()));
  const known = byName.get(name);
  if (known) return known;
  const element = getElementDefinition(type, name);
  if (!element) return undefined;
  const types = element.type ?? [];
  const last = element.path.substring(element.path.lastIndexOf('.') + 1);
  const found: Candidate[] = [];
  for (const t of types) {
    const key = last.replace('[x]', capitalize(t.code));
    if (found.some((c) => c.key === key)) continue;
    // medplum names an inline element by the type of its first definition (ObservationComponent).
    const valueType = t.code === 'Element' || t.code === 'BackboneElement' ? types[0].code : t.code;
    found.push({ key, type: valueType });
  }
  byName.set(name, found);
  return found;
}

function typed(value: unknown, type: string): Typed {
  if (type === 'Resource' && value && typeof value === 'object' && 'resourceType' in value) {
    return { type: (value as { resourceType: string }).resourceType, value };
  }
  return { type, value };
}

/** The value(s) of child element `name` of `input`; undefined when it is absent or empty. */
export function typedPropertyValue(input: Typed, name: string): Typed | Typed[] | undefined {
  const value = input.value;
  if (!value) return undefined;
  const found = candidates(input.type, name);
  if (!found) return getTypedPropertyValue(input as never, name) as Typed | Typed[] | undefined;
  for (const { key, type } of found) {
    const child = value[key];
    if (value['_' + key] !== undefined) {
      // A primitive with extensions: medplum merges the two, which this does not repeat.
      return getTypedPropertyValue(input as never, name) as Typed | Typed[] | undefined;
    }
    if (child === undefined) continue;
    if (isEmpty(child)) return undefined;
    return Array.isArray(child) ? child.map((c) => typed(c, type)) : typed(child, type);
  }
  return undefined;
}
