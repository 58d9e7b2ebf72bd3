/**
 * $meta, $meta-add, $meta-delete: tags, profiles and security labels as sets, each change a
 * new version.
 */
import http from 'node:http';
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});
afterAll(async () => server.close());

const params = (meta: object) => ({ resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: meta }] });
const returned = (res: any) => res.body.parameter.find((p: any) => p.name === 'return').valueMeta;

test('$meta-add adds without duplicates, $meta-delete removes, $meta reads; each change is a version', async () => {
  const p = (await client.post('Patient', { resourceType: 'Patient', meta: { tag: [{ system: 'urn:t', code: 'a' }] } })).body;
  const added = await client.post(`Patient/${p.id}/$meta-add`, params({
    tag: [{ system: 'urn:t', code: 'a', display: 'again' }, { system: 'urn:t', code: 'b' }],
    security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }],
    profile: ['http://example.org/StructureDefinition/p'],
  }));
  expect(added.status).toBe(200);
  const meta = returned(added);
  expect(meta.tag.map((t: any) => t.code)).toEqual(['a', 'b']);
  expect(meta.security[0].code).toBe('R');
  expect(meta.profile).toEqual(['http://example.org/StructureDefinition/p']);
  expect(meta.versionId).toBe('2');

  const deleted = returned(await client.post(`Patient/${p.id}/$meta-delete`, params({ tag: [{ system: 'urn:t', code: 'a' }] })));
  expect(deleted.tag.map((t: any) => t.code)).toEqual(['b']);
  expect(deleted.versionId).toBe('3');

  const read = returned(await client.get(`Patient/${p.id}/$meta`));
  expect(read.tag).toEqual([{ system: 'urn:t', code: 'b' }]);
  const typeLevel = returned(await client.get('Patient/$meta'));
  expect(typeLevel.tag).toEqual(expect.arrayContaining([{ system: 'urn:t', code: 'b' }]));
  expect(typeLevel.profile).toEqual(['http://example.org/StructureDefinition/p']);
  const systemLevel = returned(await client.get('$meta'));
  expect(systemLevel.security[0].code).toBe('R');
});

test('errors: missing meta parameter 400, unknown resource 404, GET on $meta-add 405', async () => {
  const p = (await client.post('Patient', { resourceType: 'Patient' })).body;
  expect((await client.post(`Patient/${p.id}/$meta-add`, { resourceType: 'Parameters' })).status).toBe(400);
  expect((await client.post('Patient/nope/$meta-add', params({ tag: [{ code: 'x' }] }))).status).toBe(404);
  expect((await client.get(`Patient/${p.id}/$meta-add`)).status).toBe(405);
  expect((await client.get(`Patient/${p.id}/$no-such-operation`)).status).toBe(404);
});

test('ids that are only dots are refused (sent raw: fetch would normalize the path)', async () => {
  // The WHATWG URL parser would resolve %2e%2e as "..", so the path is written out by hand.
  const url = new URL(server.baseUrl);
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: `${url.pathname}/Patient/%2e%2e`, method: 'PUT', headers: { 'Content-Type': 'application/fhir+json', Authorization: `Bearer ${server.token}` } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }
    );
    req.on('error', reject);
    req.end(JSON.stringify({ resourceType: 'Patient', id: '..' }));
  });
  expect(status).toBe(400);
});
