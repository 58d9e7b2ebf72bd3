/**
 * Conformance probes of search against FHIR R4 search.html.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import type { FhirTestClient } from '../helpers/fhir-client';
import { keyedFixtures } from '../helpers/keyed-fixtures';

let server: TestServer;
let client: FhirTestClient;
const { ids, create, search } = keyedFixtures(() => client);

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
  await create('p1', { resourceType: 'Patient', name: [{ family: 'A\\B', given: ['x,y'] }], birthDate: '1970-01-01', deceasedDateTime: '2020-05-05T10:00:00+02:00', identifier: [{ system: 'urn:s', value: 'a|b' }] });
  await create('p2', { resourceType: 'Patient', name: [{ family: 'Mc-Donald' }], birthDate: '1971' });
  await create('r35', { resourceType: 'RiskAssessment', status: 'final', subject: { reference: `Patient/${ids.p1}` }, prediction: [{ probabilityDecimal: 0.35 }] });
  await create('r100', { resourceType: 'RiskAssessment', status: 'final', subject: { reference: `Patient/${ids.p1}` }, prediction: [{ probabilityDecimal: 100 }] });
  await create('o1', { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '29463-7' }] }, subject: { reference: `Patient/${ids.p1}` }, effectiveInstant: '2021-01-01T00:00:00.500Z', valueQuantity: { value: 70.5, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' } });
  await create('piped', { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'urn:x', code: 'a|b' }] }, valueQuantity: { value: 5 } });
  await create('dollar', { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'urn:x', code: 'c' }] }, valueString: 'US$ 5, paid' });
  await create('q1', { resourceType: 'Questionnaire', status: 'active', url: 'http://ex.org/Questionnaire/q' , version: '1'});
  await create('qr', { resourceType: 'QuestionnaireResponse', status: 'completed', questionnaire: 'http://ex.org/Questionnaire/q|1' });
});
afterAll(async () => server.close());

describe('number and quantity', () => {
  test('the implicit range of a value is exact: 0.4 is [0.35, 0.45), whatever binary floating point makes of it', async () => {
    expect(await search('RiskAssessment?probability=0.4')).toEqual(['r35']);
    expect(await search('RiskAssessment?probability=0.3')).toEqual([]);
    expect(await search('RiskAssessment?probability=ne0.3')).toEqual(['r100', 'r35']);
    expect(await search('RiskAssessment?probability=ne0.4')).toEqual(['r100']);
    expect(await search('RiskAssessment?probability=1e2')).toEqual(['r100']);
    expect(await search('RiskAssessment?probability=0.35000000000000000001')).toEqual([]);
    expect(await search('RiskAssessment?probability=ge0.35')).toEqual(['r100', 'r35']);
  });
  test('a quantity with more parts than number|system|code is a 400, not a search for its first three', async () => {
    expect(await search('Observation?value-quantity=70.5|http://unitsofmeasure.org|kg')).toEqual(['o1']);
    expect(await search('Observation?value-quantity=70.5||k\\|g')).toEqual([]);
    const res = await client.get('Observation?value-quantity=70.5|http://unitsofmeasure.org|kg|x');
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(/number\|system\|code/);
  });
});

describe('escaping (search.html: \\, \\| \\$ and \\\\ stand for the character)', () => {
  test('string values are unescaped; an escaped backslash does not escape the comma after it', async () => {
    expect(await search('Patient?given=x\\,y')).toEqual(['p1']);
    expect(await search('Patient?family=A\\\\B')).toEqual(['p1']);
    expect(await search('Patient?family:exact=A\\\\B')).toEqual(['p1']);
    // "A\\,Mc": the value A\ OR the value Mc.
    expect(await search('Patient?family=A\\\\,Mc')).toEqual(['p1', 'p2']);
  });
  test('composite values: only \\$ is unescaped when splitting, so an escaped | stays in its code', async () => {
    expect(await search('Observation?code-value-quantity=urn:x|a\\|b$5')).toEqual(['piped']);
    expect(await search('Observation?code-value-quantity=a\\|b$5')).toEqual(['piped']);
    expect(await search('Observation?code-value-quantity=urn:x|a\\|b$6')).toEqual([]);
    expect(await search('Observation?code-value-string=c$us\\$ 5\\, p')).toEqual(['dollar']);
  });
  test('token values: an escaped | is part of the code', async () => {
    expect(await search('Patient?identifier=urn:s|a\\|b')).toEqual(['p1']);
    expect(await search('Patient?identifier=a\\|b')).toEqual(['p1']);
  });
});

describe('result parameters', () => {
  test('_contained and _containedType other than their defaults: ignored with a warning and left out of the self link, 400 under handling=strict', async () => {
    for (const q of ['_contained=true', '_containedType=contained']) {
      const res = await client.get(`Patient?family=mc&${q}`);
      expect(res.status).toBe(200);
      expect(res.body.link[0].url).toBe(`${server.baseUrl}/Patient?family=mc`);
      expect(res.body.entry.find((e: any) => e.search.mode === 'outcome').resource.issue[0]).toMatchObject({ severity: 'warning', code: 'not-supported' });
      expect((await client.get(`Patient?family=mc&${q}`, { Prefer: 'handling=strict' })).status).toBe(400);
    }
    const defaults = await client.get('Patient?family=mc&_contained=false&_containedType=container');
    expect(defaults.status).toBe(200);
    expect(defaults.body.entry.every((e: any) => e.search.mode === 'match')).toBe(true);
  });
  test('a modifier on a result parameter other than :iterate on _include/_revinclude is a 400, not silently dropped', async () => {
    for (const q of ['_sort:desc=birthdate', '_include:foo=Patient:organization', '_count:exact=1', '_revinclude:text=Observation:subject']) {
      const res = await client.get(`Patient?${q}`);
      expect({ q, status: res.status }).toEqual({ q, status: 400 });
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
    expect((await client.get('Patient?_include:iterate=Patient:organization&_revinclude:recurse=Observation:subject')).status).toBe(200);
  });
});

describe('_has', () => {
  test('an unknown parameter at its end is handled like any unknown parameter: a warning, or 400 under handling=strict', async () => {
    const res = await client.get('Patient?_has:Observation:patient:nosuch=1&family=mc');
    expect(res.status).toBe(200);
    expect(res.body.link[0].url).toBe(`${server.baseUrl}/Patient?family=mc`);
    expect(res.body.entry.find((e: any) => e.search.mode === 'outcome').resource.issue[0].diagnostics).toMatch(/nosuch/);
    const strict = await client.get('Patient?_has:Observation:patient:nosuch=1', { Prefer: 'handling=strict' });
    expect(strict.status).toBe(400);
    // Nested, or chained inside: the same.
    for (const q of ['Organization?_has:Patient:organization:_has:Observation:patient:nosuch=1', 'Organization?_has:Patient:organization:general-practitioner.nosuch=1']) {
      const lenient = await client.get(q);
      expect({ q, status: lenient.status }).toEqual({ q, status: 200 });
      expect(lenient.body.link[0].url).toBe(`${server.baseUrl}/Organization`);
      expect(lenient.body.entry.find((e: any) => e.search.mode === 'outcome').resource.issue[0].diagnostics).toMatch(/nosuch/);
      expect((await client.get(q, { Prefer: 'handling=strict' })).status).toBe(400);
    }
    // A malformed _has stays a 400 either way.
    expect((await client.get('Patient?_has:Observation:nosuch:code=1')).status).toBe(400);
  });
});

describe('the self link', () => {
  test('shows the _count used: capped at MAX_PAGE_SIZE, the last one when repeated', async () => {
    const capped = await client.get('Patient?_count=5000&family=mc');
    expect(capped.body.link[0].url).toBe(`${server.baseUrl}/Patient?_count=1000&family=mc`);
    const repeated = await client.get('Patient?_count=5&_count=1&family=mc');
    expect(repeated.body.link[0].url).toBe(`${server.baseUrl}/Patient?_count=1&family=mc`);
  });
});

describe('empty parameters', () => {
  test('are ignored by a search (search.html: "Empty parameters are not an error") and left out of the self link', async () => {
    for (const q of ['family=', 'family=,', 'family:exact=', 'birthdate=', 'organization.name=', '_has:Observation:patient:code=', '_count=', '_sort=', '_summary=', '_include=', '_total=', '_elements=']) {
      const res = await client.get(`Patient?${q}&family=mc`);
      expect({ q, status: res.status }).toEqual({ q, status: 200 });
      expect(res.body.link[0].url).toBe(`${server.baseUrl}/Patient?family=mc`);
      expect(res.body.entry.map((e: any) => `${e.search.mode}:${e.resource.id}`)).toEqual([`match:${ids.p2}`]);
    }
    expect((await search('Patient?family=')).length).toBe(2);
    // System search: an empty _type is no _type.
    const system = await client.get('?_type=&family=mc');
    expect(system.status).toBe(200);
    expect(system.body.entry.map((e: any) => e.resource.id)).toEqual([ids.p2]);
    expect(system.body.link[0].url).toBe(`${server.baseUrl}/?family=mc`);
  });
  test('in conditional criteria they stay a 400: ignoring one would widen what the interaction acts on', async () => {
    const res = await client.put('Patient?family=&identifier=urn:s|none', { resourceType: 'Patient', name: [{ family: 'Conditional' }] });
    expect(res.status).toBe(400);
    const create = await client.post('Patient', { resourceType: 'Patient' }, { 'If-None-Exist': 'family=' });
    expect(create.status).toBe(400);
  });
});
