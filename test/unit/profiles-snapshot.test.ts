/**
 * The snapshot generator on small differentials over the R4 base (not the national pack): what
 * it derives, where it puts new elements, and what it refuses. The generated snapshots are
 * also checked to work with @medplum/core's validator.
 */
import { OperationOutcomeError, validateResource } from '@medplum/core';
import type { ElementDefinition, Observation, Patient, StructureDefinition } from '@medplum/fhirtypes';
import { loadDefinitions } from '../../src/fhir/definitions';
import { definitionResolver, r4Definitions } from '../../src/profiles/resolver';
import { generateSnapshot, pathOfId, SnapshotError, withSnapshot } from '../../src/profiles/snapshot';

const CORE = 'http://hl7.org/fhir/StructureDefinition/';
const resolve = definitionResolver();

function profile(type: string, element: Partial<ElementDefinition>[], extra: Partial<StructureDefinition> = {}): StructureDefinition {
  return {
    resourceType: 'StructureDefinition',
    url: `http://example.org/StructureDefinition/test-${type.toLowerCase()}`,
    name: `Test${type}`,
    status: 'draft',
    kind: 'resource',
    abstract: false,
    type,
    baseDefinition: CORE + type,
    derivation: 'constraint',
    differential: { element: element.map((e) => ({ path: pathOfId(e.id as string), ...e })) as ElementDefinition[] },
    ...extra,
  };
}

const snapshot = (sd: StructureDefinition) => withSnapshot(sd, resolve).snapshot?.element as ElementDefinition[];
const ids = (elements: ElementDefinition[]) => elements.map((e) => e.id);
const find = (elements: ElementDefinition[], id: string) => elements.find((e) => e.id === id) as ElementDefinition;
const errorsOf = (run: () => unknown) => {
  try {
    run();
    return [];
  } catch (err) {
    if (err instanceof OperationOutcomeError) return (err.outcome.issue ?? []).filter((i) => i.severity === 'error');
    throw err;
  }
};

beforeAll(() => loadDefinitions());

describe('constraints on existing elements', () => {
  test('cardinality, types, target profiles, bindings, texts, fixed values and invariants are merged; the rest is the base', () => {
    const sd = profile('Observation', [
      { id: 'Observation', constraint: [{ key: 't-1', severity: 'error', human: 'has a value', expression: 'value.exists()' }] },
      { id: 'Observation.status', short: 'final only', fixedCode: 'final' },
      { id: 'Observation.subject', min: 1, type: [{ code: 'Reference', targetProfile: [CORE + 'Patient'] }] },
      { id: 'Observation.interpretation', binding: { strength: 'required', valueSet: 'http://hl7.org/fhir/ValueSet/observation-interpretation' } },
    ]);
    const elements = snapshot(sd);
    const base = r4Definitions().get(CORE + 'Observation')?.snapshot?.element as ElementDefinition[];
    expect(ids(elements)).toEqual(ids(base));
    const subject = find(elements, 'Observation.subject');
    expect([subject.min, subject.max, subject.type]).toEqual([1, '1', [{ code: 'Reference', targetProfile: [CORE + 'Patient'] }]]);
    expect(subject.base).toEqual(find(base, 'Observation.subject').base);
    expect(find(elements, 'Observation.status')).toMatchObject({ short: 'final only', fixedCode: 'final', binding: find(base, 'Observation.status').binding });
    expect(find(elements, 'Observation.interpretation').binding?.strength).toBe('required');
    const root = find(elements, 'Observation').constraint ?? [];
    expect(root.map((c) => c.key)).toEqual([...(find(base, 'Observation').constraint ?? []).map((c) => c.key), 't-1']);
    expect(root.find((c) => c.key === 't-1')?.source).toBe(sd.url);
    expect(find(elements, 'Observation.code')).toEqual(find(base, 'Observation.code'));
  });

  test.each([
    ['min below the base', [{ id: 'Observation.status', min: 0 }], 'min 0 is below the base'],
    ['max above the base', [{ id: 'Observation.subject', max: '*' }], 'max * exceeds'],
    ['min above max', [{ id: 'Observation.subject', min: 2 }], 'min 2 exceeds max 1'],
    ['a type the base does not allow', [{ id: 'Observation.subject', type: [{ code: 'Quantity' }] }], 'type Quantity is not allowed'],
    ['a target the base does not allow', [{ id: 'Observation.subject', type: [{ code: 'Reference', targetProfile: [CORE + 'Medication'] }] }], 'target'],
    ['a binding weaker than required', [{ id: 'Observation.status', binding: { strength: 'extensible', valueSet: 'http://example.org/vs' } }], 'weaker'],
    ['an element the base does not have', [{ id: 'Observation.colour', min: 1 }], 'no element Observation.colour'],
    ['a slice without slicing', [{ id: 'Observation.category:lab', sliceName: 'lab' }], 'which has no slicing'],
    ['a changed isSummary', [{ id: 'Observation.note', isSummary: true }], 'cannot change isSummary'],
    ['a constraint key reused with another expression', [{ id: 'Observation', constraint: [{ key: 'obs-6', severity: 'error', human: 'x', expression: 'true' }] }], 'constraint obs-6'],
    ['children of an element with several types', [{ id: 'Observation.value[x].unit', min: 1 }], 'several types'],
  ] as [string, Partial<ElementDefinition>[], string][])('refuses %s', (_name, element, message) => {
    expect(() => snapshot(profile('Observation', element))).toThrow(SnapshotError);
    expect(() => snapshot(profile('Observation', element))).toThrow(message);
  });

  test('refuses a profile of another type than its base, and a missing base', () => {
    const base = r4Definitions().get(CORE + 'Patient') as StructureDefinition;
    expect(() => generateSnapshot(profile('Observation', []), base, resolve)).toThrow('differs from the base');
    expect(() => withSnapshot(profile('Observation', [], { baseDefinition: 'http://example.org/nothing' }), resolve)).toThrow('cannot resolve the base');
  });
});

describe('children of complex types', () => {
  test('constraining a child expands the element from its type, keeping the base paths of the type', () => {
    const elements = snapshot(profile('Patient', [{ id: 'Patient.maritalStatus.coding', min: 1 }]));
    const at = ids(elements).indexOf('Patient.maritalStatus');
    expect(ids(elements).slice(at, at + 5)).toEqual([
      'Patient.maritalStatus', 'Patient.maritalStatus.id', 'Patient.maritalStatus.extension', 'Patient.maritalStatus.coding', 'Patient.maritalStatus.text',
    ]);
    expect(find(elements, 'Patient.maritalStatus.coding')).toMatchObject({ path: 'Patient.maritalStatus.coding', min: 1, base: { path: 'CodeableConcept.coding' } });
  });

  test('a child of an element named by contentReference is expanded from the element it names', () => {
    const elements = snapshot(profile('Questionnaire', [{ id: 'Questionnaire.item.item.text', min: 1 }]));
    expect(find(elements, 'Questionnaire.item.item').contentReference).toBe('#Questionnaire.item');
    expect(find(elements, 'Questionnaire.item.item.text')).toMatchObject({ min: 1, base: { path: 'Questionnaire.item.text' } });
    expect(find(elements, 'Questionnaire.item.item.linkId')).toMatchObject({ min: 1, path: 'Questionnaire.item.item.linkId' });
  });

  test('a renamed choice (valueQuantity) constrains value[x] to that type, and its children follow the type', () => {
    const elements = snapshot(profile('Observation', [
      { id: 'Observation.valueQuantity', min: 1 },
      { id: 'Observation.valueQuantity.system', fixedUri: 'http://unitsofmeasure.org' },
    ]));
    expect(find(elements, 'Observation.value[x]')).toMatchObject({ min: 1, type: [{ code: 'Quantity' }] });
    expect(find(elements, 'Observation.value[x].system')).toMatchObject({ fixedUri: 'http://unitsofmeasure.org', base: { path: 'Quantity.system' } });
    expect(elements.some((e) => (e.id as string).includes('valueQuantity'))).toBe(false);
  });
});

describe('slicing', () => {
  const identifierSlices = profile('Patient', [
    { id: 'Patient.identifier', slicing: { discriminator: [{ type: 'value', path: 'system' }], rules: 'open' } },
    { id: 'Patient.identifier:mrn', sliceName: 'mrn', max: '1' },
    { id: 'Patient.identifier:mrn.system', min: 1, fixedUri: 'urn:oid:2.16.156.10011.1.13' },
    { id: 'Patient.identifier:card', sliceName: 'card', min: 1 },
    { id: 'Patient.identifier:card.system', fixedUri: 'urn:oid:2.16.156.10011.1.3' },
  ]);

  test('slices follow the sliced element in order, start at min 0, and get the children of their type', () => {
    const elements = snapshot(identifierSlices);
    const order = ids(elements);
    const at = order.indexOf('Patient.identifier');
    expect(order[at + 1]).toBe('Patient.identifier:mrn');
    expect(order.slice(at + 2, at + 10)).toEqual(['id', 'extension', 'use', 'type', 'system', 'value', 'period', 'assigner'].map((c) => `Patient.identifier:mrn.${c}`));
    expect(order[at + 10]).toBe('Patient.identifier:card');
    expect(order[at + 19]).toBe('Patient.active');
    expect(find(elements, 'Patient.identifier:mrn')).toMatchObject({ sliceName: 'mrn', min: 0, max: '1', path: 'Patient.identifier' });
    expect(find(elements, 'Patient.identifier:mrn').slicing).toBeUndefined();
    expect(find(elements, 'Patient.identifier:card')).toMatchObject({ min: 1, max: '*' });
    expect(find(elements, 'Patient.identifier:mrn.system')).toMatchObject({ path: 'Patient.identifier.system', fixedUri: 'urn:oid:2.16.156.10011.1.13', base: { path: 'Identifier.system' } });
  });

  test('ids may be left out: they follow from paths and the slice named before', () => {
    const withoutIds = {
      ...identifierSlices,
      differential: { element: (identifierSlices.differential?.element ?? []).map(({ id: _id, ...rest }) => rest as ElementDefinition) },
    };
    expect(snapshot(withoutIds)).toEqual(snapshot(identifierSlices));
  });

  test('slices of a backbone element copy the sliced element’s children', () => {
    const elements = snapshot(profile('Observation', [
      { id: 'Observation.component', slicing: { discriminator: [{ type: 'pattern', path: 'code' }], rules: 'open' } },
      { id: 'Observation.component:systolic', sliceName: 'systolic', min: 1, max: '1' },
      { id: 'Observation.component:systolic.code', patternCodeableConcept: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] } },
      { id: 'Observation.component:systolic.valueQuantity', min: 1 },
    ]));
    expect(find(elements, 'Observation.component:systolic.code')).toMatchObject({ path: 'Observation.component.code', base: { path: 'Observation.component.code' } });
    expect(find(elements, 'Observation.component:systolic.value[x]')).toMatchObject({ min: 1, type: [{ code: 'Quantity' }] });
    expect(find(elements, 'Observation.component:systolic.referenceRange').contentReference).toBe('#Observation.referenceRange');
  });

  test('a choice may be sliced by type without a declared slicing', () => {
    const elements = snapshot(profile('Observation', [{ id: 'Observation.value[x]:valueString', sliceName: 'valueString', maxLength: 100 }]));
    expect(find(elements, 'Observation.value[x]').slicing).toEqual({ discriminator: [{ type: 'type', path: '$this' }], ordered: false, rules: 'open' });
    expect(find(elements, 'Observation.value[x]:valueString')).toMatchObject({ type: [{ code: 'string' }], maxLength: 100 });
  });

  test('an extension slice takes texts, cardinality and children from the extension, and medplum matches it by url', () => {
    const birthPlace = CORE + 'patient-birthPlace';
    const sd = profile('Patient', [{ id: 'Patient.extension:birthPlace', sliceName: 'birthPlace', min: 1, type: [{ code: 'Extension', profile: [birthPlace] }] }]);
    const elements = snapshot(sd);
    const slice = find(elements, 'Patient.extension:birthPlace');
    expect(slice).toMatchObject({ min: 1, max: '1', short: 'Place of Birth for patient' });
    expect(find(elements, 'Patient.extension:birthPlace.url').fixedUri).toBe(birthPlace);
    expect(find(elements, 'Patient.extension:birthPlace.value[x]').type).toEqual([{ code: 'Address' }]);

    const full = { ...sd, snapshot: { element: elements } };
    const patient: Patient = { resourceType: 'Patient', extension: [{ url: birthPlace, valueAddress: { city: '北京' } }] };
    expect(errorsOf(() => validateResource(patient, { profile: full }))).toEqual([]);
    // (medplum counts slices only where the sliced element has values: an absent extension array passes.)
    const other: Patient = { resourceType: 'Patient', extension: [{ url: 'http://example.org/other', valueString: 'x' }] };
    expect(errorsOf(() => validateResource(other, { profile: full }))).toEqual([
      expect.objectContaining({ expression: ['Patient.extension'], details: { text: "Incorrect number of values provided for slice 'birthPlace': expected 1..1, but found 0" } }),
    ]);
  });
});

describe('extension definitions', () => {
  test('a complex extension slices Extension.extension and fixes each part’s url; a re-slice is refused', () => {
    const sd = profile('Extension', [
      { id: 'Extension', max: '1' },
      { id: 'Extension.extension:code', sliceName: 'code', min: 1, max: '1' },
      { id: 'Extension.extension:code.url', fixedUri: 'code' },
      { id: 'Extension.extension:code.value[x]', type: [{ code: 'Coding' }] },
      { id: 'Extension.url', fixedUri: 'http://example.org/StructureDefinition/pair' },
      { id: 'Extension.value[x]', max: '0' },
    ], { url: 'http://example.org/StructureDefinition/pair', kind: 'complex-type', context: [{ type: 'element', expression: 'Patient' }] });
    const elements = snapshot(sd);
    const order = ids(elements);
    expect(order.slice(0, 4)).toEqual(['Extension', 'Extension.id', 'Extension.extension', 'Extension.extension:code']);
    expect(find(elements, 'Extension.extension:code.url')).toMatchObject({ fixedUri: 'code', base: { path: 'Extension.url' } });
    expect(find(elements, 'Extension.extension:code.value[x]').type).toEqual([{ code: 'Coding' }]);
    expect(find(elements, 'Extension.value[x]').max).toBe('0');
    expect(order.indexOf('Extension.extension:code.value[x]')).toBeLessThan(order.indexOf('Extension.url'));

    const reslice = profile('Patient', [
      { id: 'Patient.identifier', slicing: { discriminator: [{ type: 'value', path: 'system' }], rules: 'open' } },
      { id: 'Patient.identifier:a', sliceName: 'a' },
      { id: 'Patient.identifier:a/b', sliceName: 'a/b' },
    ]);
    expect(() => snapshot(reslice)).toThrow('re-slicing (a/b) is not supported');
  });
});

describe('profiles on profiles and medplum', () => {
  test('a base given only as a differential gets its snapshot first', () => {
    const parent = profile('Observation', [{ id: 'Observation.subject', min: 1 }], { url: 'http://example.org/StructureDefinition/parent' });
    const child = profile('Observation', [{ id: 'Observation.effective[x]', min: 1 }], {
      url: 'http://example.org/StructureDefinition/child',
      baseDefinition: parent.url,
    });
    const elements = withSnapshot(child, definitionResolver([parent])).snapshot?.element as ElementDefinition[];
    expect(find(elements, 'Observation.subject').min).toBe(1);
    expect(find(elements, 'Observation.effective[x]').min).toBe(1);
    const full = { ...child, snapshot: { element: elements } };
    const observation: Observation = { resourceType: 'Observation', status: 'final', code: { text: 'x' } };
    expect(errorsOf(() => validateResource(observation, { profile: full })).map((i) => i.expression?.[0]).sort()).toEqual([
      'Observation.effective[x]',
      'Observation.subject',
    ]);
  });
});
