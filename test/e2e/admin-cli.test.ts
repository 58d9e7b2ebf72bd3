/**
 * `npm run admin -- ...` (dist/cli/admin.js) against a real database: registers clients and
 * users (with their signing keys), lists them, rotates a signing key and creates an EHR launch context.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import pg from 'pg';
import { createTestDatabase, dropTestDatabase } from '../helpers/server';

const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli', 'admin.js');
let databaseUrl: string;
let pool: pg.Pool;

beforeAll(async () => {
  if (!fs.existsSync(CLI)) throw new Error('dist/cli/admin.js is missing: run `npm run build` first (npm test does)');
  databaseUrl = await createTestDatabase();
  pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
});
afterAll(async () => {
  await pool.end();
  await dropTestDatabase(databaseUrl);
});

function admin(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'error' } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    );
  });
}

test('registers clients and users, rotates keys, creates launch contexts', async () => {
  const app = await admin('client', 'add', '--name', 'Growth Chart', '--type', 'public', '--redirect-uri', 'https://app.example/cb',
    '--scope', 'launch/patient', '--scope', 'patient/*.rs');
  expect(app.code).toBe(0);
  const registered = JSON.parse(app.stdout);
  expect(registered).toMatchObject({ name: 'Growth Chart', type: 'public', redirectUris: ['https://app.example/cb'], scopes: ['launch/patient', 'patient/*.rs'] });

  const portal = JSON.parse((await admin('client', 'add', '--name', 'Portal', '--type', 'confidential-symmetric', '--id', 'portal', '--scope', 'user/*.rs')).stdout);
  expect(portal.clientSecret).toEqual(expect.any(String));
  const stored = await pool.query(`SELECT secret_hash FROM auth_client WHERE client_id = 'portal'`);
  expect(stored.rows[0].secret_hash).not.toBe(portal.clientSecret);

  const user = await admin('user', 'add', '--username', 'house', '--password', 'a long secret', '--fhir-user', 'Practitioner/pr1', '--organization', 'org1');
  expect(user.code).toBe(0);
  expect(JSON.parse(user.stdout)).toMatchObject({ username: 'house', fhirUser: 'Practitioner/pr1', organization: 'org1' });
  const hash = await pool.query(`SELECT password_hash FROM auth_user WHERE username = 'house'`);
  expect(hash.rows[0].password_hash).toMatch(/^scrypt\$/);

  const bad = await admin('user', 'add', '--username', 'nobody', '--password', 'a long secret', '--fhir-user', 'Practitioner/pr2');
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(/organization/);

  const list = JSON.parse((await admin('client', 'list')).stdout);
  expect(list.map((c: { clientId: string }) => c.clientId)).toEqual(expect.arrayContaining([registered.clientId, 'portal']));

  const rotated = JSON.parse((await admin('keys', 'rotate', '--alg', 'RS256', '--retain-seconds', '7200')).stdout);
  const keys = await pool.query(`SELECT kid, retired_at IS NULL AS active FROM signing_key WHERE alg = 'RS256'`);
  expect(keys.rows.find((k) => k.active).kid).toBe(rotated.kid);

  const launch = JSON.parse((await admin('launch', '--patient', 'p1', '--client', registered.clientId)).stdout);
  const row = await pool.query(`SELECT context FROM auth_launch WHERE launch_id = $1`, [launch.launch]);
  expect(row.rows[0].context).toEqual({ patient: 'p1' });

  expect((await admin('client', 'frobnicate')).code).toBe(1);
});

test("registers a practitioner's signing keys (a small public JWKS) and replaces or clears them", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jwks-'));
  const pair = await generateKeyPair('ES256', { extractable: true });
  const publicFile = path.join(dir, 'public.json');
  fs.writeFileSync(publicFile, JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] }));
  const privateFile = path.join(dir, 'private.json');
  fs.writeFileSync(privateFile, JSON.stringify({ keys: [{ ...(await exportJWK(pair.privateKey)), kid: 'k1' }] }));

  const added = await admin('user', 'add', '--username', 'signer', '--password', 'a long secret', '--fhir-user', 'Practitioner/pr9', '--organization', 'org1', '--jwks-file', publicFile);
  expect(added.code).toBe(0);
  const user = JSON.parse(added.stdout);
  expect(user.signingJwks.keys.map((k: { kid: string }) => k.kid)).toEqual(['k1']);

  const refused = await admin('user', 'keys', user.userId, '--jwks-file', privateFile);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/private key material/);
  const cleared = await admin('user', 'keys', user.userId, '--clear');
  expect(cleared.code).toBe(0);
  const row = await pool.query('SELECT signing_jwks FROM auth_user WHERE user_id = $1', [user.userId]);
  expect(row.rows[0].signing_jwks).toBeNull();
  fs.rmSync(dir, { recursive: true });
});
