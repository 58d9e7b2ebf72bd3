/**
 * typedPropertyValue (src/fhir/typed-property.ts) caches the element lookups of @medplum/core's
 * getTypedPropertyValue, which search indexing, compartments and invariants step through. It
 * must give exactly medplum's answer: here, for every element of every resource below, every
 * name its type defines (choice names such as `value` and their typed forms such as
 * `valueQuantity` included) and every key present, the two are compared.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { getDataType, getTypedPropertyValue, toTypedValue } from '@medplum/core';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { patientRecord } from '../../bench/data/generator';
import { loadDefinitions } from '../../src/fhir/definitions';
import type { Typed } from '../../src/fhir/fhirpath';
import { typedPropertyValue } from '../../src/fhir/typed-property';

const EXAMPLES = path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'r4-examples');

beforeAll(() => loadDefinitions());

function namesOf(input: Typed): string[] {
  const names = new Set<string>(Object.keys(input.value).map((k) => (k.startsWith('_') ? k.slice(1) : k)));
  let elements: Record<string, unknown> = {};
  try {
    elements = getDataType(input.type).elements;
  } catch {
    // A type without a schema (medplum then reads the key as such).
  }
  for (const key of Object.keys(elements)) {
    names.add(key.replace('[x]', ''));
    if (key.endsWith('[x]')) names.add(key.replace('[x]', 'Quantity')).add(key.replace('[x]', 'String'));
  }
  names.add('notAnElement');
  return [...names];
}

interface Mismatch {
  at: string;
  ours: unknown;
  theirs: unknown;
}

/** Compares the two on every name of every element below input; returns the number compared. */
function compareBelow(input: Typed, where: string, mismatches: Mismatch[]): number {
  if (!input.value || typeof input.value !== 'object') return 0;
  let compared = 0;
  for (const name of namesOf(input)) {
    const ours = typedPropertyValue(input, name);
    const theirs = getTypedPropertyValue(input as never, name) as Typed | Typed[] | undefined;
    if (!isDeepStrictEqual(ours, theirs)) mismatches.push({ at: `${where}.${name}`, ours, theirs });
    compared++;
    for (const [i, child] of (Array.isArray(theirs) ? theirs : theirs ? [theirs] : []).entries()) {
      compared += compareBelow(child, `${where}.${name}[${i}]`, mismatches);
    }
  }
  return compared;
}

/** The number of (element, name) pairs compared; fails on the first few that differ. */
function compareResources(resources: Resource[]): number {
  const mismatches: Mismatch[] = [];
  let compared = 0;
  for (const resource of resources) compared += compareBelow(toTypedValue(resource) as Typed, `${resource.resourceType}/${resource.id}`, mismatches);
  expect(mismatches.slice(0, 5)).toEqual([]);
  return compared;
}

test('the benchmark generator’s national records, element by element', () => {
  const resources = Array.from({ length: 3 }, (_, i) => patientRecord(1, i).bundle.entry!.map((e) => e.resource as Resource)).flat();
  expect(compareResources(resources)).toBeGreaterThan(20_000);
});

test('choice elements, primitives with extensions and contained resources', () => {
  const observation = {
    resourceType: 'Observation',
    id: 'o1',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
    valueQuantity: { value: 5, unit: 'mg' },
    _effectiveDateTime: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] },
    _status: { id: 's1' },
    component: [{ code: { text: 'a' }, valueString: 'x', _valueString: { id: 'v' } }, { code: { text: 'b' }, valueBoolean: false }],
    note: [],
    contained: [{ resourceType: 'Patient', id: 'p1', birthDate: '1980-01-01', _birthDate: { extension: [] } }],
    subject: { reference: '#p1' },
  } as unknown as Resource;
  const typed = toTypedValue(observation) as Typed;
  expect(typedPropertyValue(typed, 'value')).toEqual({ type: 'Quantity', value: { value: 5, unit: 'mg' } });
  expect(typedPropertyValue(typed, 'note')).toBeUndefined();
  expect((typedPropertyValue(typed, 'contained') as Typed[])[0].type).toBe('Patient');
  expect((typedPropertyValue(typed, 'component') as Typed[])[0].type).toBe('ObservationComponent');
  expect(compareResources([observation])).toBeGreaterThan(100);
});

describe('official R4 examples (../shared/data/r4-examples)', () => {
  if (!fs.existsSync(EXAMPLES)) {
    test.skip('skipped: ../shared/data/r4-examples is absent in this checkout', () => undefined);
    return;
  }
  test('every element of every example', () => {
    const resources: Resource[] = [];
    for (const file of fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'))) {
      const resource = JSON.parse(fs.readFileSync(path.join(EXAMPLES, file), 'utf8')) as Resource;
      resources.push(resource, ...(resource.resourceType === 'Bundle' ? ((resource as Bundle).entry ?? []).flatMap((e) => (e.resource ? [e.resource] : [])) : []));
    }
    expect(compareResources(resources)).toBeGreaterThan(100_000);
  });
});
