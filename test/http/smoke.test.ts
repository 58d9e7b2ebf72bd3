import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer();
  client = new FhirTestClient(server.baseUrl);
});
afterAll(async () => server.close());

test('create and read a Patient', async () => {
  const created = await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'Li', given: ['Wei'] }] });
  expect(created.status).toBe(201);
  const read = await client.get(`Patient/${created.body.id}`);
  expect(read.status).toBe(200);
  expect(read.body.name[0].family).toBe('Li');
});
