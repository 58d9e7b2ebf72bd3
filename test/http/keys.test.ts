/**
 * The server's signing keys: persisted, published as a JWKS below the FHIR base, shared by
 * every process, and rotatable without invalidating what the previous key signed.
 */
import { compactVerify, CompactSign, importJWK, type JWK } from 'jose';
import { KeyStore } from '../../src/keys/keystore';
import { Database } from '../../src/store/database';
import { startTestServer, type TestServer } from '../helpers/server';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.close());

async function jwks(): Promise<JWK[]> {
  const res = await fetch(`${server.baseUrl}/.well-known/jwks.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  return ((await res.json()) as { keys: JWK[] }).keys;
}

test('the JWKS publishes an RS256 and an ES256 public key, never a private part', async () => {
  const keys = await jwks();
  expect(keys.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
  for (const key of keys) {
    expect(key.kid).toEqual(expect.any(String));
    expect(key.use).toBe('sig');
    expect(key.d).toBeUndefined();
    expect(key.p).toBeUndefined();
  }
  const rows = await server.pool.query('SELECT count(*)::int AS n FROM signing_key WHERE retired_at IS NULL');
  expect(rows.rows[0].n).toBe(2);
});

test('two processes (two key stores on one database) sign with the same key and verify each other', async () => {
  const other = new Database(server.databaseUrl, 2);
  try {
    const a = server.services.keys;
    const b = new KeyStore(other);
    const signer = await a.signingKey('ES256');
    expect((await b.signingKey('ES256')).kid).toBe(signer.kid);
    const jws = await new CompactSign(new TextEncoder().encode('hello'))
      .setProtectedHeader({ alg: 'ES256', kid: signer.kid })
      .sign(signer.privateKey);
    const verifier = await b.verificationKey(signer.kid);
    expect(verifier).toBeDefined();
    const { payload } = await compactVerify(jws, verifier!.key);
    expect(new TextDecoder().decode(payload)).toBe('hello');
  } finally {
    await other.close();
  }
});

test('rotation: a new key signs, the old one stays published and verifies what it signed', async () => {
  const store = server.services.keys;
  const old = await store.signingKey('RS256');
  const oldJws = await new CompactSign(new TextEncoder().encode('before'))
    .setProtectedHeader({ alg: 'RS256', kid: old.kid })
    .sign(old.privateKey);
  const newKid = await store.rotate('RS256');
  expect(newKid).not.toBe(old.kid);
  expect((await store.signingKey('RS256')).kid).toBe(newKid);

  const published = await jwks();
  expect(published.map((k) => k.kid)).toEqual(expect.arrayContaining([old.kid, newKid]));
  const oldPublic = published.find((k) => k.kid === old.kid)!;
  await expect(compactVerify(oldJws, await importJWK(oldPublic, 'RS256'))).resolves.toBeDefined();

  // A key rotated out with a retention period (newKid here) disappears once it is over.
  const newest = await store.rotate('RS256', 1);
  await new Promise((r) => setTimeout(r, 20));
  const after = (await jwks()).map((k) => k.kid);
  expect(after).not.toContain(newKid);
  expect(after).toEqual(expect.arrayContaining([old.kid, newest]));
  expect(await store.verificationKey(newKid)).toBeUndefined();
});
