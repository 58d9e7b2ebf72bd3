/**
 * What conformance tools check first: the CapabilityStatement is valid R4 and true to what the
 * server does, and the canonicals it names resolve.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';

let server: TestServer;
let client: FhirTestClient;
let statement: any;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
  statement = (await client.get('metadata')).body;
});
afterAll(async () => server.close());

test('the CapabilityStatement passes the server\'s own $validate with no error', async () => {
  const res = await client.post('CapabilityStatement/$validate', statement);
  expect(res.status).toBe(200);
  const errors = res.body.issue.filter((i: any) => i.severity === 'error' || i.severity === 'fatal');
  expect(errors).toEqual([]);
});

test('only R4 resource types are listed and served (not R4B\'s SubscriptionStatus)', async () => {
  const types = statement.rest[0].resource.map((r: any) => r.type);
  expect(types).toHaveLength(146);
  expect(types).not.toContain('SubscriptionStatus');
  const res = await client.post('SubscriptionStatus', { resourceType: 'SubscriptionStatus', status: 'active', type: 'heartbeat' });
  expect(res.status).toBe(404);
  expect(res.body.issue[0].code).toBe('not-found');
});

test('_format=application/fhir+json with the + unencoded (read as a space) is JSON, not 406', async () => {
  for (const [format, type] of [
    ['application/fhir+json', 'application/fhir+json'],
    ['application/json+fhir', 'application/fhir+json'],
    ['application/fhir+json;+fhirVersion=4.0', 'application/fhir+json'],
  ]) {
    const res = await client.get(`metadata?_elements=fhirVersion&_format=${format}`);
    expect([format, res.status, res.headers.get('content-type')]).toEqual([format, 200, `${type}; charset=utf-8`]);
  }
  expect((await client.get('metadata?_format=application/fhir+xml')).status).toBe(406);
});
