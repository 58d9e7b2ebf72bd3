/**
 * Search results pass PostgreSQL's JSON text through (store/stored-resource.ts,
 * fhir/json-body.ts): the text must be the same JSON as the parsed resource, with resourceType
 * first, and a Bundle body the same JSON as JSON.stringify would write, whatever the content.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { patientRecord } from '../../bench/data/generator';
import { jsonBody, storedEntry } from '../../src/fhir/json-body';
import { setLogLevel } from '../../src/logger';
import { sql } from '../../src/store/sql';
import { StoredResource } from '../../src/store/stored-resource';
import { useTestDatabase } from '../helpers/server';

setLogLevel('error');
const database = useTestDatabase(1);

/** The resource as the search reads it: stored as jsonb, returned as its text. */
async function stored(resource: Resource): Promise<StoredResource> {
  const result = await database.db().query(sql`SELECT ${resource.resourceType} AS resource_type, ${resource.id ?? ''} AS id, ${JSON.stringify(resource)}::jsonb AS content`.jsonAsText());
  expect(typeof result.rows[0].content).toBe('string');
  return StoredResource.fromRow(result.rows[0]);
}

function expectSameJson(text: string, resource: Resource): void {
  const parsed = JSON.parse(text);
  expect(Object.keys(parsed)[0]).toBe('resourceType');
  expect(parsed).toEqual(resource);
}

test('a resource with a contained resource of its own type, escapes and resourceType as the last key', async () => {
  const tricky = {
    resourceType: 'Observation',
    id: 'o1',
    status: 'final',
    code: { text: 'say "resourceType": "Observation" {[', coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
    contained: [
      { resourceType: 'Observation', id: 'inner', status: 'final', code: { text: '\\"}' } },
      { resourceType: 'Patient', id: 'p', name: [{ family: '王' }] },
    ],
    valueQuantity: { value: 1.25, unit: 'mg' },
  } as unknown as Resource;
  expectSameJson((await stored(tricky)).json(), tricky);
  // Nothing after resourceType (jsonb orders keys by length), and nothing but it.
  const short = { resourceType: 'Basic', id: 'b', code: { text: 'x' } } as Resource;
  expectSameJson((await stored(short)).json(), short);
  const bare = { resourceType: 'Basic' } as Resource;
  expectSameJson((await stored(bare)).json(), bare);
});

test('the generated national records, resource by resource', async () => {
  const resources = patientRecord(7, 1).bundle.entry!.map((e, i) => ({ ...e.resource, id: `r${i}` }) as Resource);
  expect(resources.length).toBeGreaterThan(50);
  for (const resource of resources) {
    const s = await stored(resource);
    expectSameJson(s.json(), resource);
    expect(s.resource).toEqual(resource);
    expect(Object.keys(s.resource).slice(0, 2)).toEqual(['resourceType', 'id']);
  }
});

test('a Bundle body splices stored entries in as the same JSON JSON.stringify writes', async () => {
  const [first, second] = patientRecord(7, 2).bundle.entry!.map((e) => e.resource as Resource);
  const entries = [
    storedEntry(`http://x/fhir/${first.resourceType}/${first.id}`, await stored(first), { mode: 'match' }),
    { fullUrl: `http://x/fhir/${second.resourceType}/${second.id}`, resource: second, search: { mode: 'include' as const } },
    storedEntry(`http://x/fhir/${second.resourceType}/${second.id}`, await stored(second), { mode: 'include' }),
  ];
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', link: [{ relation: 'self', url: 'http://x/fhir/Patient' }], entry: entries };
  const spliced = jsonBody(bundle, false);
  // JSON.stringify reads each stored entry's resource, which parses the text.
  const stringified = JSON.stringify(bundle);
  expect(isDeepStrictEqual(JSON.parse(spliced), JSON.parse(stringified))).toBe(true);
  expect(JSON.parse(spliced).entry[0].resource).toEqual(first);
  expect(jsonBody(bundle, true)).toBe(JSON.stringify(bundle, null, 2));
  // An entry whose resource is replaced is written from the replacement.
  const replaced = storedEntry('http://x/fhir/Basic/b', await stored({ resourceType: 'Basic', id: 'b' } as Resource), { mode: 'match' });
  replaced.resource = { resourceType: 'Basic', id: 'b', code: { text: 'new' } } as Resource;
  const withReplaced = JSON.parse(jsonBody({ resourceType: 'Bundle', type: 'searchset', entry: [replaced] }, false));
  expect(withReplaced.entry[0].resource.code).toEqual({ text: 'new' });
  // A Bundle without stored entries is written by JSON.stringify alone.
  const plain: Bundle = { resourceType: 'Bundle', type: 'batch-response', entry: [{ response: { status: '200' } }] };
  expect(jsonBody(plain, false)).toBe(JSON.stringify(plain));
});
