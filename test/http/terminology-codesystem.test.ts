/**
 * CodeSystem/$lookup, $validate-code and $subsumes over the built-in R4 code systems and the
 * test fixtures (loaded as a profile pack), GET and POST, and their error cases.
 */
import type { TestServer } from '../helpers/server';
import type { FhirTestClient } from '../helpers/fhir-client';
import { all, out, params, part, startTerminologyServer } from '../helpers/terminology';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  ({ server, client } = await startTerminologyServer());
});
afterAll(async () => server.close());

const GENDER = 'http://hl7.org/fhir/administrative-gender';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const FINDINGS = 'http://example.org/fhir/CodeSystem/findings';
const GB_GENDER = 'urn:oid:2.16.156.10011.2.3.3.4';

describe('$lookup', () => {
  test('GET on a base R4 code system gives name, version and display', async () => {
    const res = await client.get(`CodeSystem/$lookup?system=${GENDER}&code=female`);
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Parameters');
    expect(out(res.body, 'name')).toBe('AdministrativeGender');
    expect(out(res.body, 'version')).toBe('4.0.1');
    expect(out(res.body, 'display')).toBe('Female');
    const definition = all(res.body, 'property').find((p: any) => part(p, 'code') === 'definition');
    expect(part(definition, 'value')).toBe('Female.');
  });

  test('POST with a coding; v3 hierarchy shows as parent and child properties', async () => {
    const res = await client.post('CodeSystem/$lookup', params({ name: 'coding', valueCoding: { system: ACT_CODE, code: 'AMB' } }));
    expect(res.status).toBe(200);
    expect(out(res.body, 'display')).toBe('ambulatory');
    const props = all(res.body, 'property').map((p: any) => [part(p, 'code'), part(p, 'value')]);
    expect(props).toContainEqual(['parent', '_ActEncounterCode']);

    const parent = await client.get(`CodeSystem/$lookup?system=${ACT_CODE}&code=_ActEncounterCode&property=child`);
    const children = all(parent.body, 'property').map((p: any) => part(p, 'value'));
    expect(children).toEqual(expect.arrayContaining(['AMB', 'EMER', 'IMP']));
    // Only the asked-for property comes back.
    expect(all(parent.body, 'property').every((p: any) => part(p, 'code') === 'child')).toBe(true);
    expect(all(parent.body, 'property').some((p: any) => part(p, 'code') === 'notSelectable')).toBe(false);
  });

  test('the polyhierarchy of v3 (child properties besides nesting) is followed', async () => {
    // In v3 ActReason, NOMATCH nests three codes and names NORECMTCH as a child through a property.
    const res = await client.get(`CodeSystem/$lookup?system=${ACT_REASON}&code=NORECMTCH&property=parent`);
    expect(res.status).toBe(200);
    expect(all(res.body, 'property').map((p: any) => part(p, 'value'))).toContain('NOMATCH');
  });

  test('a national code system by its OID and by a NamingSystem alias; designations and displayLanguage', async () => {
    const res = await client.get(`CodeSystem/$lookup?system=${GB_GENDER}&code=1`);
    expect(res.status).toBe(200);
    expect(out(res.body, 'display')).toBe('男性');
    expect(out(res.body, 'name')).toBe('GB/T 2261.1-2003 人的性别代码');
    const designation = all(res.body, 'designation')[0];
    expect([part(designation, 'language'), part(designation, 'value')]).toEqual(['en', 'Male']);

    const english = await client.get(`CodeSystem/$lookup?system=http://fhir-server.dev/cn/CodeSystem/gb-t-2261-1&code=2&displayLanguage=en`);
    expect(english.status).toBe(200);
    expect(out(english.body, 'display')).toBe('Female');
    // property=lang.X: the designations in that language ("for designations, lang.X where X is a designation language code").
    const lang = await client.get(`CodeSystem/$lookup?system=${GB_GENDER}&code=1&property=lang.en`);
    expect(lang.status).toBe(200);
    expect(all(lang.body, 'designation').map((d) => [part(d, 'language'), part(d, 'value')])).toEqual([['en', 'Male']]);
    expect(all(lang.body, 'property')).toEqual([]);
    expect(all((await client.get(`CodeSystem/$lookup?system=${GB_GENDER}&code=1&property=lang.fr`)).body, 'designation')).toEqual([]);
    expect(all((await client.get(`CodeSystem/$lookup?system=${GB_GENDER}&code=1&property=definition`)).body, 'designation')).toEqual([]);
    // A v3 code system named by the OID in its CodeSystem.identifier.
    const byOid = await client.get('CodeSystem/$lookup?system=urn:oid:2.16.840.1.113883.5.1&code=F');
    expect(out(byOid.body, 'display')).toBe('Female');
  });

  test('errors: no code 400, unknown system 404, unknown code 404, SNOMED CT not loaded 422', async () => {
    const missing = await client.get(`CodeSystem/$lookup?system=${GENDER}`);
    expect(missing.status).toBe(400);
    expect(missing.body.issue[0].diagnostics).toMatch(/code/);
    expect((await client.get('CodeSystem/$lookup?code=female')).status).toBe(400);
    const unknownSystem = await client.get('CodeSystem/$lookup?system=http://example.org/no-such-system&code=x');
    expect(unknownSystem.status).toBe(404);
    expect(unknownSystem.body.issue[0].code).toBe('not-found');
    const unknownCode = await client.get(`CodeSystem/$lookup?system=${GENDER}&code=nonsense`);
    expect(unknownCode.status).toBe(404);
    expect(unknownCode.body.issue[0].diagnostics).toContain('nonsense');
    const snomed = await client.get('CodeSystem/$lookup?system=http://snomed.info/sct&code=73211009');
    expect(snomed.status).toBe(422);
    expect(snomed.body.issue[0].code).toBe('not-supported');
    expect(snomed.body.issue[0].diagnostics).toContain('http://snomed.info/sct');
    const badCoding = await client.post('CodeSystem/$lookup', params({ name: 'coding', valueString: 42 }));
    expect(badCoding.status).toBe(400);
    expect((await client.get('CodeSystem/$lookup?system=x&code=y&coding=a|b&coding=c|d')).status).toBe(400);
  });
});

describe('CodeSystem/$validate-code', () => {
  test('a valid code; a wrong display stays valid with a message; an unknown code is invalid', async () => {
    const ok = await client.get(`CodeSystem/$validate-code?url=${GENDER}&code=male`);
    expect(ok.status).toBe(200);
    expect(out(ok.body, 'result')).toBe(true);
    expect(out(ok.body, 'display')).toBe('Male');
    expect(out(ok.body, 'message')).toBeUndefined();

    const display = await client.post(
      'CodeSystem/$validate-code',
      params({ name: 'coding', valueCoding: { system: GENDER, code: 'male', display: 'Mann' } })
    );
    expect(out(display.body, 'result')).toBe(true);
    expect(out(display.body, 'message')).toMatch(/display "Mann".*expected "Male"/);

    const bad = await client.get(`CodeSystem/$validate-code?url=${GENDER}&code=m`);
    expect(out(bad.body, 'result')).toBe(false);
    expect(out(bad.body, 'message')).toMatch(/Unknown code "m"/);
  });

  test('case: a caseSensitive system refuses another case, a case-insensitive one accepts it', async () => {
    expect(out((await client.get(`CodeSystem/$validate-code?url=${GENDER}&code=MALE`)).body, 'result')).toBe(false);
    const insensitive = await client.get(`CodeSystem/$validate-code?url=${FINDINGS}&code=pneu`);
    expect(out(insensitive.body, 'result')).toBe(true);
    expect(out(insensitive.body, 'display')).toBe('Pneumonia');
  });

  test('abstract codes are invalid unless abstract=true; a CodeableConcept is valid when one coding is', async () => {
    const abstract = await client.get(`CodeSystem/$validate-code?url=${ACT_CODE}&code=_ActEncounterCode`);
    expect(out(abstract.body, 'result')).toBe(false);
    expect(out(abstract.body, 'message')).toMatch(/abstract/);
    expect(out((await client.get(`CodeSystem/$validate-code?url=${ACT_CODE}&code=_ActEncounterCode&abstract=true`)).body, 'result')).toBe(true);

    const concept = await client.post(
      'CodeSystem/$validate-code',
      params(
        { name: 'url', valueUri: GENDER },
        { name: 'codeableConcept', valueCodeableConcept: { coding: [{ system: 'http://other', code: 'x' }, { system: GENDER, code: 'other' }] } }
      )
    );
    expect(out(concept.body, 'result')).toBe(true);
  });

  test('honest about what cannot be known: fragment and not-present systems', async () => {
    const inFragment = await client.get('CodeSystem/$validate-code?url=http://example.org/fhir/CodeSystem/fragment&code=F1');
    expect(out(inFragment.body, 'result')).toBe(true);
    const outsideFragment = await client.get('CodeSystem/$validate-code?url=http://example.org/fhir/CodeSystem/fragment&code=F2');
    expect(out(outsideFragment.body, 'result')).toBe(false);
    expect(out(outsideFragment.body, 'message')).toMatch(/fragment/);
    const snomed = await client.get('CodeSystem/$validate-code?url=http://snomed.info/sct&code=73211009');
    expect(out(snomed.body, 'result')).toBe(false);
    expect(out(snomed.body, 'message')).toMatch(/not loaded|not-present/);
  });

  test('a posted CodeSystem; errors: nothing to validate 400, unknown url 404', async () => {
    const posted = await client.post(
      'CodeSystem/$validate-code',
      params(
        { name: 'codeSystem', resource: { resourceType: 'CodeSystem', url: 'urn:posted', status: 'active', content: 'complete', concept: [{ code: 'a' }] } },
        { name: 'code', valueCode: 'a' }
      )
    );
    expect(out(posted.body, 'result')).toBe(true);
    expect((await client.get(`CodeSystem/$validate-code?url=${GENDER}`)).status).toBe(400);
    // "One (and only one) of the in parameters code, coding, or codeableConcept must be provided."
    const two = await client.post(
      'CodeSystem/$validate-code',
      params({ name: 'url', valueUri: GENDER }, { name: 'code', valueCode: 'male' }, { name: 'coding', valueCoding: { system: GENDER, code: 'female' } })
    );
    expect(two.status).toBe(400);
    expect(two.body.issue[0]).toMatchObject({ severity: 'error', code: 'invalid', diagnostics: expect.stringMatching(/found code and coding/) });
    expect((await client.get(`CodeSystem/$validate-code?url=${GENDER}&code=male&coding=${GENDER}|female`)).status).toBe(400);
    expect((await client.get('CodeSystem/$validate-code?url=http://example.org/unknown&code=a')).status).toBe(404);
  });
});

describe('$subsumes', () => {
  test('equivalent, subsumes, subsumed-by and not-subsumed in a nested hierarchy', async () => {
    const outcome = async (a: string, b: string, system = FINDINGS) =>
      out((await client.get(`CodeSystem/$subsumes?system=${system}&codeA=${a}&codeB=${b}`)).body, 'outcome');
    expect(await outcome('INF', 'INF')).toBe('equivalent');
    expect(await outcome('INF', 'PNEU')).toBe('subsumes');
    expect(await outcome('_finding', 'ASTH')).toBe('subsumes');
    expect(await outcome('ASTH', 'RESP')).toBe('subsumed-by');
    expect(await outcome('ASTH', 'PNEU')).toBe('not-subsumed');
    // Polyhierarchy through parent properties.
    expect(await outcome('C', 'B', 'http://example.org/fhir/CodeSystem/findings-poly')).toBe('subsumed-by');
    expect(await outcome('A', 'C', 'http://example.org/fhir/CodeSystem/findings-poly')).toBe('subsumes');
    // v3: IMP (inpatient encounter) is below _ActEncounterCode.
    expect(await outcome('_ActEncounterCode', 'IMP', ACT_CODE)).toBe('subsumes');
  });

  test('POST with codings; errors: missing code 400, codings of two systems 400, unknown code 404', async () => {
    const res = await client.post(
      'CodeSystem/$subsumes',
      params({ name: 'codingA', valueCoding: { system: FINDINGS, code: 'PNEU' } }, { name: 'codingB', valueCoding: { system: FINDINGS, code: 'INF' } })
    );
    expect(res.status).toBe(200);
    expect(out(res.body, 'outcome')).toBe('subsumed-by');
    expect((await client.get(`CodeSystem/$subsumes?system=${FINDINGS}&codeA=INF`)).status).toBe(400);
    const mixed = await client.post(
      'CodeSystem/$subsumes',
      params({ name: 'codingA', valueCoding: { system: FINDINGS, code: 'PNEU' } }, { name: 'codingB', valueCoding: { system: GENDER, code: 'male' } })
    );
    expect(mixed.status).toBe(400);
    expect((await client.get(`CodeSystem/$subsumes?system=${FINDINGS}&codeA=INF&codeB=NOPE`)).status).toBe(404);
    expect((await client.get('CodeSystem/$subsumes?system=http://snomed.info/sct&codeA=1&codeB=2')).status).toBe(422);
  });
});

test('the operations are advertised in the CapabilityStatement', async () => {
  const cs = (await client.get('metadata')).body;
  const ops = (type: string) => cs.rest[0].resource.find((r: any) => r.type === type).operation.map((o: any) => o.name);
  expect(ops('CodeSystem')).toEqual(expect.arrayContaining(['lookup', 'validate-code', 'subsumes']));
  expect(ops('ValueSet')).toEqual(expect.arrayContaining(['expand', 'validate-code']));
  expect(ops('ConceptMap')).toContain('translate');
  expect(ops('NamingSystem')).toContain('preferred-id');
});
