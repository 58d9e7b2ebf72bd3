/**
 * SMART scope parsing (v1 and v2) and the rule for which requested scopes may be granted.
 */
import { loadDefinitions } from '../../src/fhir/definitions';
import { describeScope, grantableScopes, parseResourceScope } from '../../src/access/scopes';

beforeAll(() => loadDefinitions());

test('v1 permissions become v2 letters', () => {
  expect([...parseResourceScope('patient/Observation.read')!.permissions]).toEqual(['r', 's']);
  expect([...parseResourceScope('user/*.write')!.permissions]).toEqual(['c', 'u', 'd']);
  expect([...parseResourceScope('system/*.*')!.permissions]).toEqual(['c', 'r', 'u', 'd', 's']);
});

test('v2 letters must be in cruds order; granular queries only on a named type', () => {
  expect(parseResourceScope('patient/Observation.rs?category=laboratory')).toMatchObject({
    context: 'patient', resourceType: 'Observation', query: [['category', 'laboratory']],
  });
  expect(parseResourceScope('patient/Observation.sr')).toBeUndefined();
  expect(parseResourceScope('patient/Observation.rr')).toBeUndefined();
  expect(parseResourceScope('patient/*.rs?category=laboratory')).toBeUndefined();
  expect(parseResourceScope('patient/Observation.read?category=x')).toBeUndefined();
  expect(parseResourceScope('patient/NotAType.rs')).toBeUndefined();
  expect(parseResourceScope('clinic/Observation.rs')).toBeUndefined();
});

test('a requested scope is granted when an allowed scope covers it, in an allowed context', () => {
  const allowed = ['patient/*.rs', 'launch/patient', 'system/Observation.cruds', 'user/Observation.rs?category=laboratory'];
  expect(grantableScopes(['patient/Observation.read', 'patient/Observation.c', 'launch/patient', 'openid'], allowed, ['patient', 'user'])).toEqual([
    'patient/Observation.read',
    'launch/patient',
  ]);
  expect(grantableScopes(['system/Observation.rs', 'patient/*.rs'], allowed, ['system'])).toEqual(['system/Observation.rs']);
  expect(grantableScopes(['user/Observation.rs', 'user/Observation.r?category=laboratory'], allowed, ['user'])).toEqual([
    'user/Observation.r?category=laboratory',
  ]);
});

test('every scope is described in words', () => {
  expect(describeScope('patient/Observation.rs?category=laboratory')).toBe(
    'Read, search Observation records of the selected patient — only those where category is laboratory'
  );
  expect(describeScope('offline_access')).toMatch(/Keep access/);
});
