/**
 * SMART App Launch over real HTTP: authorization code with PKCE (S256 only), standalone
 * launch (practitioner picks a patient, patient user gets their own record), EHR launch,
 * refresh rotation with reuse detection, and every error the flow must refuse.
 */
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startTestServer, type TestServer } from '../helpers/server';
import { admin, authorize, basic, Browser, hidden, launchToken, organizationClient, pkce, registerClient, registerUser, tokenRequest } from '../helpers/smart';
import type { FhirTestClient } from '../helpers/fhir-client';

let server: TestServer;
const REDIRECT = 'http://127.0.0.1:9/app/callback';
const APP_SCOPES = ['launch', 'launch/patient', 'openid', 'fhirUser', 'profile', 'offline_access', 'online_access', 'patient/*.cruds', 'user/*.cruds'];
let app: string;
let confidential: { clientId: string; clientSecret?: string };
let alice: string;
let bob: string;
/** Writes as org1, the practitioner's organization, so that they hold (are custodian of) the records. */
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer();
  client = await organizationClient(server, 'org1');
  await client.put('Organization/org1', { resourceType: 'Organization', id: 'org1', name: 'General Hospital' });
  await client.put('Practitioner/pr1', { resourceType: 'Practitioner', id: 'pr1', name: [{ family: 'House', given: ['Greg'] }] });
  alice = (await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'Anders', given: ['Alice'] }], birthDate: '1980-01-02' })).body.id;
  bob = (await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'Brown', given: ['Bob'] }] })).body.id;
  app = (await registerClient(server, { name: 'Growth Chart', type: 'public', redirectUris: [REDIRECT], scopes: APP_SCOPES })).clientId;
  confidential = await registerClient(server, { name: 'Clinic Portal', type: 'confidential-symmetric', redirectUris: [REDIRECT], scopes: APP_SCOPES });
  await registerUser(server, { username: 'dr', password: 'correct horse', fhirUser: 'Practitioner/pr1', organization: 'org1', displayName: 'Dr Greg House' });
  await registerUser(server, { username: 'alice', password: 'alice-password', fhirUser: `Patient/${alice}` });
});
afterAll(async () => server.close());

const dr = { username: 'dr', password: 'correct horse' };

describe('standalone launch', () => {
  test('a practitioner picks the patient; the token carries the context, an id_token and a refresh token', async () => {
    const { redirect, verifier, consentHtml } = await authorize(server, {
      clientId: app,
      redirectUri: REDIRECT,
      scope: 'launch/patient openid fhirUser offline_access patient/*.rs',
      patient: bob,
      ...dr,
    });
    // The consent page names the app and every requested scope in words, and offers the patient picker.
    expect(consentHtml).toContain('Growth Chart');
    expect(consentHtml).toContain('patient/*.rs');
    expect(consentHtml).toMatch(/Read, search all kinds of records of the selected patient/);
    expect(consentHtml).toContain('Anders');
    expect(consentHtml).toContain('name="patient_search"');
    expect(redirect.searchParams.get('state')).toMatch(/^state-/);
    const res = await tokenRequest(server, {
      grant_type: 'authorization_code',
      code: redirect.searchParams.get('code')!,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      client_id: app,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('pragma')).toBe('no-cache');
    expect(res.body).toMatchObject({
      token_type: 'Bearer',
      expires_in: 3600,
      scope: 'launch/patient openid fhirUser offline_access patient/*.rs',
      patient: bob,
      need_patient_banner: true,
    });
    expect(res.body.smart_style_url).toMatch(/smart-style\.json$/);
    expect(res.body.refresh_token).toEqual(expect.any(String));
    // id_token: RS256, verifiable with the published JWKS, fhirUser a resolvable absolute URL.
    const jwks = createRemoteJWKSet(new URL(`${server.baseUrl}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(res.body.id_token, jwks, { issuer: server.baseUrl, audience: app });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.fhirUser).toBe(`${server.baseUrl}/Practitioner/pr1`);
    const fhirUser = await server.client().get(payload.fhirUser as string);
    expect(fhirUser.status).toBe(200);
    // The token reads the chosen patient and nobody else.
    const client = server.client(res.body.access_token);
    expect((await client.get(`Patient/${bob}`)).status).toBe(200);
    expect((await client.get(`Patient/${alice}`)).status).toBe(404);
  });

  test('the patient search narrows the picker by name', async () => {
    const browser = new Browser();
    const { challenge } = pkce();
    const params = new URLSearchParams({
      response_type: 'code', client_id: app, redirect_uri: REDIRECT, scope: 'launch/patient patient/*.rs', state: 's',
      aud: server.baseUrl, code_challenge: challenge, code_challenge_method: 'S256',
    });
    const start = await browser.request(`${server.baseUrl}/oauth2/authorize?${params}`);
    const login = await browser.request(start.location!);
    const after = await browser.request(`${server.baseUrl}/oauth2/login`, {
      form: { request: hidden(login.html, 'request'), csrf: hidden(login.html, 'csrf'), ...dr },
    });
    const search = await browser.request(`${after.location}&patient_search=brow`);
    expect(search.html).toContain('Brown');
    expect(search.html).not.toContain('Anders');
    // Allowing without choosing a patient is refused with the page again.
    const none = await browser.request(`${server.baseUrl}/oauth2/consent`, {
      form: { request: hidden(search.html, 'request'), csrf: hidden(search.html, 'csrf'), decision: 'allow', scope: 'patient/*.rs' },
    });
    expect(none.status).toBe(400);
    expect(none.html).toContain('Choose the patient');
  });

  test('a patient user gets their own record, whatever they could pick', async () => {
    const res = await launchToken(server, {
      clientId: app, redirectUri: REDIRECT, scope: 'launch/patient patient/*.rs openid fhirUser profile', username: 'alice', password: 'alice-password', patient: bob,
    });
    expect(res.status).toBe(200);
    expect(res.body.patient).toBe(alice);
    const userinfo = await fetch(`${server.baseUrl}/oauth2/userinfo`, { headers: { Authorization: `Bearer ${res.body.access_token}` } });
    expect(await userinfo.json()).toMatchObject({ fhirUser: `${server.baseUrl}/Patient/${alice}`, preferred_username: 'alice' });
    expect((await fetch(`${server.baseUrl}/oauth2/userinfo`, { headers: { Authorization: `Bearer ${server.token}` } })).status).toBe(403);
    const client = server.client(res.body.access_token);
    expect((await client.get(`Patient/${alice}`)).status).toBe(200);
    expect((await client.get(`Patient/${bob}`)).status).toBe(404);
  });

  test('openid without fhirUser or profile still gets an id_token: sub, but no fhirUser or name', async () => {
    const res = await launchToken(server, { clientId: app, redirectUri: REDIRECT, scope: 'openid patient/*.rs launch/patient', patient: bob, ...dr, extra: { nonce: 'n-1' } });
    expect(res.status).toBe(200);
    expect(res.body.scope).toBe('openid patient/*.rs launch/patient');
    const jwks = createRemoteJWKSet(new URL(`${server.baseUrl}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(res.body.id_token, jwks, { issuer: server.baseUrl, audience: app });
    expect(payload.sub).toEqual(expect.any(String));
    expect(payload.nonce).toBe('n-1');
    expect(payload.fhirUser).toBeUndefined();
    expect(payload.name).toBeUndefined();
  });

  test('auth_time is when the user logged in: the same in a refreshed id_token and after a login-free second authorization', async () => {
    const browser = new Browser();
    const scope = 'openid fhirUser offline_access patient/*.rs launch/patient';
    const jwks = createRemoteJWKSet(new URL(`${server.baseUrl}/.well-known/jwks.json`));
    const authTime = async (idToken: string) => (await jwtVerify(idToken, jwks, { issuer: server.baseUrl, audience: app })).payload;
    const before = Math.floor(Date.now() / 1000);
    const first = await launchToken(server, { clientId: app, redirectUri: REDIRECT, scope, patient: bob, ...dr, browser });
    expect(first.status).toBe(200);
    const login = await authTime(first.body.id_token);
    expect(login.auth_time).toBeGreaterThanOrEqual(before - 1);
    // Later id tokens of the same login are issued at a later second.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const refreshed = await tokenRequest(server, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token, client_id: app });
    expect(refreshed.status).toBe(200);
    const again = await launchToken(server, { clientId: app, redirectUri: REDIRECT, scope, patient: bob, ...dr, browser });
    expect(again.status).toBe(200);
    for (const idToken of [refreshed.body.id_token, again.body.id_token]) {
      const payload = await authTime(idToken);
      expect(payload.iat).toBeGreaterThan(login.auth_time as number);
      expect(payload.auth_time).toBe(login.auth_time);
    }
  });

  test('a confidential app authenticates at the token endpoint (client_secret_basic)', async () => {
    const { redirect, verifier } = await authorize(server, { clientId: confidential.clientId, redirectUri: REDIRECT, scope: 'user/Patient.rs', ...dr });
    const form = { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier };
    const anonymous = await tokenRequest(server, { ...form, client_id: confidential.clientId });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error).toBe('invalid_client');
    const res = await tokenRequest(server, form, basic(confidential.clientId, confidential.clientSecret!));
    // The code was consumed by the refused attempt? No: client authentication fails before the code is used.
    expect(res.status).toBe(200);
    expect(res.body.scope).toBe('user/Patient.rs');
  });

  test('unchecked scopes are not granted; deny sends access_denied with the state', async () => {
    const partial = await launchToken(server, {
      clientId: app, redirectUri: REDIRECT, scope: 'launch/patient patient/Patient.rs patient/Observation.rs', keep: ['launch/patient', 'patient/Patient.rs'], patient: bob, ...dr,
    });
    expect(partial.body.scope).toBe('launch/patient patient/Patient.rs');
    const { redirect } = await authorize(server, { clientId: app, redirectUri: REDIRECT, scope: 'patient/*.rs', decision: 'deny', ...dr });
    expect(redirect.searchParams.get('error')).toBe('access_denied');
    expect(redirect.searchParams.get('state')).toMatch(/^state-/);
    expect(redirect.searchParams.get('code')).toBeNull();
  });
});

describe('EHR launch', () => {
  test('the launch id carries the context the EHR created: patient, encounter, fhirContext', async () => {
    const encounter = (await client.post('Encounter', { resourceType: 'Encounter', status: 'in-progress', class: { code: 'AMB' }, subject: { reference: `Patient/${alice}` } })).body.id;
    const created = await admin(server, 'POST', '../oauth2/launch', {
      patient: alice, encounter, fhirContext: [{ reference: `Encounter/${encounter}` }], need_patient_banner: false, client_id: app,
    });
    expect(created.status).toBe(201);
    const res = await launchToken(server, { clientId: app, redirectUri: REDIRECT, scope: 'launch patient/*.rs', launch: created.body.launch, ...dr });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ patient: alice, encounter, fhirContext: [{ reference: `Encounter/${encounter}` }], need_patient_banner: false });
    expect((await server.client(res.body.access_token).get(`Encounter/${encounter}`)).status).toBe(200);
  });

  test('an unknown launch, or one created for another app, is refused at authorize', async () => {
    const { redirect } = await authorize(server, { clientId: app, redirectUri: REDIRECT, scope: 'launch patient/*.rs', launch: 'nope', ...dr });
    expect(redirect.searchParams.get('error')).toBe('invalid_request');
    const other = await admin(server, 'POST', '../oauth2/launch', { patient: alice, client_id: confidential.clientId });
    const again = await authorize(server, { clientId: app, redirectUri: REDIRECT, scope: 'launch patient/*.rs', launch: other.body.launch, ...dr });
    expect(again.redirect.searchParams.get('error')).toBe('invalid_request');
    const mine = await admin(server, 'POST', '../oauth2/launch', { patient: alice });
    const noScope = await authorize(server, { clientId: app, redirectUri: REDIRECT, scope: 'patient/*.rs', launch: mine.body.launch, ...dr });
    expect(noScope.redirect.searchParams.get('error')).toBe('invalid_scope');
  });

  test('a patient user opening a launch for another patient: access_denied with the state, back at the app', async () => {
    const launch = await admin(server, 'POST', '../oauth2/launch', { patient: bob });
    const { redirect } = await authorize(server, { clientId: app, redirectUri: REDIRECT, scope: 'launch patient/*.rs', launch: launch.body.launch, username: 'alice', password: 'alice-password' });
    expect(`${redirect.origin}${redirect.pathname}`).toBe(REDIRECT);
    expect(redirect.searchParams.get('error')).toBe('access_denied');
    expect(redirect.searchParams.get('state')).toMatch(/^state-/);
    expect(redirect.searchParams.get('code')).toBeNull();
  });

  test('creating a launch context needs the admin scope', async () => {
    const res = await fetch(`${server.baseUrl}/oauth2/launch`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"patient":"x"}' });
    expect(res.status).toBe(401);
  });
});

describe('authorization request errors', () => {
  const base = () => ({
    response_type: 'code', client_id: app, redirect_uri: REDIRECT, scope: 'patient/*.rs', state: 'xyz', aud: server.baseUrl,
    code_challenge: pkce().challenge, code_challenge_method: 'S256',
  });
  const start = async (params: Record<string, string | undefined>) => {
    const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined) as [string, string][]);
    return new Browser().request(`${server.baseUrl}/oauth2/authorize?${query}`);
  };
  const errorOf = (location: string | undefined) => new URL(location!).searchParams.get('error');

  test('an unregistered redirect_uri or client is shown as a page, never redirected', async () => {
    const wrong = await start({ ...base(), redirect_uri: 'http://127.0.0.1:9/app/callback2' });
    expect(wrong.status).toBe(400);
    expect(wrong.location).toBeUndefined();
    expect(wrong.html).toContain('redirect_uri');
    const unknown = await start({ ...base(), client_id: 'nobody' });
    expect(unknown.status).toBe(400);
  });

  test('plain or missing PKCE, a wrong aud, or unknown scopes issue no code', async () => {
    for (const params of [
      { ...base(), code_challenge_method: 'plain' },
      { ...base(), code_challenge: undefined, code_challenge_method: undefined },
      { ...base(), aud: 'http://elsewhere.example/fhir' },
      { ...base(), aud: undefined },
    ]) {
      const res = await start(params);
      expect(res.status).toBe(303);
      expect(errorOf(res.location)).toBe('invalid_request');
      expect(new URL(res.location!).searchParams.get('state')).toBe('xyz');
    }
    expect(errorOf((await start({ ...base(), scope: 'system/*.cruds' })).location)).toBe('invalid_scope');
    expect(errorOf((await start({ ...base(), response_type: 'token' })).location)).toBe('unsupported_response_type');
  });

  test('authorize also accepts POST', async () => {
    const res = await fetch(`${server.baseUrl}/oauth2/authorize`, { method: 'POST', body: new URLSearchParams(base()), redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toContain('/oauth2/interact?request=');
  });

  test('a wrong password shows the login page again and is audited', async () => {
    const browser = new Browser();
    const first = await browser.request(`${server.baseUrl}/oauth2/authorize?${new URLSearchParams(base())}`);
    const login = await browser.request(first.location!);
    expect(login.html).toContain('<label for="username">');
    expect(login.html).toContain('Growth Chart');
    const res = await browser.request(`${server.baseUrl}/oauth2/login`, {
      form: { request: hidden(login.html, 'request'), csrf: hidden(login.html, 'csrf'), username: 'dr', password: 'wrong' },
    });
    expect(res.status).toBe(401);
    expect(res.html).toContain('not correct');
    const events = await server.pool.query(
      `SELECT content FROM resource WHERE resource_type = 'AuditEvent' AND content->'subtype' @> '[{"code":"110122"}]' AND content->>'outcome' = '4'
         AND content->>'outcomeDesc' LIKE 'Login failed%'`
    );
    expect(events.rowCount).toBeGreaterThan(0);
    expect(events.rows[0].content.type.code).toBe('110114');
  });

  test('a consent form with a wrong CSRF token is refused and issues no code', async () => {
    const browser = new Browser();
    const first = await browser.request(`${server.baseUrl}/oauth2/authorize?${new URLSearchParams(base())}`);
    const login = await browser.request(first.location!);
    const signedIn = await browser.request(`${server.baseUrl}/oauth2/login`, {
      form: { request: hidden(login.html, 'request'), csrf: hidden(login.html, 'csrf'), ...dr },
    });
    const consent = await browser.request(signedIn.location!);
    const res = await browser.request(`${server.baseUrl}/oauth2/consent`, {
      form: { request: hidden(consent.html, 'request'), csrf: 'forged', decision: 'allow', scope: 'patient/*.rs' },
    });
    expect(res.status).toBe(403);
    expect(res.location).toBeUndefined();
  });

  test('a login form without its CSRF cookie is refused', async () => {
    const browser = new Browser();
    const first = await browser.request(`${server.baseUrl}/oauth2/authorize?${new URLSearchParams(base())}`);
    const login = await browser.request(first.location!);
    const res = await new Browser().request(`${server.baseUrl}/oauth2/login`, {
      form: { request: hidden(login.html, 'request'), csrf: hidden(login.html, 'csrf'), ...dr },
    });
    expect(res.status).toBe(403);
    expect(res.headers.get('set-cookie') ?? '').not.toContain('fhir_session=');
  });
});

describe('token endpoint: codes', () => {
  async function code(scope = 'patient/*.rs launch/patient') {
    return authorize(server, { clientId: app, redirectUri: REDIRECT, scope, patient: alice, ...dr });
  }
  const exchange = (c: string, verifier: string | undefined, extra: Record<string, string> = {}) =>
    tokenRequest(server, {
      grant_type: 'authorization_code', code: c, redirect_uri: REDIRECT, client_id: app, ...(verifier !== undefined && { code_verifier: verifier }), ...extra,
    });

  test('a wrong or missing code_verifier is invalid_grant', async () => {
    const { redirect } = await code();
    const c = redirect.searchParams.get('code')!;
    const wrong = await exchange(c, pkce().verifier);
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toBe('invalid_grant');
    const second = await code();
    const missing = await exchange(second.redirect.searchParams.get('code')!, undefined);
    expect(missing.body.error).toBe('invalid_grant');
  });

  test('a code is single-use: the replay fails and revokes what the first exchange issued', async () => {
    const { redirect, verifier } = await code('patient/*.rs launch/patient offline_access');
    const c = redirect.searchParams.get('code')!;
    const first = await exchange(c, verifier);
    expect(first.status).toBe(200);
    expect((await server.client(first.body.access_token).get(`Patient/${alice}`)).status).toBe(200);
    const replay = await exchange(c, verifier);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
    expect((await server.client(first.body.access_token).get(`Patient/${alice}`)).status).toBe(401);
    expect((await tokenRequest(server, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token, client_id: app })).status).toBe(400);
  });

  test('a replayed code revokes the access token issued for it also when there is no refresh token', async () => {
    const { redirect, verifier } = await code('patient/*.rs launch/patient');
    const c = redirect.searchParams.get('code')!;
    const first = await exchange(c, verifier);
    expect(first.status).toBe(200);
    expect(first.body.refresh_token).toBeUndefined();
    expect((await server.client(first.body.access_token).get(`Patient/${alice}`)).status).toBe(200);
    const replay = await exchange(c, verifier);
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('invalid_grant');
    expect(replay.body.error_description).toMatch(/revoked/);
    expect((await server.client(first.body.access_token).get(`Patient/${alice}`)).status).toBe(401);
  });

  test('redirect_uri must match the authorization request', async () => {
    const { redirect, verifier } = await code();
    const res = await exchange(redirect.searchParams.get('code')!, verifier, { redirect_uri: 'http://127.0.0.1:9/other' });
    expect(res.body.error).toBe('invalid_grant');
  });

  test('an expired code is refused', async () => {
    const { redirect, verifier } = await code();
    await server.pool.query(`UPDATE auth_code SET expires_at = now() - interval '1 second'`);
    const res = await exchange(redirect.searchParams.get('code')!, verifier);
    expect(res.body.error).toBe('invalid_grant');
  });

  test('unknown grant types and missing grant_type are RFC 6749 errors', async () => {
    expect((await tokenRequest(server, { grant_type: 'password', client_id: app })).body.error).toBe('unsupported_grant_type');
    expect((await tokenRequest(server, { client_id: app })).body.error).toBe('invalid_request');
  });
});

describe('refresh tokens', () => {
  test('rotate on use; presenting a rotated one revokes the whole family', async () => {
    const first = await launchToken(server, { clientId: app, redirectUri: REDIRECT, scope: 'launch/patient patient/*.rs offline_access', patient: alice, ...dr });
    const second = await tokenRequest(server, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token, client_id: app });
    expect(second.status).toBe(200);
    expect(second.body.refresh_token).not.toBe(first.body.refresh_token);
    expect(second.body.patient).toBe(alice);
    expect((await server.client(second.body.access_token).get(`Patient/${alice}`)).status).toBe(200);
    // The old refresh token again: refused, and everything of the family dies.
    const reuse = await tokenRequest(server, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token, client_id: app });
    expect(reuse.status).toBe(400);
    expect(reuse.body.error).toBe('invalid_grant');
    const third = await tokenRequest(server, { grant_type: 'refresh_token', refresh_token: second.body.refresh_token, client_id: app });
    expect(third.body.error).toBe('invalid_grant');
    expect((await server.client(second.body.access_token).get(`Patient/${alice}`)).status).toBe(401);
  });

  test('a refresh may narrow the scopes but never widen them', async () => {
    const first = await launchToken(server, { clientId: app, redirectUri: REDIRECT, scope: 'launch/patient patient/*.rs offline_access', patient: alice, ...dr });
    const wider = await tokenRequest(server, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token, client_id: app, scope: 'patient/*.cruds' });
    expect(wider.body.error).toBe('invalid_scope');
  });

  test('a refused refresh request uses nothing up: the client keeps its refresh token and its grant', async () => {
    const first = await launchToken(server, { clientId: app, redirectUri: REDIRECT, scope: 'launch/patient patient/*.rs offline_access', patient: alice, ...dr });
    const refresh = (extra: Record<string, string> = {}, headers: Record<string, string> = {}) =>
      tokenRequest(server, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token, ...extra }, headers);
    const wider = await refresh({ client_id: app, scope: 'user/*.rs' });
    expect(wider.status).toBe(400);
    expect(wider.body.error).toBe('invalid_scope');
    // Another client presenting it (authenticated as itself) is refused, and triggers no reuse detection.
    const stranger = await refresh({}, basic(confidential.clientId, confidential.clientSecret!));
    expect(stranger.status).toBe(400);
    expect(stranger.body.error).toBe('invalid_grant');
    expect(stranger.body.error_description).toMatch(/another client/);
    expect((await server.client(first.body.access_token).get(`Patient/${alice}`)).status).toBe(200);
    const ok = await refresh({ client_id: app });
    expect(ok.status).toBe(200);
    expect(ok.body.scope).toBe('launch/patient patient/*.rs offline_access');
    expect((await server.client(first.body.access_token).get(`Patient/${alice}`)).status).toBe(200);
    expect((await server.client(ok.body.access_token).get(`Patient/${alice}`)).status).toBe(200);
  });

  test('a narrower scope on refresh applies to the new access token only; the new refresh token keeps the grant (even without offline_access)', async () => {
    const full = 'launch/patient openid fhirUser offline_access patient/*.rs';
    const first = await launchToken(server, { clientId: app, redirectUri: REDIRECT, scope: full, patient: alice, ...dr });
    const narrow = await tokenRequest(server, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token, client_id: app, scope: 'launch/patient patient/*.rs' });
    expect(narrow.status).toBe(200);
    expect(narrow.body.scope).toBe('launch/patient patient/*.rs');
    expect(narrow.body.id_token).toBeUndefined();
    expect(narrow.body.refresh_token).toEqual(expect.any(String));
    const userinfo = await fetch(`${server.baseUrl}/oauth2/userinfo`, { headers: { Authorization: `Bearer ${narrow.body.access_token}` } });
    expect(userinfo.status).toBe(403);
    const again = await tokenRequest(server, { grant_type: 'refresh_token', refresh_token: narrow.body.refresh_token, client_id: app });
    expect(again.status).toBe(200);
    expect(again.body.scope).toBe(full);
    expect(again.body.id_token).toEqual(expect.any(String));
    expect(again.body.refresh_token).toEqual(expect.any(String));
  });

  test('a refresh token is introspected with its patient and without token_type, also under token_type_hint=access_token; revoking it ends its grant', async () => {
    // The confidential app authenticates at the token endpoint (client_secret_basic).
    const { redirect, verifier } = await authorize(server, {
      clientId: confidential.clientId, redirectUri: REDIRECT, scope: 'launch/patient patient/*.rs offline_access', patient: alice, ...dr,
    });
    const auth = basic(confidential.clientId, confidential.clientSecret!);
    const tokens = (await tokenRequest(server, { grant_type: 'authorization_code', code: redirect.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier }, auth)).body;
    const post = (path: string, form: Record<string, string>) => fetch(`${server.baseUrl}/oauth2/${path}`, { method: 'POST', headers: auth, body: new URLSearchParams(form) });
    const seen = await post('introspect', { token: tokens.refresh_token, token_type_hint: 'access_token' });
    const described = (await seen.json()) as any;
    // A refresh token is no access-token type (RFC 7662 §2.2): no token_type; the grant's patient is given.
    expect(described).toMatchObject({ active: true, client_id: confidential.clientId, scope: 'launch/patient patient/*.rs offline_access', patient: alice });
    expect(described.token_type).toBeUndefined();
    expect(described.sub).toEqual(expect.any(String));
    expect((await post('revoke', { token: tokens.refresh_token, token_type_hint: 'access_token' })).status).toBe(200);
    expect(await (await post('introspect', { token: tokens.refresh_token })).json()).toEqual({ active: false });
    expect((await server.client(tokens.access_token).get(`Patient/${alice}`)).status).toBe(401);
  });

  test('online_access refresh tokens stop working when the user logs out', async () => {
    const browser = new Browser();
    const res = await launchToken(server, { clientId: app, redirectUri: REDIRECT, scope: 'user/Patient.rs online_access', browser, ...dr });
    const again = await tokenRequest(server, { grant_type: 'refresh_token', refresh_token: res.body.refresh_token, client_id: app });
    expect(again.status).toBe(200);
    // Log out through the consent page's form.
    const { challenge } = pkce();
    const q = new URLSearchParams({ response_type: 'code', client_id: app, redirect_uri: REDIRECT, scope: 'user/Patient.rs', aud: server.baseUrl, code_challenge: challenge, code_challenge_method: 'S256' });
    const consent = await browser.request((await browser.request(`${server.baseUrl}/oauth2/authorize?${q}`)).location!);
    const out = await browser.request(`${server.baseUrl}/oauth2/logout`, { form: { csrf: hidden(consent.html, 'csrf') } });
    expect(out.status).toBe(200);
    const after = await tokenRequest(server, { grant_type: 'refresh_token', refresh_token: again.body.refresh_token, client_id: app });
    expect(after.body.error).toBe('invalid_grant');
  });

  test('no refresh token without offline_access or online_access', async () => {
    const res = await launchToken(server, { clientId: app, redirectUri: REDIRECT, scope: 'user/Patient.rs', ...dr });
    expect(res.body.refresh_token).toBeUndefined();
    expect(res.body.id_token).toBeUndefined();
  });
});
