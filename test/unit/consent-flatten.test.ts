/**
 * How a Consent becomes the flat rules the access filter evaluates: which Consents count,
 * effects of root and nested provisions, conditions intersected down the tree, security-label
 * alternatives, and conditions the server cannot evaluate (never more sharing).
 */
import type { Consent, ConsentProvision } from '@medplum/fhirtypes';
import { loadDefinitions } from '../../src/fhir/definitions';
import { flattenConsent } from '../../src/consent/flatten';

const BASE = 'https://fhir.example/fhir';
const CONF = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const types = (...codes: string[]) => codes.map((code) => ({ system: 'http://hl7.org/fhir/resource-types', code }));
const actor = (reference: string) => ({ role: { coding: [{ code: 'IRCP' }] }, reference: { reference } });

function consent(provision: ConsentProvision, extra: Partial<Consent> = {}): Consent {
  return {
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ text: 'privacy' }],
    patient: { reference: `${BASE}/Patient/p1` },
    provision,
    ...extra,
  };
}

beforeAll(() => loadDefinitions());

test('only active patient-privacy Consents about a local Patient count', () => {
  expect(flattenConsent(consent({}), BASE)?.patient).toBe('p1');
  expect(flattenConsent(consent({}, { status: 'inactive' }), BASE)).toBeUndefined();
  expect(flattenConsent(consent({}, { scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] } }), BASE)).toBeUndefined();
  expect(flattenConsent(consent({}, { patient: { reference: 'https://elsewhere/Patient/p1' } }), BASE)).toBeUndefined();
  expect(flattenConsent(consent(undefined as unknown as ConsentProvision), BASE)).toBeUndefined();
});

test('the root permits unless it says deny; an untyped nested provision is the opposite of its parent', () => {
  const flat = flattenConsent(consent({ actor: [actor('Organization/b')], provision: [{ class: types('Condition') }, { type: 'permit', provision: [{}] }] }), BASE)!;
  expect(flat.provisions.map((p) => [p.path, p.permit])).toEqual([[[], true], [[0], false], [[1], true], [[1, 0], false]]);
  expect(flattenConsent(consent({ type: 'deny' }), BASE)!.provisions[0].permit).toBe(false);
});

test('nested provisions apply within their ancestors\' conditions', () => {
  const flat = flattenConsent(
    consent({
      actor: [actor(`${BASE}/Organization/b`), actor('Practitioner/x')],
      class: types('Observation', 'Condition'),
      period: { start: '2024-01-01', end: '2024-12-31' },
      provision: [
        { type: 'deny', actor: [actor('Practitioner/x')], class: types('Condition', 'Encounter'), period: { start: '2024-06-01' } },
        // Nobody satisfies both actor lists: the provision and everything below it apply to no one.
        { type: 'deny', actor: [actor('Organization/c')], provision: [{ type: 'permit' }] },
      ],
    }),
    BASE
  )!;
  expect(flat.provisions).toHaveLength(2);
  expect(flat.provisions[0]).toMatchObject({
    actors: ['Organization/b', 'Practitioner/x'], classes: ['Condition', 'Observation'],
    periodStart: '2024-01-01T00:00:00.000Z', periodEnd: '2025-01-01T00:00:00.000Z',
  });
  expect(flat.provisions[1]).toMatchObject({
    path: [0], permit: false, actors: ['Practitioner/x'], classes: ['Condition'], periodStart: '2024-06-01T00:00:00.000Z', periodEnd: '2025-01-01T00:00:00.000Z',
  });
});

test('security labels: alternatives within a provision, all of them down the tree; confidentiality as a bound', () => {
  const flat = flattenConsent(
    consent({
      securityLabel: [{ system: CONF, code: 'N' }, { system: ACT_CODE, code: 'HIV' }],
      provision: [{ type: 'deny', securityLabel: [{ system: ACT_CODE, code: 'PSY' }, { system: CONF, code: 'R' }, { system: CONF, code: 'V' }] }],
    }),
    BASE
  )!;
  const shape = (p: (typeof flat.provisions)[number]) => [p.permit, p.labels, p.confMin, p.confMax];
  expect(flat.provisions.map(shape)).toEqual([
    [true, [`${ACT_CODE}|HIV`], null, null],
    [true, [], null, 3],
    [false, [`${ACT_CODE}|HIV`, `${ACT_CODE}|PSY`], null, null],
    [false, [`${ACT_CODE}|HIV`], 4, null],
    // Within records up to N, the PSY ones are denied (no record is both up to N and from R up).
    [false, [`${ACT_CODE}|PSY`], null, 3],
  ]);
});

test('what cannot be evaluated never widens sharing', () => {
  const cda = { system: 'urn:ietf:bcp:13', code: 'application/hl7-cda+xml' };
  // A permit keeps the alternatives it understands; for a deny, a class list with one it does
  // not understand (its own or an ancestor's) restricts nothing.
  const flat = flattenConsent(consent({ class: [...types('Observation'), cda], provision: [{ type: 'deny', class: types('Condition') }] }), BASE)!;
  expect(flat.provisions.map((p) => [p.permit, p.classes])).toEqual([[true, ['Observation']], [false, ['Condition']]]);
  const wide = flattenConsent(consent({ class: types('Observation'), provision: [{ type: 'deny', class: [...types('Condition'), cda] }] }), BASE)!;
  expect(wide.provisions.map((p) => [p.permit, p.classes])).toEqual([[true, ['Observation']], [false, ['Observation']]]);
  // code and dataPeriod: a permit grants nothing, a deny ignores them.
  const coded = flattenConsent(consent({ code: [{ text: 'x' }], provision: [{ type: 'deny', dataPeriod: { start: '2020' } }] }), BASE)!;
  expect(coded.provisions.map((p) => [p.path, p.permit])).toEqual([[[0], false]]);
  // data: instances of this server only; actors by identifier only are not understood.
  const data = flattenConsent(consent({
    data: [{ meaning: 'instance', reference: { reference: 'Observation/o1' } }, { meaning: 'related', reference: { reference: 'Observation/o2' } }],
    actor: [{ role: { text: 'x' }, reference: { identifier: { value: '123' } } }, actor('https://other.example/fhir/Organization/z')],
  }), BASE)!;
  expect(data.provisions[0]).toMatchObject({ data: ['Observation/o1'], actors: ['https://other.example/fhir/Organization/z'] });
});

test('a provision that does not cover access or disclosure does not govern reading', () => {
  const action = (code: string) => ({ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentaction', code }] });
  expect(flattenConsent(consent({ action: [action('collect')] }), BASE)!.provisions).toEqual([]);
  expect(flattenConsent(consent({ action: [action('correct'), action('access')] }), BASE)!.provisions).toHaveLength(1);
});
