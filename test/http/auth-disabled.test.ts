/**
 * AUTH_DISABLED=true (local experiments only): no token is needed, and no authorization
 * server is offered.
 */
import { startTestServer, type TestServer } from '../helpers/server';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ AUTH_DISABLED: 'true' });
});
afterAll(async () => server.close());

test('every request is served without a token; no SMART endpoints exist', async () => {
  expect(server.token).toBeUndefined();
  const created = await server.client().post('Patient', { resourceType: 'Patient' });
  expect(created.status).toBe(201);
  expect((await server.client().get(`Patient/${created.body.id}`)).status).toBe(200);
  expect((await fetch(`${server.baseUrl}/.well-known/smart-configuration`)).status).toBe(404);
  const metadata = (await (await fetch(`${server.baseUrl}/metadata`)).json()) as { rest: { security?: unknown }[] };
  expect(metadata.rest[0].security).toBeUndefined();
});
