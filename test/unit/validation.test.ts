/**
 * Unit tests of the validation engine's parts: primitive formats, fixed and pattern
 * matching, narrative checks, the native base invariants, snapshot compilation, the profile
 * registry and REQUIRED_PROFILES resolution (without a database), and the search registry's
 * view of the pack's stored SearchParameters.
 */
import path from 'node:path';
import type { StructureDefinition } from '@medplum/fhirtypes';
import { loadDefinitions } from '../../src/fhir/definitions';
import { compileStructureDefinition } from '../../src/validation/compile';
import { evaluateInvariant, narrativeProblems } from '../../src/validation/invariants';
import { jsonEquals, matchesPattern } from '../../src/validation/json';
import { primitiveProblem } from '../../src/validation/primitives';
import { ProfileRegistry } from '../../src/validation/profiles';
import { readPack } from '../../src/validation/pack';
import { packGuides, resolveRequiredProfiles } from '../../src/validation/required';
import { loadProfileSearchParameters, readSearchParameterFiles, setStoredSearchParameters } from '../../src/search/registry';

const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'validation');

beforeAll(() => loadDefinitions());

describe('primitive formats', () => {
  test.each([
    ['date', '2024-02-29', undefined],
    ['date', '2023-02-29', /not a date of the calendar/],
    ['date', '2024-13', /is not a date/],
    ['date', '2024', undefined],
    ['dateTime', '2024-01-01T10:00:00+08:00', undefined],
    ['dateTime', '2024-01-01T10:00:00', /time zone/],
    ['dateTime', '2024-01-01T10:00Z', /is not a dateTime/],
    ['instant', '2024-01-01T10:00:00.123Z', undefined],
    ['instant', '2024-01-01', /is not an instant/],
    ['time', '23:59:60', undefined],
    ['time', '24:00:00', /is not a time/],
    ['id', 'a-B.9', undefined],
    ['id', 'x'.repeat(65), /is not an id/],
    ['code', 'a b', undefined],
    ['code', 'a  b', /is not a code/],
    ['uri', 'urn:x', undefined],
    ['uri', 'has space', /is not a URI/],
    ['oid', 'urn:oid:2.16.156', undefined],
    ['oid', '2.16.156', /urn:oid:/],
    ['uuid', 'urn:uuid:0b1d1c5e-0c4e-4b3a-9a7e-5a1e0c9f2d11', undefined],
    ['base64Binary', 'aGVsbG8=', undefined],
    ['base64Binary', 'aGVs\nbG8=', undefined],
    ['base64Binary', 'aGVsbG8', /base64/],
    ['base64Binary', 'not base64!', /base64/],
    ['string', '  ', /non-whitespace/],
    ['string', 'a\u0001b', /control characters/],
    ['string', '', /must not be empty/],
    ['integer', 2147483648, /32-bit/],
    ['integer', 1.5, /not an integer/],
    ['positiveInt', 0, /1 or more/],
    ['unsignedInt', -1, /0 or more/],
    ['decimal', 1.25, undefined],
    ['decimal', '1.25', /JSON number/],
    ['boolean', 'true', /JSON boolean/],
  ])('%s %j', (type, value, problem) => {
    const found = primitiveProblem(type, value);
    if (problem) expect(found).toMatch(problem);
    else expect(found).toBeUndefined();
  });
});

describe('fixed and pattern values', () => {
  test('fixed is exact equality, key order aside', () => {
    expect(jsonEquals({ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 })).toBe(true);
    expect(jsonEquals({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(jsonEquals([1, 2], [2, 1])).toBe(false);
  });

  test('a pattern needs its properties, and each of its array entries matched by some entry', () => {
    const pattern = { coding: [{ system: 's', code: 'c' }] };
    expect(matchesPattern({ coding: [{ system: 'x', code: 'y' }, { system: 's', code: 'c', display: 'C' }], text: 't' }, pattern)).toBe(true);
    expect(matchesPattern({ coding: [{ system: 's', code: 'd' }] }, pattern)).toBe(false);
    expect(matchesPattern('a', 'a')).toBe(true);
    expect(matchesPattern(undefined, { a: 1 })).toBe(false);
  });
});

describe('narratives (txt-1, txt-2)', () => {
  const div = (inner: string) => `<div xmlns="http://www.w3.org/1999/xhtml">${inner}</div>`;
  test('basic HTML is fine', () => {
    expect(narrativeProblems(div('<p><b>Li</b> <a href="#x">x</a></p><table><tr><td>1</td></tr></table><img src="#i"/>'))).toEqual([]);
  });
  test('scripts, forms, event handlers, javascript: links and a missing namespace are not', () => {
    expect(narrativeProblems(div('<script>x</script>'))[0]).toEqual(['txt-1', expect.stringMatching(/<script>/)]);
    expect(narrativeProblems(div('<form><input/></form>'))[0][1]).toMatch(/<form>, <input>/);
    expect(narrativeProblems(div('<p onclick="x()">a</p>')).map((p) => p[1])).toContainEqual(expect.stringMatching(/event handler/));
    expect(narrativeProblems(div('<a href="javascript:alert(1)">a</a>')).map((p) => p[1])).toContainEqual(expect.stringMatching(/javascript:/));
    expect(narrativeProblems('<div>text</div>')[0][1]).toMatch(/XHTML namespace/);
  });
  test('an empty narrative breaks txt-2', () => {
    expect(narrativeProblems(div('\n  '))).toEqual([['txt-2', expect.stringMatching(/non-whitespace/)]]);
  });
});

describe('native base invariants', () => {
  const scope = (root: object = {}) => ({ resource: { type: 'Patient', value: root }, rootResource: { type: 'Patient', value: root } });
  const check = (key: string, expression: string, value: object, root?: object) =>
    evaluateInvariant({ key, severity: 'error', human: '', expression }, { type: 'Element', value }, scope(root));

  test('per-1: start <= end, undecided across precisions', () => {
    const per1 = 'start.hasValue().not() or end.hasValue().not() or (start <= end)';
    expect(check('per-1', per1, { start: '2024-01-02', end: '2024-01-01' })).toBe('fail');
    expect(check('per-1', per1, { start: '2024-01-01T10:00:00+08:00', end: '2024-01-01T03:00:00Z' })).toBe('pass');
    expect(check('per-1', per1, { start: '2024-01-01T10:00:00Z', end: '2024-01-01T09:00:00Z' })).toBe('fail');
    expect(check('per-1', per1, { start: '2024-01', end: '2024-01-01' })).toBe('pass');
    expect(check('per-1', per1, { start: '2025', end: '2024-06-01' })).toBe('fail');
  });

  test('ext-1 and ref-1', () => {
    const ext1 = 'extension.exists() != value.exists()';
    expect(check('ext-1', ext1, { url: 'x', valueString: 'a' })).toBe('pass');
    expect(check('ext-1', ext1, { url: 'x', valueString: 'a', extension: [{ url: 'y', valueString: 'b' }] })).toBe('fail');
    expect(check('ext-1', ext1, { url: 'x' })).toBe('fail');
    const ref1 = "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))";
    expect(check('ref-1', ref1, { reference: '#a' }, { contained: [{ resourceType: 'Organization', id: 'a' }] })).toBe('pass');
    expect(check('ref-1', ref1, { reference: '#b' }, { contained: [{ resourceType: 'Organization', id: 'a' }] })).toBe('fail');
  });

  test('an expression the engine cannot evaluate is reported as such, not as a failure', () => {
    expect(check('x-1', 'name.where(', {})).toBeInstanceOf(Error);
    expect(check('x-2', "code.memberOf('http://example.org/vs')", { code: 'a' })).toBeInstanceOf(Error);
  });
});

describe('compiling a snapshot', () => {
  const registry = new ProfileRegistry(FIXTURES);

  test('slices go under the element they slice; their children under them', () => {
    const found = registry.builtin('http://example.org/fhir/StructureDefinition/test-patient');
    const profile = found?.profile;
    expect(profile?.type).toBe('Patient');
    const identifier = profile!.root.children.get('identifier')!;
    expect(identifier.min).toBe(1);
    expect(identifier.slicing?.discriminators).toEqual([{ type: 'value', path: 'system' }]);
    const resident = identifier.slicing!.slices[0];
    expect(resident.sliceName).toBe('resident');
    expect(resident.children.get('system')?.fixed).toBe('urn:oid:2.16.840.1.113883.2.4.6.3');
    expect(resident.children.get('value')?.constraints.map((c) => c.key)).toEqual(['tp-2']);
    // ele-1 is checked natively, never through FHIRPath.
    expect(identifier.constraints.map((c) => c.key)).not.toContain('ele-1');
  });

  test('a snapshot-less profile and an unknown one are reported, not thrown', async () => {
    expect(registry.builtin('http://example.org/fhir/StructureDefinition/test-differential')).toMatchObject({ missing: 'no-snapshot' });
    expect(await registry.resolve('http://example.org/fhir/StructureDefinition/nothing', registry.session())).toMatchObject({ missing: 'unknown' });
    expect(registry.builtin('http://hl7.org/fhir/StructureDefinition/patient-birthPlace')?.profile?.extensionUrl).toBe(
      'http://hl7.org/fhir/StructureDefinition/patient-birthPlace'
    );
    expect(() => compileStructureDefinition({ resourceType: 'StructureDefinition', url: 'x', snapshot: { element: [] } } as unknown as StructureDefinition, false)).toThrow(
      /has no snapshot/
    );
  });

  test('REQUIRED_PROFILES resolves ImplementationGuides and URLs to profiles by type', async () => {
    const guides = packGuides(readPack(FIXTURES));
    expect(await resolveRequiredProfiles(['TestPack'], registry, guides)).toEqual(new Map([['Patient', ['http://example.org/fhir/StructureDefinition/test-patient']]]));
    const both = await resolveRequiredProfiles(['example.test.pack', 'http://example.org/fhir/StructureDefinition/test-observation'], registry, guides);
    expect([...both.keys()].sort()).toEqual(['Observation', 'Patient']);
    await expect(resolveRequiredProfiles(['nothing'], registry, guides)).rejects.toThrow(/names no ImplementationGuide/);
  });

  test('REQUIRED_PROFILES=national names the one guide with a country jurisdiction', async () => {
    const guides = packGuides(readPack(FIXTURES));
    // The fixture guide has no jurisdiction: "national" names nothing.
    await expect(resolveRequiredProfiles(['national'], registry, guides)).rejects.toThrow(/names no ImplementationGuide/);
    const national = guides.map((g) => ({ ...g, jurisdiction: [{ coding: [{ system: 'urn:iso:std:iso:3166', code: 'CN' }] }] }));
    expect(await resolveRequiredProfiles(['national'], registry, national)).toEqual(new Map([['Patient', ['http://example.org/fhir/StructureDefinition/test-patient']]]));
    // Two national guides: ambiguous, so nothing is guessed.
    await expect(resolveRequiredProfiles(['national'], registry, [...national, { ...national[0], id: 'other' }])).rejects.toThrow(/names no ImplementationGuide/);
  });
});

test('the pack`s SearchParameters, stored as resources too, are not rejected as redefinitions', () => {
  loadProfileSearchParameters(FIXTURES);
  const stored = readSearchParameterFiles(FIXTURES).map((sp) => ({ ...sp, meta: { versionId: '1' } }));
  const report = setStoredSearchParameters(stored);
  expect(report.rejected).toEqual([]);
  // A stored parameter that redefines the pack's code under another URL still is.
  const other = setStoredSearchParameters([{ ...stored[0], id: 'other', url: 'http://example.org/other' }]);
  expect(other.rejected).toEqual([{ reference: 'SearchParameter/other', reason: 'Patient already has a search parameter "ethnicity"' }]);
  setStoredSearchParameters([]);
});
