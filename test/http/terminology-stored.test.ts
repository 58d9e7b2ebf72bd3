/**
 * Terminology resources that clients store: used by every operation, at type and instance
 * level, and followed on the very next request after an update, also by another server
 * process on the same database (WORKERS > 1). Also $translate and $preferred-id.
 */
import { loadConfig } from '../../src/config';
import { startServer, type RunningServer } from '../../src/server';
import { clientCredentialsToken, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';
import { all, out, params, part, startTerminologyServer, TERMINOLOGY_FIXTURES } from '../helpers/terminology';

let server: TestServer;
let client: FhirTestClient;
/** A second server process on the same database, as a second worker would be. */
let other: RunningServer;
let otherClient: FhirTestClient;

beforeAll(async () => {
  ({ server, client } = await startTerminologyServer());
  other = await startServer(
    loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', DATABASE_URL: server.databaseUrl, PROFILES_DIR: TERMINOLOGY_FIXTURES })
  );
  const token = await clientCredentialsToken(other.baseUrl, 'admin', server.adminSecret!, 'system/*.cruds');
  otherClient = new FhirTestClient(other.baseUrl, { Authorization: `Bearer ${token}` });
});
afterAll(async () => {
  await other.close();
  await server.close();
});

const CS_URL = 'http://hospital.example.org/CodeSystem/wards';
const VS_URL = 'http://hospital.example.org/ValueSet/wards';

const codeSystem = (concepts: object[]) => ({
  resourceType: 'CodeSystem',
  id: 'wards',
  url: CS_URL,
  version: '1',
  name: 'Wards',
  status: 'active',
  content: 'complete',
  caseSensitive: true,
  concept: concepts,
});
const WARDS = [
  { code: 'MED', display: 'Medicine', concept: [{ code: 'CARD', display: 'Cardiology' }, { code: 'NEPH', display: 'Nephrology' }] },
  { code: 'SURG', display: 'Surgery' },
];
const valueSet = (include: object) => ({ resourceType: 'ValueSet', id: 'wards', url: VS_URL, status: 'active', compose: { include: [include] } });
const codes = (res: any) => (res.body.expansion?.contains ?? []).map((c: any) => c.code);
const generation = async () => Number((await server.pool.query('SELECT generation FROM terminology_generation')).rows[0].generation);

test('a stored CodeSystem and ValueSet serve every operation, type and instance level', async () => {
  const before = await generation();
  expect((await client.put('CodeSystem/wards', codeSystem(WARDS))).status).toBe(201);
  expect((await client.put('ValueSet/wards', valueSet({ system: CS_URL, filter: [{ property: 'concept', op: 'is-a', value: 'MED' }] }))).status).toBe(201);
  // Each terminology write bumped the generation in its own transaction.
  expect(await generation()).toBe(before + 2);
  await client.post('Patient', { resourceType: 'Patient' });
  expect(await generation()).toBe(before + 2);

  expect(codes(await client.get(`ValueSet/$expand?url=${VS_URL}`))).toEqual(['MED', 'CARD', 'NEPH']);
  expect(codes(await client.get('ValueSet/wards/$expand'))).toEqual(['MED', 'CARD', 'NEPH']);
  expect(out((await client.get(`CodeSystem/$lookup?system=${CS_URL}&code=CARD`)).body, 'display')).toBe('Cardiology');
  expect(out((await client.get('CodeSystem/wards/$lookup?code=SURG')).body, 'display')).toBe('Surgery');
  expect(out((await client.get('CodeSystem/wards/$subsumes?codeA=MED&codeB=NEPH')).body, 'outcome')).toBe('subsumes');
  expect(out((await client.get('CodeSystem/wards/$validate-code?code=SURG')).body, 'result')).toBe(true);
  expect(out((await client.get(`ValueSet/wards/$validate-code?system=${CS_URL}&code=SURG`)).body, 'result')).toBe(false);
  expect(out((await client.get(`ValueSet/$validate-code?url=${VS_URL}&system=${CS_URL}&code=CARD`)).body, 'result')).toBe(true);
  expect(await server.services.terminology.validateCode(VS_URL, { system: CS_URL, code: 'NEPH' })).toMatchObject({ result: true, display: 'Nephrology' });
  expect((await client.get('ValueSet/nope/$expand')).status).toBe(404);
  expect((await client.get('CodeSystem/nope/$lookup?code=x')).status).toBe(404);
});

test('an update is seen on the next request, in this process and in another one', async () => {
  // Both processes have the current expansion cached.
  expect(codes(await client.get(`ValueSet/$expand?url=${VS_URL}`))).toEqual(['MED', 'CARD', 'NEPH']);
  expect(codes(await otherClient.get(`ValueSet/$expand?url=${VS_URL}`))).toEqual(['MED', 'CARD', 'NEPH']);

  // The value set changes...
  expect((await client.put('ValueSet/wards', valueSet({ system: CS_URL, concept: [{ code: 'SURG' }, { code: 'CARD' }] }))).status).toBe(200);
  expect(codes(await client.get(`ValueSet/$expand?url=${VS_URL}`))).toEqual(['SURG', 'CARD']);
  expect(codes(await otherClient.get(`ValueSet/$expand?url=${VS_URL}`))).toEqual(['SURG', 'CARD']);
  expect(await other.services.terminology.validateCode(VS_URL, { system: CS_URL, code: 'MED' })).toMatchObject({ result: false });

  // ...and so does the code system it depends on, written through the other process.
  expect((await otherClient.put('ValueSet/wards', valueSet({ system: CS_URL }))).status).toBe(200);
  expect(codes(await client.get(`ValueSet/$expand?url=${VS_URL}`))).toEqual(['MED', 'CARD', 'NEPH', 'SURG']);
  expect((await otherClient.put('CodeSystem/wards', codeSystem([...WARDS, { code: 'ICU', display: 'Intensive care' }]))).status).toBe(200);
  expect(codes(await client.get(`ValueSet/$expand?url=${VS_URL}`))).toEqual(['MED', 'CARD', 'NEPH', 'SURG', 'ICU']);
  expect(await server.services.terminology.expandCodes(VS_URL)).toContainEqual({ system: CS_URL, code: 'ICU' });

  // A deleted value set is gone for both.
  expect((await client.delete('ValueSet/wards')).status).toBe(204);
  expect((await otherClient.get(`ValueSet/$expand?url=${VS_URL}`)).status).toBe(404);
  expect(await other.services.terminology.validateCode(VS_URL, { system: CS_URL, code: 'ICU' })).toMatchObject({ result: false, unknown: true });
});

test('versions: url|version picks one, without a version the latest stored wins; built-in content wins over stored', async () => {
  const url = 'http://hospital.example.org/ValueSet/versioned';
  const make = (id: string, version: string, code: string) => ({
    resourceType: 'ValueSet',
    id,
    url,
    version,
    status: 'active',
    compose: { include: [{ system: 'http://hl7.org/fhir/administrative-gender', concept: [{ code }] }] },
  });
  await client.put('ValueSet/versioned-1', make('versioned-1', '1', 'male'));
  await client.put('ValueSet/versioned-2', make('versioned-2', '2', 'female'));
  expect(codes(await client.get(`ValueSet/$expand?url=${url}|1`))).toEqual(['male']);
  expect(codes(await client.get(`ValueSet/$expand?url=${url}&valueSetVersion=1`))).toEqual(['male']);
  expect(codes(await client.get(`ValueSet/$expand?url=${url}`))).toEqual(['female']);
  const missing = await client.get(`ValueSet/$expand?url=${url}|3`);
  expect(missing.status).toBe(404);
  expect(missing.body.issue[0].diagnostics).toMatch(/version 3.*known: 1, 2|version 3.*known: 2, 1/);

  // A stored copy of a base R4 value set does not replace it.
  await client.post('ValueSet', { ...make('x', '4.0.1', 'other'), id: undefined, url: 'http://hl7.org/fhir/ValueSet/administrative-gender' });
  expect((await client.get('ValueSet/$expand?url=http://hl7.org/fhir/ValueSet/administrative-gender')).body.expansion.total).toBe(4);
});

test('instance level: a version parameter that is not the instance\'s version is 404, as at type level', async () => {
  // ValueSet/versioned-1 is version 1 (previous test); CodeSystem/wards is version 1.
  expect(codes(await client.get('ValueSet/versioned-1/$expand?valueSetVersion=1'))).toEqual(['male']);
  const expand = await client.get('ValueSet/versioned-1/$expand?valueSetVersion=9');
  expect(expand.status).toBe(404);
  expect(expand.body.issue[0]).toMatchObject({ severity: 'error', code: 'not-found', diagnostics: expect.stringMatching(/version 9 \(valueSetVersion\) of the value set .*versioned is not known here \(ValueSet\/versioned-1 is version 1\)/) });
  expect((await client.get('ValueSet/versioned-1/$validate-code?valueSetVersion=2&system=http://hl7.org/fhir/administrative-gender&code=male')).status).toBe(404);

  expect(out((await client.get('CodeSystem/wards/$lookup?code=SURG&version=1')).body, 'display')).toBe('Surgery');
  const lookup = await client.get('CodeSystem/wards/$lookup?code=SURG&version=9');
  expect(lookup.status).toBe(404);
  expect(lookup.body.issue[0].diagnostics).toMatch(/version 9 \(version\) of the code system http:\/\/hospital.example.org\/CodeSystem\/wards is not known here/);
  expect((await client.post('CodeSystem/wards/$lookup', params({ name: 'coding', valueCoding: { system: CS_URL, code: 'SURG', version: '2' } }))).status).toBe(404);
  expect((await client.get('CodeSystem/wards/$validate-code?code=SURG&version=9')).status).toBe(404);
  expect((await client.get('CodeSystem/wards/$subsumes?codeA=MED&codeB=NEPH&version=9')).status).toBe(404);
  // The same request at type level says the same.
  expect((await client.get(`CodeSystem/$lookup?system=${CS_URL}&code=SURG&version=9`)).status).toBe(404);
});

test('a stored code system fills a built-in stub (SNOMED CT has content not-present)', async () => {
  const snomed = {
    resourceType: 'CodeSystem',
    url: 'http://snomed.info/sct',
    status: 'active',
    content: 'fragment',
    concept: [{ code: '38341003', display: 'Hypertensive disorder', concept: [{ code: '59621000', display: 'Essential hypertension' }] }],
  };
  expect((await client.get('CodeSystem/$lookup?system=http://snomed.info/sct&code=59621000')).status).toBe(422);
  expect((await client.post('CodeSystem', snomed)).status).toBe(201);
  const res = await client.get('CodeSystem/$lookup?system=http://snomed.info/sct&code=59621000');
  expect(res.status).toBe(200);
  expect(out(res.body, 'display')).toBe('Essential hypertension');
  // Still a fragment: a code outside it cannot be called invalid.
  expect(await server.services.terminology.validateCodeInSystem({ system: 'http://snomed.info/sct', code: '73211009' })).toMatchObject({ result: false, unknown: true });
});

describe('$translate', () => {
  const MAP = {
    resourceType: 'ConceptMap',
    id: 'wards-to-specialty',
    url: 'http://hospital.example.org/ConceptMap/wards-to-specialty',
    status: 'active',
    sourceUri: VS_URL,
    targetUri: 'http://hospital.example.org/ValueSet/specialties',
    group: [
      {
        source: CS_URL,
        target: 'http://hospital.example.org/CodeSystem/specialties',
        element: [
          { code: 'CARD', target: [{ code: 'cardiology', display: 'Cardiology', equivalence: 'equivalent' }] },
          { code: 'MED', target: [{ code: 'internal-medicine', equivalence: 'wider' }, { code: 'general', equivalence: 'disjoint' }] },
          { code: 'NEPH', target: [{ equivalence: 'unmatched' }] },
        ],
        unmapped: { mode: 'fixed', code: 'other', display: 'Other specialty' },
      },
    ],
  };

  beforeAll(async () => {
    expect((await client.put('ConceptMap/wards-to-specialty', MAP)).status).toBe(201);
  });

  const matches = (res: any) => all(res.body, 'match').map((m: any) => [part(m, 'equivalence'), part(m, 'concept')?.code, part(m, 'source')]);

  test('by url (GET) and by the source system (POST coding), with equivalence, concept and source', async () => {
    const res = await client.get(`ConceptMap/$translate?url=${MAP.url}&system=${CS_URL}&code=CARD`);
    expect(res.status).toBe(200);
    expect(out(res.body, 'result')).toBe(true);
    expect(matches(res)).toEqual([['equivalent', 'cardiology', MAP.url]]);
    expect(part(all(res.body, 'match')[0], 'concept')).toEqual({ system: 'http://hospital.example.org/CodeSystem/specialties', code: 'cardiology', display: 'Cardiology' });

    const found = await client.post('ConceptMap/$translate', params({ name: 'coding', valueCoding: { system: CS_URL, code: 'MED' } }));
    expect(out(found.body, 'result')).toBe(true);
    expect(matches(found)).toEqual([['wider', 'internal-medicine', MAP.url], ['disjoint', 'general', MAP.url]]);
  });

  test('unmatched and unmapped codes; reverse; target filters; instance level', async () => {
    const unmatched = await client.get(`ConceptMap/$translate?system=${CS_URL}&code=NEPH`);
    expect(out(unmatched.body, 'result')).toBe(false);
    expect(matches(unmatched)).toEqual([['unmatched', undefined, MAP.url]]);
    expect(matches(await client.get(`ConceptMap/$translate?system=${CS_URL}&code=SURG`))).toEqual([['relatedto', 'other', MAP.url]]);

    const reverse = await client.get(`ConceptMap/$translate?system=http://hospital.example.org/CodeSystem/specialties&code=internal-medicine&reverse=true`);
    expect(out(reverse.body, 'result')).toBe(true);
    expect(matches(reverse)).toEqual([['narrower', 'MED', MAP.url]]);

    expect(out((await client.get(`ConceptMap/$translate?system=${CS_URL}&code=CARD&target=http://elsewhere/vs`)).body, 'result')).toBe(false);
    expect(out((await client.get(`ConceptMap/$translate?system=${CS_URL}&code=CARD&targetsystem=http://hospital.example.org/CodeSystem/specialties`)).body, 'result')).toBe(true);
    expect(out((await client.get(`ConceptMap/wards-to-specialty/$translate?system=${CS_URL}&code=CARD`)).body, 'result')).toBe(true);
    // A conceptMapVersion the instance does not have (it is unversioned): 404, as at type level.
    const versioned = await client.get(`ConceptMap/wards-to-specialty/$translate?system=${CS_URL}&code=CARD&conceptMapVersion=2`);
    expect(versioned.status).toBe(404);
    expect(versioned.body.issue[0].diagnostics).toMatch(/version 2 \(conceptMapVersion\) of the concept map .*wards-to-specialty is not known here \(ConceptMap\/wards-to-specialty is unversioned\)/);
    expect((await client.get(`ConceptMap/$translate?url=${MAP.url}&conceptMapVersion=2&system=${CS_URL}&code=CARD`)).status).toBe(404);
  });

  test('built-in maps: the profile pack national gender map (code given by its OID) and an R4 base map', async () => {
    const res = await client.post(
      'ConceptMap/$translate',
      params({ name: 'codeableConcept', valueCodeableConcept: { coding: [{ system: 'urn:oid:2.16.156.10011.2.3.3.4', code: '9' }] } }, { name: 'targetsystem', valueUri: 'http://hl7.org/fhir/administrative-gender' })
    );
    expect(out(res.body, 'result')).toBe(true);
    // (The national pack stored in the test database maps the same code system too.)
    expect(matches(res)).toContainEqual(['wider', 'unknown', 'http://fhir-server.dev/cn/ConceptMap/gender-to-administrative-gender']);
    const base = await client.get('ConceptMap/$translate?url=http://hl7.org/fhir/ConceptMap/cm-administrative-gender-v2&system=http://hl7.org/fhir/administrative-gender&code=female');
    expect(out(base.body, 'result')).toBe(true);
    expect(matches(base)[0][1]).toBe('F');
  });

  test('no map for the code: result false with a message; errors 400 and 404', async () => {
    const none = await client.get('ConceptMap/$translate?system=http://nowhere&code=x');
    expect(none.status).toBe(200);
    expect(out(none.body, 'result')).toBe(false);
    expect(out(none.body, 'message')).toMatch(/No concept map/);
    expect((await client.get('ConceptMap/$translate')).status).toBe(400);
    expect((await client.get('ConceptMap/$translate?code=CARD')).status).toBe(400);
    expect((await client.get(`ConceptMap/$translate?url=http://nowhere/map&system=${CS_URL}&code=CARD`)).status).toBe(404);
  });
});

describe('NamingSystem', () => {
  test('$preferred-id from the profile pack and from a stored NamingSystem, which also aliases a code system', async () => {
    const fromPack = await client.get('NamingSystem/$preferred-id?id=2.16.156.10011.2.3.3.4&type=uri');
    expect(fromPack.status).toBe(200);
    expect(out(fromPack.body, 'result')).toBe('http://fhir-server.dev/cn/CodeSystem/gb-t-2261-1');
    expect(out((await client.get('NamingSystem/$preferred-id?id=http://hl7.org/fhir/administrative-gender&type=uri')).body, 'result')).toBe(
      'http://hl7.org/fhir/administrative-gender'
    );
    expect(out((await client.get('NamingSystem/$preferred-id?id=http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender&type=oid')).body, 'result')).toBe(
      '2.16.840.1.113883.5.1'
    );

    await client.post('NamingSystem', {
      resourceType: 'NamingSystem',
      name: 'Wards',
      status: 'active',
      kind: 'codesystem',
      date: '2024-01-01',
      uniqueId: [
        { type: 'uri', value: CS_URL, preferred: true },
        { type: 'oid', value: '1.2.3.4.5.6' },
      ],
    });
    expect(out((await client.get('NamingSystem/$preferred-id?id=urn:oid:1.2.3.4.5.6&type=uri')).body, 'result')).toBe(CS_URL);
    expect(out((await client.get(`NamingSystem/$preferred-id?id=${CS_URL}&type=oid`)).body, 'result')).toBe('1.2.3.4.5.6');
    // The code system now answers to its OID too, in this process and the other.
    expect(out((await client.get('CodeSystem/$lookup?system=urn:oid:1.2.3.4.5.6&code=ICU')).body, 'display')).toBe('Intensive care');
    expect(out((await otherClient.get('CodeSystem/$lookup?system=urn:oid:1.2.3.4.5.6&code=ICU')).body, 'display')).toBe('Intensive care');

    expect((await client.get('NamingSystem/$preferred-id?id=9.9.9&type=uri')).status).toBe(404);
    expect((await client.get('NamingSystem/$preferred-id?id=9.9.9&type=nonsense')).status).toBe(400);
    expect((await client.get('NamingSystem/$preferred-id?type=uri')).status).toBe(400);
  });
});
