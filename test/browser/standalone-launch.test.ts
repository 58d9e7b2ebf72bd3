/**
 * An end-to-end standalone launch in headless Chromium (the Debian `chromium` package,
 * driven by playwright-core): the app sends the browser to /authorize, a practitioner signs
 * in and picks a patient using only the keyboard, allows the app, and the browser lands on
 * the app's redirect URI with a code that the app exchanges for a token that reads the patient.
 *
 * Skipped, with a message saying so, when Chromium is not installed (`.ci/run` installs it).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server';
import { organizationClient, pkce, registerClient, registerUser, tokenRequest } from '../helpers/smart';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const available = fs.existsSync(CHROMIUM);
if (!available) {
  console.warn(`SKIPPED: the browser test needs Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run does this)`);
}

let server: TestServer;
let app: http.Server;
let redirectUri: string;
let patientId: string;
let profileDir: string;

beforeAll(async () => {
  if (!available) return;
  server = await startTestServer();
  // Written as org9, the practitioner's organization, which makes the patients theirs to see.
  const client = await organizationClient(server, 'org9');
  await client.put('Practitioner/pr9', { resourceType: 'Practitioner', id: 'pr9', name: [{ family: 'Quinn' }] });
  patientId = (await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'Zhang', given: ['Wei'] }], birthDate: '1975-05-06' })).body.id;
  await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'Other', given: ['Person'] }] });
  // The SMART app's redirect target: a page that just says it received the answer.
  app = http.createServer((_req, res) => res.end('<!doctype html><title>App</title><p>Back in the app</p>'));
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', () => resolve()));
  redirectUri = `http://127.0.0.1:${(app.address() as AddressInfo).port}/callback`;
  profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chromium-profile-'));
});
afterAll(async () => {
  if (!available) return;
  await new Promise((resolve) => app.close(resolve));
  await server.close();
  fs.rmSync(profileDir, { recursive: true, force: true });
});

(available ? test : test.skip)('standalone launch: sign in, pick the patient and allow, using the keyboard', async () => {
  const clientId = (
    await registerClient(server, { name: 'Wellness Tracker', type: 'public', redirectUris: [redirectUri], scopes: ['launch/patient', 'openid', 'fhirUser', 'patient/*.rs'] })
  ).clientId;
  await registerUser(server, { username: 'quinn', password: 'quinn-password', fhirUser: 'Practitioner/pr9', organization: 'org9', displayName: 'Dr Quinn' });
  const { verifier, challenge } = pkce();
  const authorizeUrl = `${server.baseUrl}/oauth2/authorize?${new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'launch/patient openid fhirUser patient/*.rs',
    state: 'browser-state', aud: server.baseUrl, code_challenge: challenge, code_challenge_method: 'S256',
  })}`;

  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    javaScriptEnabled: false,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(authorizeUrl);
    // The login page names the app; its fields are labelled.
    await page.getByRole('heading', { name: /Wellness Tracker/ }).waitFor();
    await page.getByLabel('User name').focus();
    await page.keyboard.type('quinn');
    await page.keyboard.press('Tab');
    await page.keyboard.type('quinn-password');
    await page.keyboard.press('Enter');

    // Consent page: every scope in words, and the patient picker.
    await page.getByRole('heading', { name: /Wellness Tracker asks for access/ }).waitFor();
    expect(await page.getByText('Signed in as').textContent()).toContain('Dr Quinn');
    expect(await page.locator('main').textContent()).toContain('patient/*.rs');
    await page.getByLabel('Find a patient by name').focus();
    await page.keyboard.type('Zhang');
    await page.keyboard.press('Enter');
    await page.waitForURL(/patient_search=Zhang/);
    const choice = page.getByRole('radio', { name: /Wei Zhang/ });
    await choice.focus();
    await page.keyboard.press('Space');
    expect(await choice.isChecked()).toBe(true);
    await page.screenshot({ path: path.join(os.tmpdir(), 'consent-page.png'), fullPage: true });
    await page.getByRole('button', { name: 'Allow' }).focus();
    await page.keyboard.press('Enter');

    await page.waitForURL((url) => url.toString().startsWith(redirectUri));
    const landed = new URL(page.url());
    expect(landed.searchParams.get('state')).toBe('browser-state');
    const code = landed.searchParams.get('code');
    expect(code).toBeTruthy();

    const token = await tokenRequest(server, { grant_type: 'authorization_code', code: code!, redirect_uri: redirectUri, code_verifier: verifier, client_id: clientId });
    expect(token.status).toBe(200);
    expect(token.body.patient).toBe(patientId);
    const read = await server.client(token.body.access_token).get(`Patient/${patientId}`);
    expect(read.status).toBe(200);
    expect(read.body.name[0].family).toBe('Zhang');
  } finally {
    await context.close();
  }
});
