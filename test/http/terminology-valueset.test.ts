/**
 * ValueSet/$expand and ValueSet/$validate-code over the built-in R4 value sets and the test
 * fixtures (loaded as a profile pack), GET and POST, compose rules, paging and text filter,
 * value sets needing external terminologies, and the size limit.
 */
import type { TestServer } from '../helpers/server';
import type { FhirTestClient } from '../helpers/fhir-client';
import { out, params, startTerminologyServer } from '../helpers/terminology';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  ({ server, client } = await startTerminologyServer());
});
afterAll(async () => server.close());

const VS = 'http://hl7.org/fhir/ValueSet/';
const EX = 'http://example.org/fhir/ValueSet/';
const FINDINGS = 'http://example.org/fhir/CodeSystem/findings';
const codes = (res: any) => (res.body.expansion?.contains ?? []).map((c: any) => c.code);
const expandUrl = (url: string, query = '') => client.get(`ValueSet/$expand?url=${encodeURIComponent(url)}${query}`);

describe('$expand', () => {
  test('administrative-gender: a whole code system, with total, version and used-codesystem', async () => {
    const res = await expandUrl(VS + 'administrative-gender');
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('ValueSet');
    expect(res.body.url).toBe(VS + 'administrative-gender');
    expect(res.body.compose).toBeUndefined();
    expect(res.body.expansion.total).toBe(4);
    expect(res.body.expansion.contains).toContainEqual({
      system: 'http://hl7.org/fhir/administrative-gender',
      version: '4.0.1',
      code: 'female',
      display: 'Female',
    });
    expect(res.body.expansion.timestamp).toBeDefined();
    expect(res.body.expansion.identifier).toMatch(/^urn:uuid:/);
    expect(res.body.expansion.parameter).toContainEqual({ name: 'used-codesystem', valueUri: 'http://hl7.org/fhir/administrative-gender|4.0.1' });
  });

  test('marital-status mixes all of v3 MaritalStatus with one NullFlavor code', async () => {
    const res = await expandUrl(VS + 'marital-status');
    expect(res.status).toBe(200);
    const contains = res.body.expansion.contains;
    expect(res.body.expansion.total).toBe(11);
    expect(contains.filter((c: any) => c.system === 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus')).toHaveLength(10);
    expect(contains).toContainEqual(expect.objectContaining({ system: 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor', code: 'UNK', display: 'unknown' }));
    expect(codes(res)).not.toContain('NI');
  });

  test('observation-status includes nested concepts (corrected under amended)', async () => {
    const res = await expandUrl(VS + 'observation-status');
    expect(codes(res)).toEqual(['registered', 'preliminary', 'final', 'amended', 'corrected', 'cancelled', 'entered-in-error', 'unknown']);
  });

  test('v3 ActEncounterCode: an is-a filter minus the abstract root it names', async () => {
    const res = await expandUrl('http://terminology.hl7.org/ValueSet/v3-ActEncounterCode');
    expect(res.status).toBe(200);
    expect(codes(res)).toEqual(expect.arrayContaining(['AMB', 'EMER', 'IMP', 'ACUTE', 'NONAC', 'VR']));
    expect(codes(res)).not.toContain('_ActEncounterCode');
    expect(codes(res)).not.toContain('_ActAccountCode');
  });

  test('compose rules on fixtures: is-a, property =, regex, nested import with exclude, intersection', async () => {
    expect(codes(await expandUrl(EX + 'infections'))).toEqual(['INF', 'PNEU', 'UTI', 'OLDINF']);
    expect(codes(await expandUrl(EX + 'low-severity'))).toEqual(['UTI', 'ASTH']);
    expect(codes(await expandUrl(EX + 'regex'))).toEqual(['PNEU', 'RESP', 'ASTH']);
    const nested = await expandUrl(EX + 'nested');
    expect(codes(nested)).toEqual(['INF', 'PNEU', 'OLDINF', 'OTHER']);
    // The value set's own display wins over the code system's.
    expect(nested.body.expansion.contains.find((c: any) => c.code === 'OTHER').display).toBe('Something else');
    expect(codes(await expandUrl(EX + 'intersection'))).toEqual(['UTI']);
  });

  test('filter, count and offset page the expansion; total counts the filtered codes', async () => {
    const page = await expandUrl(VS + 'marital-status', '&count=3&offset=2');
    expect(page.body.expansion.total).toBe(11);
    expect(page.body.expansion.offset).toBe(2);
    expect(page.body.expansion.contains).toHaveLength(3);
    const first = await expandUrl(VS + 'marital-status', '&count=5');
    expect(codes(page)).toEqual(codes(first).slice(2, 5));

    const filtered = await expandUrl(VS + 'marital-status', '&filter=marr');
    expect(codes(filtered).sort()).toEqual(['M', 'S', 'U']); // Married, Never Married, unmarried
    expect(filtered.body.expansion.total).toBe(3);
    expect(codes(await expandUrl(VS + 'marital-status', '&filter=never%20marr'))).toEqual(['S']);
    expect(filtered.body.expansion.parameter).toContainEqual({ name: 'filter', valueString: 'marr' });
    // Chinese text matches by substring; filter reads designations too.
    expect(codes(await expandUrl('http://fhir-server.dev/cn/ValueSet/gender', '&filter=' + encodeURIComponent('女')))).toEqual(['2']);
    expect(codes(await expandUrl('http://fhir-server.dev/cn/ValueSet/gender', '&filter=stated'))).toEqual(['9']);
  });

  test('activeOnly drops retired codes, includeDesignations and displayLanguage shape each entry', async () => {
    const all = await expandUrl(EX + 'infections');
    expect(all.body.expansion.contains.find((c: any) => c.code === 'OLDINF').inactive).toBe(true);
    expect(codes(await expandUrl(EX + 'infections', '&activeOnly=true'))).toEqual(['INF', 'PNEU', 'UTI']);
    const gender = 'http://fhir-server.dev/cn/ValueSet/gender';
    expect((await expandUrl(gender)).body.expansion.contains[1].designation).toBeUndefined();
    const withDesignations = await expandUrl(gender, '&includeDesignations=true');
    expect(withDesignations.body.expansion.contains[1].designation).toEqual([{ language: 'en', value: 'Male' }]);
    const english = await expandUrl(gender, '&displayLanguage=en');
    expect(english.body.expansion.contains.map((c: any) => c.display)).toEqual(['Unknown', 'Male', 'Female', 'Not stated']);
  });

  test('abstract concepts are listed as abstract', async () => {
    const res = await client.post(
      'ValueSet/$expand',
      params({
        name: 'valueSet',
        resource: { resourceType: 'ValueSet', status: 'active', compose: { include: [{ system: FINDINGS, filter: [{ property: 'concept', op: 'is-a', value: '_finding' }] }] } },
      })
    );
    expect(res.status).toBe(200);
    expect(res.body.expansion.contains[0]).toMatchObject({ code: '_finding', abstract: true });
  });

  test('POST forms: a posted valueSet with concept list and an exclude; url as a Parameters value', async () => {
    const posted = await client.post(
      'ValueSet/$expand',
      params(
        {
          name: 'valueSet',
          resource: {
            resourceType: 'ValueSet',
            status: 'draft',
            compose: {
              include: [{ system: 'http://hl7.org/fhir/administrative-gender' }, { valueSet: [EX + 'low-severity'] }],
              exclude: [{ system: 'http://hl7.org/fhir/administrative-gender', concept: [{ code: 'other' }] }],
            },
          },
        },
        { name: 'count', valueInteger: 10 }
      )
    );
    expect(posted.status).toBe(200);
    expect(codes(posted)).toEqual(['male', 'female', 'unknown', 'UTI', 'ASTH']);
    const byUrl = await client.post('ValueSet/$expand', params({ name: 'url', valueUri: VS + 'administrative-gender' }));
    expect(byUrl.body.expansion.total).toBe(4);
  });

  test('an enumerated code a complete code system does not define: left out of the expansion; a warning on the definition', async () => {
    const GENDER = 'http://hl7.org/fhir/administrative-gender';
    const vs = { resourceType: 'ValueSet', status: 'active', compose: { include: [{ system: GENDER, concept: [{ code: 'male' }, { code: 'bogus' }] }] } };
    // As the HL7 terminology ecosystem tests expect (simple-expand-enum-bad): 200, the code left out, total without it.
    const res = await client.post('ValueSet/$expand', params({ name: 'valueSet', resource: vs }));
    expect(res.status).toBe(200);
    expect(codes(res)).toEqual(['male']);
    expect(res.body.expansion.total).toBe(1);
    // The definition names a code that does not exist: $validate (and every write) says so, as a warning.
    const checked = await client.post('ValueSet/$validate', vs);
    expect(checked.status).toBe(200);
    const warnings = checked.body.issue.filter((i: any) => i.code === 'code-invalid');
    expect(warnings).toEqual([
      {
        severity: 'warning',
        code: 'code-invalid',
        expression: ['ValueSet.compose.include[0].concept[1].code'],
        diagnostics: expect.stringMatching(/Unknown code "bogus".*administrative-gender.*not part of the value set's expansion/),
      },
    ]);
    const stored = await client.post('ValueSet', vs);
    expect(stored.status).toBe(201);
    expect(stored.body.id).toBeDefined();
    // A code system not loaded here (SNOMED CT) is not judged.
    const snomed = await client.post('ValueSet/$validate', { ...vs, compose: { include: [{ system: 'http://snomed.info/sct', concept: [{ code: '000000' }] }] } });
    expect(snomed.body.issue.filter((i: any) => i.code === 'code-invalid')).toEqual([]);
  });

  test('a value set needing SNOMED CT or LOINC: 422 naming the system, never a partial expansion', async () => {
    const condition = await expandUrl(VS + 'condition-code');
    expect(condition.status).toBe(422);
    expect(condition.body.resourceType).toBe('OperationOutcome');
    expect(condition.body.issue[0].code).toBe('not-supported');
    expect(condition.body.issue[0].diagnostics).toContain('http://snomed.info/sct');
    // Half of this one is local, half SNOMED CT: still refused as a whole.
    const mixed = await expandUrl(EX + 'mixed-snomed');
    expect(mixed.status).toBe(422);
    const loinc = await expandUrl(VS + 'observation-codes');
    expect(loinc.status).toBe(422);
    expect(loinc.body.issue[0].diagnostics).toContain('http://loinc.org');
    const fragment = await expandUrl(EX + 'fragment');
    expect(fragment.status).toBe(422);
    expect(fragment.body.issue[0].diagnostics).toMatch(/fragment/);
  });

  test('a value set that only enumerates codes of an unloaded system still expands (languages)', async () => {
    const res = await expandUrl(VS + 'languages');
    expect(res.status).toBe(200);
    expect(res.body.expansion.contains).toContainEqual(expect.objectContaining({ system: 'urn:ietf:bcp:47', code: 'zh-CN' }));
  });

  test('errors: no value set 400, unknown url 404, bad count 400, unsafe regex 422, import cycle 422', async () => {
    expect((await client.get('ValueSet/$expand')).status).toBe(400);
    const unknown = await expandUrl('http://example.org/no-such-value-set');
    expect(unknown.status).toBe(404);
    expect(unknown.body.issue[0].code).toBe('not-found');
    expect((await expandUrl(VS + 'marital-status', '&count=-1')).status).toBe(400);
    expect((await expandUrl(VS + 'marital-status', '&activeOnly=maybe')).status).toBe(400);
    const regex = await client.post(
      'ValueSet/$expand',
      params({ name: 'valueSet', resource: { resourceType: 'ValueSet', status: 'active', compose: { include: [{ system: FINDINGS, filter: [{ property: 'code', op: 'regex', value: '(A+)+B' }] }] } } })
    );
    expect(regex.status).toBe(422);
    expect(regex.body.issue[0].diagnostics).toMatch(/regex/);
    const cycle = await client.post(
      'ValueSet/$expand',
      params({ name: 'valueSet', resource: { resourceType: 'ValueSet', url: EX + 'self', status: 'active', compose: { include: [{ valueSet: [EX + 'self'] }] } } })
    );
    expect(cycle.status).toBe(422);
    expect((await client.post('ValueSet/$expand', params({ name: 'valueSet', resource: { resourceType: 'Patient' } }))).status).toBe(400);
    // A malformed posted value set is refused, not half-understood.
    const malformed = await client.post('ValueSet/$expand', params({ name: 'valueSet', resource: { resourceType: 'ValueSet', status: 'active', compose: { include: 5 } } }));
    expect(malformed.status).toBe(400);
    expect(malformed.body.issue[0].diagnostics).toMatch(/valueSet/);
  });

  test('an expansion over TERMINOLOGY_MAX_EXPANSION is refused as too-costly', async () => {
    const { server: small, client: smallClient } = await startTerminologyServer({ TERMINOLOGY_MAX_EXPANSION: '5' });
    try {
      const res = await smallClient.get(`ValueSet/$expand?url=${VS}marital-status`);
      expect(res.status).toBe(422);
      expect(res.body.issue[0].code).toBe('too-costly');
      expect((await smallClient.get(`ValueSet/$expand?url=${VS}administrative-gender`)).status).toBe(200);
    } finally {
      await small.close();
    }
  });
});

describe('ValueSet/$validate-code', () => {
  const validate = (query: string) => client.get(`ValueSet/$validate-code?${query}`);

  test('GET with url, system and code; wrong code; code from another system', async () => {
    const ok = await validate(`url=${VS}marital-status&system=http://terminology.hl7.org/CodeSystem/v3-NullFlavor&code=UNK`);
    expect(ok.status).toBe(200);
    expect(out(ok.body, 'result')).toBe(true);
    expect(out(ok.body, 'display')).toBe('unknown');
    // NI is a NullFlavor code but not in marital-status.
    const ni = await validate(`url=${VS}marital-status&system=http://terminology.hl7.org/CodeSystem/v3-NullFlavor&code=NI`);
    expect(out(ni.body, 'result')).toBe(false);
    expect(out(ni.body, 'message')).toMatch(/not in the value set/);
    const bad = await validate(`url=${VS}administrative-gender&system=http://hl7.org/fhir/administrative-gender&code=F`);
    expect(out(bad.body, 'result')).toBe(false);
  });

  test('POST with coding (display checked) and codeableConcept; a coding without a system is matched in the value set', async () => {
    const display = await client.post(
      'ValueSet/$validate-code',
      params({ name: 'url', valueUri: VS + 'observation-status' }, { name: 'coding', valueCoding: { system: 'http://hl7.org/fhir/observation-status', code: 'final', display: 'Done' } })
    );
    expect(out(display.body, 'result')).toBe(true);
    expect(out(display.body, 'message')).toMatch(/expected "Final"/);
    const concept = await client.post(
      'ValueSet/$validate-code',
      params(
        { name: 'url', valueUri: VS + 'administrative-gender' },
        { name: 'codeableConcept', valueCodeableConcept: { coding: [{ system: 'urn:x', code: 'y' }, { system: 'http://hl7.org/fhir/administrative-gender', code: 'other' }] } }
      )
    );
    expect(out(concept.body, 'result')).toBe(true);
    expect(out((await validate(`url=${VS}administrative-gender&coding=|male`)).body, 'result')).toBe(true);
    expect(out((await validate(`url=${VS}administrative-gender&coding=|nope`)).body, 'result')).toBe(false);
  });

  test('hierarchies and nested value sets decide membership without expanding', async () => {
    const inVs = async (url: string, code: string, system = FINDINGS) => out((await validate(`url=${url}&system=${system}&code=${code}`)).body, 'result');
    expect(await inVs(EX + 'infections', 'PNEU')).toBe(true);
    expect(await inVs(EX + 'infections', 'ASTH')).toBe(false);
    expect(await inVs(EX + 'nested', 'UTI')).toBe(false); // excluded
    expect(await inVs(EX + 'nested', 'OTHER')).toBe(true);
    expect(await inVs(EX + 'intersection', 'UTI')).toBe(true);
    expect(await inVs(EX + 'intersection', 'PNEU')).toBe(false);
    expect(await inVs('http://terminology.hl7.org/ValueSet/v3-ActEncounterCode', 'IMP', 'http://terminology.hl7.org/CodeSystem/v3-ActCode')).toBe(true);
    // A code given under the OID alias of its system.
    expect(await inVs('http://fhir-server.dev/cn/ValueSet/gender', '1', 'http://fhir-server.dev/cn/CodeSystem/gb-t-2261-1')).toBe(true);
  });

  test('SNOMED CT: what cannot be decided says so; enumerated codes of an unloaded system are decided', async () => {
    const res = await validate(`url=${VS}condition-code&system=http://snomed.info/sct&code=38341003`);
    expect(res.status).toBe(200);
    expect(out(res.body, 'result')).toBe(false);
    expect(out(res.body, 'message')).toMatch(/Cannot decide.*snomed/i);
    // condition-code lists 160245001 explicitly, so that one is known to be a member.
    expect(out((await validate(`url=${VS}condition-code&system=http://snomed.info/sct&code=160245001`)).body, 'result')).toBe(true);
    // mixed-snomed: the local half decides ASTH.
    expect(out((await validate(`url=${EX}mixed-snomed&system=${FINDINGS}&code=ASTH`)).body, 'result')).toBe(true);
  });

  test('abstract codes are refused unless abstract=true', async () => {
    const url = `url=${EX}nested&system=${FINDINGS}&code=INF`;
    expect(out((await validate(url)).body, 'result')).toBe(true);
    const vs = { resourceType: 'ValueSet', status: 'active', compose: { include: [{ system: FINDINGS }] } };
    const abstract = await client.post('ValueSet/$validate-code', params({ name: 'valueSet', resource: vs }, { name: 'code', valueCode: '_finding' }, { name: 'system', valueUri: FINDINGS }));
    expect(out(abstract.body, 'result')).toBe(false);
    const allowed = await client.post(
      'ValueSet/$validate-code',
      params({ name: 'valueSet', resource: vs }, { name: 'code', valueCode: '_finding' }, { name: 'system', valueUri: FINDINGS }, { name: 'abstract', valueBoolean: true })
    );
    expect(out(allowed.body, 'result')).toBe(true);
  });

  test('a code needs a system or a context: 400 otherwise', async () => {
    const res = await validate(`url=${VS}administrative-gender&code=male`);
    expect(res.status).toBe(400);
    expect(res.body.issue[0]).toMatchObject({ severity: 'error', code: 'invalid', expression: ['system'], diagnostics: expect.stringMatching(/If a code is provided, a system or a context must be provided/) });
    const posted = await client.post('ValueSet/$validate-code', params({ name: 'url', valueUri: VS + 'administrative-gender' }, { name: 'code', valueCode: 'male' }));
    expect(posted.status).toBe(400);
    const context = await validate(`url=${VS}administrative-gender&code=male&context=${encodeURIComponent('http://hl7.org/fhir/StructureDefinition/Patient#Patient.gender')}`);
    expect(context.status).toBe(200);
    expect(out(context.body, 'result')).toBe(true);
  });

  test('one (and only one) of code, coding and codeableConcept: 400 for two or three', async () => {
    const GENDER = 'http://hl7.org/fhir/administrative-gender';
    const two = await client.post(
      'ValueSet/$validate-code',
      params(
        { name: 'url', valueUri: VS + 'administrative-gender' },
        { name: 'code', valueCode: 'male' },
        { name: 'system', valueUri: GENDER },
        { name: 'coding', valueCoding: { system: GENDER, code: 'female' } }
      )
    );
    expect(two.status).toBe(400);
    expect(two.body.resourceType).toBe('OperationOutcome');
    expect(two.body.issue[0]).toMatchObject({ severity: 'error', code: 'invalid', expression: ['code', 'coding'], diagnostics: expect.stringMatching(/one \(and only one\) of code, coding and codeableConcept; found code and coding/) });
    // Also when they agree, and in a GET.
    const get = await validate(`url=${VS}administrative-gender&system=${GENDER}&code=male&coding=${GENDER}|male`);
    expect(get.status).toBe(400);
    expect(get.body.issue[0].diagnostics).toMatch(/found code and coding/);
    const conceptAndCoding = await client.post(
      'ValueSet/$validate-code',
      params({ name: 'url', valueUri: VS + 'administrative-gender' }, { name: 'coding', valueCoding: { system: GENDER, code: 'female' } }, { name: 'codeableConcept', valueCodeableConcept: { coding: [{ system: GENDER, code: 'male' }] } })
    );
    expect(conceptAndCoding.status).toBe(400);
    expect(conceptAndCoding.body.issue[0].diagnostics).toMatch(/found coding and codeableConcept/);
  });

  test('errors: nothing to validate 400, unknown url 404', async () => {
    expect((await validate(`url=${VS}marital-status`)).status).toBe(400);
    expect((await validate('url=http://example.org/none&code=a&system=b')).status).toBe(404);
  });
});

describe('TerminologyService (what validation and search call)', () => {
  test('validateCode, validateCodeInSystem and expandCodes on built-in content', async () => {
    const t = server.services.terminology;
    expect(await t.validateCode(VS + 'administrative-gender', { code: 'female' })).toMatchObject({ result: true, display: 'Female' });
    expect(await t.validateCode(VS + 'administrative-gender|4.0.1', { system: 'http://hl7.org/fhir/administrative-gender', code: 'F' })).toMatchObject({ result: false });
    const undecided = await t.validateCode(VS + 'condition-code', { system: 'http://snomed.info/sct', code: '38341003' });
    expect(undecided).toMatchObject({ result: false, unknown: true });
    expect(await t.validateCode('http://example.org/unknown-vs', { system: 's', code: 'c' })).toMatchObject({ result: false, unknown: true });
    expect(await t.validateCode(VS + 'administrative-gender|9.9', { code: 'female' })).toMatchObject({ result: false, unknown: true });

    expect(await t.validateCodeInSystem({ system: 'http://hl7.org/fhir/administrative-gender', code: 'male', display: 'Man' })).toMatchObject({
      result: true,
      message: expect.stringMatching(/expected "Male"/),
    });
    expect(await t.validateCodeInSystem({ system: 'http://hl7.org/fhir/administrative-gender', code: 'man' })).toEqual(
      expect.objectContaining({ result: false, message: expect.any(String) })
    );
    expect((await t.validateCodeInSystem({ system: 'http://hl7.org/fhir/administrative-gender', code: 'man' })).unknown).toBeUndefined();
    expect(await t.validateCodeInSystem({ system: 'http://loinc.org', code: '8867-4' })).toMatchObject({ result: false, unknown: true });
    expect(await t.validateCodeInSystem({ system: 'http://example.org/fhir/CodeSystem/fragment', code: 'F9' })).toMatchObject({ result: false, unknown: true });

    expect(await t.expandCodes(EX + 'intersection')).toEqual([{ system: FINDINGS, code: 'UTI' }]);
    expect(await t.expandCodes(VS + 'condition-code')).toBeUndefined();
    expect(await t.expandCodes('http://example.org/unknown-vs')).toBeUndefined();
  });
});
