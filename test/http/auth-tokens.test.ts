/**
 * Discovery, bearer-token enforcement, SMART Backend Services (client_credentials with a real
 * private_key_jwt assertion built with jose, RS384 and ES384, keys by value and by URL),
 * symmetric client authentication, introspection, revocation, key rotation and the admin API.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type KeyLike } from 'jose';
import { startTestServer, type TestServer } from '../helpers/server';
import { admin, basic, registerClient, tokenRequest } from '../helpers/smart';

let server: TestServer;
let tokenUrl: string;
let rsKey: { privateKey: KeyLike; jwk: JWK };
let ecKey: { privateKey: KeyLike; jwk: JWK };
let jwksServer: http.Server;
let jwksUrl: string;
const served: { keys: JWK[] } = { keys: [] };

async function keyPair(alg: 'RS384' | 'ES384') {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: randomUUID(), alg } };
}

beforeAll(async () => {
  server = await startTestServer();
  tokenUrl = `${server.baseUrl}/oauth2/token`;
  rsKey = await keyPair('RS384');
  ecKey = await keyPair('ES384');
  jwksServer = http.createServer((_req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(served));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', () => resolve()));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
});
afterAll(async () => {
  await new Promise((resolve) => jwksServer.close(resolve));
  await server.close();
});

function assertion(clientId: string, key: { privateKey: KeyLike; jwk: JWK }, claims: { aud?: string; exp?: number; jti?: string } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: claims.jti ?? randomUUID() })
    .setProtectedHeader({ alg: key.jwk.alg as string, kid: key.jwk.kid, typ: 'JWT' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(claims.aud ?? tokenUrl)
    .setExpirationTime(claims.exp ?? now + 240)
    .sign(key.privateKey);
}

const backendForm = (clientAssertion: string, scope = 'system/Patient.rs') => ({
  grant_type: 'client_credentials',
  scope,
  client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
  client_assertion: clientAssertion,
});

describe('discovery', () => {
  test('smart-configuration lists absolute endpoints, S256 only, and the capabilities supported', async () => {
    const res = await fetch(`${server.baseUrl}/.well-known/smart-configuration`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({
      issuer: server.baseUrl,
      jwks_uri: `${server.baseUrl}/.well-known/jwks.json`,
      authorization_endpoint: `${server.baseUrl}/oauth2/authorize`,
      token_endpoint: tokenUrl,
      introspection_endpoint: `${server.baseUrl}/oauth2/introspect`,
      revocation_endpoint: `${server.baseUrl}/oauth2/revoke`,
      code_challenge_methods_supported: ['S256'],
      response_types_supported: ['code'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
    });
    expect(body.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'client_credentials', 'refresh_token']));
    expect(body.capabilities).toEqual(
      expect.arrayContaining(['launch-ehr', 'launch-standalone', 'client-public', 'client-confidential-asymmetric', 'permission-v1', 'permission-v2', 'context-standalone-patient'])
    );
    const oidc = (await (await fetch(`${server.baseUrl}/.well-known/openid-configuration`)).json()) as any;
    expect(oidc).toMatchObject({ issuer: server.baseUrl, id_token_signing_alg_values_supported: ['RS256'], jwks_uri: body.jwks_uri });
  });

  test('the CapabilityStatement declares the SMART security service with the OAuth URIs', async () => {
    const res = await fetch(`${server.baseUrl}/metadata`);
    expect(res.status).toBe(200);
    const security = ((await res.json()) as any).rest[0].security;
    expect(security.service[0].coding[0].code).toBe('SMART-on-FHIR');
    const uris = security.extension.find((e: any) => e.url === 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris');
    expect(Object.fromEntries(uris.extension.map((e: any) => [e.url, e.valueUri]))).toMatchObject({
      authorize: `${server.baseUrl}/oauth2/authorize`,
      token: tokenUrl,
    });
  });
});

describe('enforcement', () => {
  test('no token: 401 with WWW-Authenticate, audited as a refused token; /metadata stays public', async () => {
    const res = await fetch(`${server.baseUrl}/Patient`, { headers: { 'X-Request-Id': 'no-token-1' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="${server.baseUrl}"`);
    expect(((await res.json()) as any).resourceType).toBe('OperationOutcome');
    const event = await server.pool.query(
      `SELECT content FROM resource WHERE resource_type = 'AuditEvent' AND content->'entity' @> '[{"what":{"identifier":{"value":"no-token-1"}}}]'`
    );
    expect(event.rows[0].content.type.code).toBe('110114');
    expect(event.rows[0].content.outcome).toBe('4');
  });

  test('a forged, malformed or expired token is 401 invalid_token', async () => {
    const [h, p] = (server.token as string).split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'system/*.cruds admin extra' })).toString('base64url')}.${server.token!.split('.')[2]}`;
    for (const token of [tampered, 'not-a-jwt', `${h}.${p}.`]) {
      const res = await server.client(token).get('Patient');
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
    // Signed by the server's own key, but expired.
    const key = (await server.pool.query(`SELECT kid, private_jwk FROM signing_key WHERE alg = 'RS256' AND retired_at IS NULL`)).rows[0];
    const expired = await new SignJWT({ ...claims, exp: Math.floor(Date.now() / 1000) - 10 })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'at+jwt' })
      .sign(await importJWK(key.private_jwk, 'RS256'));
    const late = await server.client(expired).get('Patient');
    expect(late.status).toBe(401);
    expect(late.headers.get('www-authenticate')).toContain('expired');
    // Another scheme is no authentication for this resource server: the challenge has no error code (RFC 6750 §3.1).
    const basicAuth = await server.client().get('Patient', { Authorization: 'Basic YTpi' });
    expect(basicAuth.status).toBe(401);
    expect(basicAuth.headers.get('www-authenticate')).toBe(`Bearer realm="${server.baseUrl}"`);
    const malformed = await server.client().get('Patient', { Authorization: 'Bearer a b' });
    expect(malformed.status).toBe(401);
    expect(malformed.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  test('a 403 for insufficient scope carries WWW-Authenticate: Bearer ... error="insufficient_scope" (FHIR and admin endpoints)', async () => {
    const c = await registerClient(server, { name: 'Writer', type: 'confidential-symmetric', scopes: ['system/Observation.c', 'system/Patient.rs'] });
    const token = (await tokenRequest(server, { grant_type: 'client_credentials', scope: 'system/Observation.c system/Patient.rs' }, basic(c.clientId, c.clientSecret!))).body.access_token;
    const client = server.client(token);
    const challenge = new RegExp(`^Bearer realm="${server.baseUrl.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}", error="insufficient_scope"`);
    const read = await client.get('Observation');
    const write = await client.post('Patient', { resourceType: 'Patient' });
    for (const res of [read, write]) {
      expect(res.status).toBe(403);
      expect(res.body.issue[0].code).toBe('forbidden');
      expect(res.headers.get('www-authenticate')).toMatch(challenge);
    }
    const adminApi = await fetch(`${server.baseUrl}/admin/clients`, { headers: { Authorization: `Bearer ${token}` } });
    expect(adminApi.status).toBe(403);
    expect(adminApi.headers.get('www-authenticate')).toMatch(challenge);
    // A 403 that is not about scopes (a purpose of use not registered) has no challenge.
    const purpose = await client.get('Patient', { 'X-Purpose-Of-Use': 'ETREAT' });
    expect(purpose.status).toBe(403);
    expect(purpose.headers.get('www-authenticate')).toBeNull();
  });

  test('X-Purpose-Of-Use is accepted only for purposes registered for the client', async () => {
    const c = await registerClient(server, { name: 'Research', type: 'confidential-symmetric', scopes: ['system/*.rs'], purposeOfUse: ['TREAT', 'HRESCH'] });
    const token = (await tokenRequest(server, { grant_type: 'client_credentials', scope: 'system/*.rs' }, basic(c.clientId, c.clientSecret!))).body.access_token;
    const ok = await server.client(token).get('Patient', { 'X-Purpose-Of-Use': 'HRESCH', 'X-Request-Id': 'pou-1' });
    expect(ok.status).toBe(200);
    const event = await server.pool.query(
      `SELECT content FROM resource WHERE resource_type = 'AuditEvent' AND content->'entity' @> '[{"what":{"identifier":{"value":"pou-1"}}}]'`
    );
    expect(event.rows[0].content.purposeOfEvent[0].coding[0].code).toBe('HRESCH');
    expect((await server.client(token).get('Patient', { 'X-Purpose-Of-Use': 'ETREAT' })).status).toBe(403);
  });
});

describe('backend services (client_credentials + private_key_jwt)', () => {
  let byValue: string;
  let byUrl: string;
  beforeAll(async () => {
    byValue = (await registerClient(server, { name: 'Lab feed', type: 'confidential-asymmetric', jwks: { keys: [rsKey.jwk, ecKey.jwk] }, scopes: ['system/*.rs', 'system/Observation.c'] })).clientId;
    served.keys = [ecKey.jwk];
    byUrl = (await registerClient(server, { name: 'Registry', type: 'confidential-asymmetric', jwksUri: jwksUrl, scopes: ['system/Patient.rs'] })).clientId;
  });

  test('an RS384 assertion (keys by value) gets a system token that works, without a refresh token', async () => {
    const res = await tokenRequest(server, backendForm(await assertion(byValue, rsKey), 'system/Patient.rs system/Observation.c launch'));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toMatchObject({ token_type: 'Bearer', scope: 'system/Patient.rs system/Observation.c', expires_in: 3600 });
    expect(res.body.refresh_token).toBeUndefined();
    const client = server.client(res.body.access_token);
    expect((await client.get('Patient')).status).toBe(200);
    expect((await client.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'x' } })).status).toBe(201);
    expect((await client.post('Patient', { resourceType: 'Patient' })).status).toBe(403);
  });

  test('an ES384 assertion with keys fetched from the client JWKS URL', async () => {
    const res = await tokenRequest(server, backendForm(await assertion(byUrl, ecKey)));
    expect(res.status).toBe(200);
    expect(res.body.scope).toBe('system/Patient.rs');
  });

  test('a key the client does not have registered is refused', async () => {
    const stranger = await keyPair('RS384');
    const res = await tokenRequest(server, backendForm(await assertion(byUrl, stranger)));
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  test('aud must be the token URL, exp at most five minutes ahead, jti never twice', async () => {
    const wrongAud = await tokenRequest(server, backendForm(await assertion(byValue, rsKey, { aud: server.baseUrl })));
    expect(wrongAud.status).toBe(401);
    expect(wrongAud.body.error).toBe('invalid_client');
    const far = await tokenRequest(server, backendForm(await assertion(byValue, rsKey, { exp: Math.floor(Date.now() / 1000) + 600 })));
    expect(far.status).toBe(401);
    const expired = await tokenRequest(server, backendForm(await assertion(byValue, rsKey, { exp: Math.floor(Date.now() / 1000) - 60 })));
    expect(expired.status).toBe(401);
    const once = await assertion(byValue, rsKey);
    expect((await tokenRequest(server, backendForm(once))).status).toBe(200);
    const replay = await tokenRequest(server, backendForm(once));
    expect(replay.status).toBe(401);
    expect(replay.body.error_description).toMatch(/jti/);
  });

  test('an assertion without kid in its header is invalid_client, though its key is registered', async () => {
    const now = Math.floor(Date.now() / 1000);
    const noKid = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'RS384', typ: 'JWT' })
      .setIssuer(byValue).setSubject(byValue).setAudience(tokenUrl).setExpirationTime(now + 240)
      .sign(rsKey.privateKey);
    const res = await tokenRequest(server, backendForm(noKid));
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
    expect(res.body.error_description).toMatch(/kid/);
  });

  test('scopes beyond the registration are not granted; none left is invalid_scope', async () => {
    const res = await tokenRequest(server, backendForm(await assertion(byValue, rsKey), 'system/Patient.cruds'));
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_scope');
  });

  test('a token issued and a token refused are both audited', async () => {
    const rows = await server.pool.query(
      `SELECT content->>'outcome' AS outcome FROM resource WHERE resource_type = 'AuditEvent' AND content->'type'->>'code' = '110114'
         AND content->'agent' @> $1::jsonb`,
      [JSON.stringify([{ who: { identifier: { value: byValue } } }])]
    );
    const outcomes = rows.rows.map((r) => r.outcome);
    expect(outcomes).toContain('0');
    expect(outcomes).toContain('4');
  });
});

describe('symmetric clients', () => {
  test('client_secret_post and client_secret_basic; a wrong secret is 401 invalid_client; public clients cannot use client_credentials', async () => {
    const c = await registerClient(server, { name: 'Batch', type: 'confidential-symmetric', scopes: ['system/Patient.rs'] });
    const post = await tokenRequest(server, { grant_type: 'client_credentials', scope: 'system/Patient.rs', client_id: c.clientId, client_secret: c.clientSecret! });
    expect(post.status).toBe(200);
    const wrong = await tokenRequest(server, { grant_type: 'client_credentials', scope: 'system/Patient.rs' }, basic(c.clientId, 'nope'));
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
    expect(wrong.headers.get('www-authenticate')).toContain('Basic');
    const pub = await registerClient(server, { name: 'Public', type: 'public', redirectUris: ['http://127.0.0.1:9/cb'], scopes: ['patient/*.rs'] });
    const res = await tokenRequest(server, { grant_type: 'client_credentials', scope: 'system/Patient.rs', client_id: pub.clientId });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('unauthorized_client');
  });
});

describe('malformed token requests (RFC 6749 §2.3, §3.2, §5.2)', () => {
  test('a repeated parameter, or more than one client authentication method, is 400 invalid_request', async () => {
    const c = await registerClient(server, { name: 'Strict', type: 'confidential-symmetric', scopes: ['system/Patient.rs'] });
    const auth = basic(c.clientId, c.clientSecret!);
    const send = async (body: URLSearchParams, headers: Record<string, string> = {}) => {
      const res = await fetch(tokenUrl, { method: 'POST', headers, body });
      return { status: res.status, cache: res.headers.get('cache-control'), body: (await res.json()) as any };
    };
    const cases = [
      send(new URLSearchParams([['grant_type', 'authorization_code'], ['grant_type', 'client_credentials'], ['scope', 'system/Patient.rs']]), auth),
      send(new URLSearchParams([['grant_type', 'client_credentials'], ['scope', 'system/Patient.rs'], ['scope', 'system/Patient.rs']]), auth),
      send(new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/Patient.rs', client_id: c.clientId, client_secret: c.clientSecret! }), auth),
      send(new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/Patient.rs', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: 'garbage' }), auth),
      send(new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/Patient.rs', client_id: 'someone-else' }), auth),
    ];
    for (const res of await Promise.all(cases)) {
      expect(res.status).toBe(400);
      expect(res.cache).toBe('no-store');
      expect(res.body.error).toBe('invalid_request');
    }
    // The same request with one value and one method succeeds (client_id may accompany Basic).
    const ok = await send(new URLSearchParams({ grant_type: 'client_credentials', scope: 'system/Patient.rs', client_id: c.clientId }), auth);
    expect(ok.status).toBe(200);
  });
});

describe('introspection and revocation', () => {
  let c: { clientId: string; clientSecret?: string };
  let token: string;
  beforeAll(async () => {
    c = await registerClient(server, { name: 'Introspector', type: 'confidential-symmetric', scopes: ['system/Patient.rs'] });
    token = (await tokenRequest(server, { grant_type: 'client_credentials', scope: 'system/Patient.rs' }, basic(c.clientId, c.clientSecret!))).body.access_token;
  });
  const introspect = async (t: string, headers = basic(c.clientId, c.clientSecret!)) => {
    const res = await fetch(`${server.baseUrl}/oauth2/introspect`, { method: 'POST', headers, body: new URLSearchParams({ token: t }) });
    return { status: res.status, body: (await res.json()) as any };
  };

  test('an active token is described; unknown tokens are {"active": false}; the caller must authenticate', async () => {
    const res = await introspect(token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ active: true, scope: 'system/Patient.rs', client_id: c.clientId, iss: server.baseUrl, token_type: 'Bearer' });
    expect(await introspect('garbage')).toEqual({ status: 200, body: { active: false } });
    expect((await introspect(token, {} as Record<string, string>)).status).toBe(401);
  });

  test('a revoked token is inactive and refused by the FHIR endpoint; revoking unknown tokens is fine', async () => {
    const t = (await tokenRequest(server, { grant_type: 'client_credentials', scope: 'system/Patient.rs' }, basic(c.clientId, c.clientSecret!))).body.access_token;
    expect((await server.client(t).get('Patient')).status).toBe(200);
    const res = await fetch(`${server.baseUrl}/oauth2/revoke`, { method: 'POST', headers: basic(c.clientId, c.clientSecret!), body: new URLSearchParams({ token: t }) });
    expect(res.status).toBe(200);
    expect((await server.client(t).get('Patient')).status).toBe(401);
    expect((await introspect(t)).body).toEqual({ active: false });
    const unknown = await fetch(`${server.baseUrl}/oauth2/revoke`, { method: 'POST', headers: basic(c.clientId, c.clientSecret!), body: new URLSearchParams({ token: 'whatever' }) });
    expect(unknown.status).toBe(200);
    const anonymous = await fetch(`${server.baseUrl}/oauth2/revoke`, { method: 'POST', body: new URLSearchParams({ token: t }) });
    expect(anonymous.status).toBe(401);
  });

  test('who may introspect: a confidential client its own tokens, the admin client or an admin-scoped bearer any; other callers learn nothing', async () => {
    const other = await registerClient(server, { name: 'Other', type: 'confidential-symmetric', scopes: ['system/Patient.rs'] });
    const otherToken = (await tokenRequest(server, { grant_type: 'client_credentials', scope: 'system/Patient.rs' }, basic(other.clientId, other.clientSecret!))).body.access_token;
    // Another confidential client: the token is not its own.
    expect(await introspect(token, basic(other.clientId, other.clientSecret!))).toEqual({ status: 200, body: { active: false } });
    expect((await introspect(otherToken, basic(other.clientId, other.clientSecret!))).body).toMatchObject({ active: true, client_id: other.clientId });
    // A bearer token without the admin scope authorizes nothing, not even its own description.
    const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });
    expect(await introspect(token, bearer(otherToken))).toEqual({ status: 200, body: { active: false } });
    expect(await introspect(otherToken, bearer(otherToken))).toEqual({ status: 200, body: { active: false } });
    // Privileged callers: the admin client (client secret) and a bearer token with the admin scope.
    expect((await introspect(token, basic('admin', server.adminSecret!))).body).toMatchObject({ active: true, client_id: c.clientId });
    expect((await introspect(token, bearer(server.token!))).body).toMatchObject({ active: true, client_id: c.clientId });
    // No or invalid credentials: 401; a public client cannot authenticate.
    const invalid = await introspect(token, bearer('not-a-token'));
    expect(invalid.status).toBe(401);
    expect(invalid.body.error).toBe('invalid_token');
    const pub = await registerClient(server, { name: 'Public reader', type: 'public', redirectUris: ['http://127.0.0.1:9/cb'], scopes: ['patient/*.rs'] });
    const res = await fetch(`${server.baseUrl}/oauth2/introspect`, { method: 'POST', body: new URLSearchParams({ token, client_id: pub.clientId }) });
    expect(res.status).toBe(401);
    expect(((await res.json()) as any).error).toBe('invalid_client');
  });

  test('revoking a token issued to another client is refused (400 unauthorized_client) and revokes nothing; the admin client may', async () => {
    const t = (await tokenRequest(server, { grant_type: 'client_credentials', scope: 'system/Patient.rs' }, basic(c.clientId, c.clientSecret!))).body.access_token;
    const other = await registerClient(server, { name: 'Revoker', type: 'confidential-symmetric', scopes: ['system/Patient.rs'] });
    const pub = await registerClient(server, { name: 'Public revoker', type: 'public', redirectUris: ['http://127.0.0.1:9/cb'], scopes: ['patient/*.rs'] });
    const revoke = (form: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(`${server.baseUrl}/oauth2/revoke`, { method: 'POST', headers, body: new URLSearchParams({ token: t, ...form }) });
    for (const res of [await revoke({}, basic(other.clientId, other.clientSecret!)), await revoke({ client_id: pub.clientId })]) {
      expect(res.status).toBe(400);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(((await res.json()) as any).error).toBe('unauthorized_client');
    }
    expect((await server.client(t).get('Patient')).status).toBe(200);
    expect((await revoke({}, basic('admin', server.adminSecret!))).status).toBe(200);
    expect((await server.client(t).get('Patient')).status).toBe(401);
  });

  test('token_type_hint is only a hint: a wrong one still finds the access token (introspection and revocation)', async () => {
    const t = (await tokenRequest(server, { grant_type: 'client_credentials', scope: 'system/Patient.rs' }, basic(c.clientId, c.clientSecret!))).body.access_token;
    const hinted = await fetch(`${server.baseUrl}/oauth2/introspect`, {
      method: 'POST', headers: basic(c.clientId, c.clientSecret!), body: new URLSearchParams({ token: t, token_type_hint: 'refresh_token' }),
    });
    expect(await hinted.json()).toMatchObject({ active: true, client_id: c.clientId, token_type: 'Bearer' });
    const revoked = await fetch(`${server.baseUrl}/oauth2/revoke`, {
      method: 'POST', headers: basic(c.clientId, c.clientSecret!), body: new URLSearchParams({ token: t, token_type_hint: 'refresh_token' }),
    });
    expect(revoked.status).toBe(200);
    expect((await server.client(t).get('Patient')).status).toBe(401);
    expect((await introspect(t)).body).toEqual({ active: false });
  });

  test('the token endpoint answers GET with 405', async () => {
    expect((await fetch(tokenUrl)).status).toBe(405);
  });
});

describe('keys and admin API', () => {
  test('rotating the signing key keeps earlier tokens valid and publishes both keys', async () => {
    const before = server.token as string;
    const rotated = await admin(server, 'POST', 'keys/rotate', { alg: 'RS256' });
    expect(rotated.status).toBe(201);
    const jwks = (await (await fetch(`${server.baseUrl}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
    const oldKid = JSON.parse(Buffer.from(before.split('.')[0], 'base64url').toString()).kid;
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, rotated.body.kid]));
    expect((await server.client(before).get('Patient')).status).toBe(200);
  });

  test('the admin API needs the admin scope and validates what it registers', async () => {
    const c = await registerClient(server, { name: 'Reader', type: 'confidential-symmetric', scopes: ['system/*.rs'] });
    const reader = (await tokenRequest(server, { grant_type: 'client_credentials', scope: 'system/*.rs' }, basic(c.clientId, c.clientSecret!))).body.access_token;
    const forbidden = await fetch(`${server.baseUrl}/admin/clients`, { headers: { Authorization: `Bearer ${reader}` } });
    expect(forbidden.status).toBe(403);
    expect((await fetch(`${server.baseUrl}/admin/clients`)).status).toBe(401);
    expect((await admin(server, 'POST', 'clients', { name: 'x', type: 'weird' })).status).toBe(400);
    expect((await admin(server, 'POST', 'clients', { name: 'x', type: 'confidential-asymmetric' })).status).toBe(400);
    expect((await admin(server, 'POST', 'users', { username: 'u', password: 'short', fhirUser: 'Practitioner/1' })).status).toBe(400);
    const list = await admin(server, 'GET', 'clients');
    expect(list.body.map((x: any) => x.clientId)).toContain('admin');
    expect(JSON.stringify(list.body)).not.toMatch(/secret/i);
    // Secrets are stored hashed.
    const row = await server.pool.query(`SELECT secret_hash FROM auth_client WHERE client_id = $1`, [c.clientId]);
    expect(row.rows[0].secret_hash).not.toBe(c.clientSecret);
    // A deactivated client gets no more tokens.
    expect((await admin(server, 'DELETE', `clients/${c.clientId}`)).status).toBe(204);
    expect((await tokenRequest(server, { grant_type: 'client_credentials', scope: 'system/*.rs' }, basic(c.clientId, c.clientSecret!))).status).toBe(401);
  });
});
