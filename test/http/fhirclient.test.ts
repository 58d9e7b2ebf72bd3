/**
 * Interoperability with the SMART JavaScript client (the `fhirclient` npm library, node
 * adapter): a small app server uses fhirclient to discover the server, start the
 * authorization (PKCE required), and, on the redirect, exchange the code and read the
 * patient. The user's part (login, patient picker, consent) is played by the form-driving
 * test browser.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestServer, type TestServer } from '../helpers/server';
import { Browser, hidden, organizationClient, registerClient, registerUser } from '../helpers/smart';

// Loaded untyped: fhirclient's declarations pull in the DOM library, which changes the global fetch types.
interface SmartApp {
  authorize(options: Record<string, unknown>): Promise<unknown>;
  ready(): Promise<{ patient: { read(): Promise<unknown> } }>;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const smart = require('fhirclient/lib/entry/node') as (req: http.IncomingMessage, res: http.ServerResponse, storage: unknown) => SmartApp;

let server: TestServer;
let appServer: http.Server;
let appUrl: string;
let patientId: string;
let clientId: string;
const storage = new Map<string, unknown>();
const store = {
  get: async (key: string) => storage.get(key),
  set: async (key: string, value: unknown) => {
    storage.set(key, value);
    return value;
  },
  unset: async (key: string) => storage.delete(key),
};
let result: { patient?: unknown; error?: string } | undefined;

beforeAll(async () => {
  server = await startTestServer();
  // Written as org1, the practitioner's organization, which makes it their record to see.
  patientId = (await (await organizationClient(server, 'org1')).post('Patient', { resourceType: 'Patient', name: [{ family: 'Client', given: ['Jay'] }] })).body.id;
  await server.client().put('Practitioner/fc1', { resourceType: 'Practitioner', id: 'fc1' });
  await registerUser(server, { username: 'fc', password: 'fc-password', fhirUser: 'Practitioner/fc1', organization: 'org1' });
  appServer = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const client = smart(req, res, store);
    if (path === '/launch') {
      client
        .authorize({ iss: server.baseUrl, clientId, scope: 'launch/patient openid fhirUser patient/*.rs', redirectUri: '/callback', pkceMode: 'required' })
        .catch((err: Error) => res.end(`error: ${err.message}`));
      return;
    }
    client
      .ready()
      .then(async (fhir) => {
        result = { patient: await fhir.patient.read() };
        res.end('ok');
      })
      .catch((err: Error) => {
        result = { error: err.message };
        res.end(`error: ${err.message}`);
      });
  });
  await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', () => resolve()));
  appUrl = `http://127.0.0.1:${(appServer.address() as AddressInfo).port}`;
  clientId = (
    await registerClient(server, { name: 'fhirclient app', type: 'public', redirectUris: [`${appUrl}/callback`], scopes: ['launch/patient', 'openid', 'fhirUser', 'patient/*.rs'] })
  ).clientId;
});
afterAll(async () => {
  await new Promise((resolve) => appServer.close(resolve));
  await server.close();
});

test('fhirclient completes a standalone launch and reads the selected patient', async () => {
  const browser = new Browser();
  const launch = await browser.request(`${appUrl}/launch`);
  expect(launch.status).toBe(302);
  const authorizeUrl = new URL(launch.location!);
  expect(authorizeUrl.origin + authorizeUrl.pathname).toBe(`${server.baseUrl}/oauth2/authorize`);
  expect(authorizeUrl.searchParams.get('code_challenge_method')).toBe('S256');
  expect(authorizeUrl.searchParams.get('aud')).toBe(server.baseUrl);

  const start = await browser.request(authorizeUrl.toString());
  const login = await browser.request(start.location!);
  const signedIn = await browser.request(`${server.baseUrl}/oauth2/login`, {
    form: { request: hidden(login.html, 'request'), csrf: hidden(login.html, 'csrf'), username: 'fc', password: 'fc-password' },
  });
  const consent = await browser.request(signedIn.location!);
  const scopes = [...consent.html.matchAll(/name="scope" value="([^"]*)"/g)].map((m) => m[1]);
  const allowed = await browser.request(`${server.baseUrl}/oauth2/consent`, {
    form: { request: hidden(consent.html, 'request'), csrf: hidden(consent.html, 'csrf'), decision: 'allow', scope: scopes, patient: patientId },
  });
  expect(allowed.status).toBe(303);
  expect(allowed.location!.startsWith(`${appUrl}/callback?`)).toBe(true);

  const callback = await browser.request(allowed.location!);
  expect(callback.html).toBe('ok');
  expect(result?.error).toBeUndefined();
  expect(result?.patient).toMatchObject({ resourceType: 'Patient', id: patientId });
});
