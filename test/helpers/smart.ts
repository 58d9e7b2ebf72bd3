/**
 * Test helpers for SMART flows over real HTTP: registering clients and users through the
 * admin API, a cookie-keeping "browser" that submits the login and consent forms, PKCE,
 * and the token endpoint.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FhirTestClient } from './fhir-client';
import { clientCredentialsToken, type TestServer } from './server';

export interface Registered {
  clientId: string;
  clientSecret?: string;
}

export async function admin(server: TestServer, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.baseUrl}/admin/${path}`, {
    method,
    headers: { Authorization: `Bearer ${server.token}`, ...(body !== undefined && { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

export async function registerClient(server: TestServer, client: Record<string, unknown>): Promise<Registered> {
  const res = await admin(server, 'POST', 'clients', client);
  if (res.status !== 201) throw new Error(`client registration failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { clientId: res.body.clientId, clientSecret: res.body.clientSecret };
}

export async function registerUser(server: TestServer, user: Record<string, unknown>): Promise<string> {
  const res = await admin(server, 'POST', 'users', user);
  if (res.status !== 201) throw new Error(`user registration failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.userId;
}

/**
 * A backend client acting for an organization (system/*.cruds): what it writes has that
 * organization as custodian, so the organization's practitioners see it without a Consent.
 */
export async function organizationClient(server: TestServer, organization: string): Promise<FhirTestClient> {
  const { clientId, clientSecret } = await registerClient(server, {
    name: `${organization} EHR`, type: 'confidential-symmetric', scopes: ['system/*.cruds'], organization,
  });
  return server.client(await clientCredentialsToken(server.baseUrl, clientId, clientSecret as string, 'system/*.cruds'));
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export async function tokenRequest(server: TestServer, form: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.baseUrl}/oauth2/token`, { method: 'POST', headers, body: new URLSearchParams(form) });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

export function basic(clientId: string, secret: string): Record<string, string> {
  return { Authorization: 'Basic ' + Buffer.from(`${clientId}:${secret}`).toString('base64') };
}

/** A minimal browser: keeps cookies, never follows redirects by itself. */
export class Browser {
  private readonly jar = new Map<string, string>();

  async request(url: string, init: { method?: string; form?: Record<string, string | string[]> } = {}) {
    const headers: Record<string, string> = {};
    if (this.jar.size) headers.Cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: string | undefined;
    if (init.form) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(init.form)) for (const value of [v].flat()) params.append(k, value);
      body = params.toString();
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(url, { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    for (const cookie of res.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const eq = pair.indexOf('=');
      const value = pair.slice(eq + 1);
      if (value === '' || /Max-Age=0/.test(cookie)) this.jar.delete(pair.slice(0, eq));
      else this.jar.set(pair.slice(0, eq), value);
    }
    return { status: res.status, location: res.headers.get('location') ?? undefined, html: await res.text(), headers: res.headers };
  }
}

export function hidden(html: string, name: string): string {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!match) throw new Error(`no hidden field ${name} in:\n${html.slice(0, 2000)}`);
  return match[1].replace(/&#(\d+);/g, (_, c) => String.fromCharCode(Number(c)));
}

export interface AuthorizeOptions {
  clientId: string;
  redirectUri: string;
  scope: string;
  username: string;
  password: string;
  /** The patient to pick (practitioner standalone launch). */
  patient?: string;
  launch?: string;
  /** Scopes left checked on the consent page (default: all). */
  keep?: string[];
  decision?: 'allow' | 'deny';
  extra?: Record<string, string>;
  browser?: Browser;
}

/** Drives authorize -> login -> consent; returns the redirect back to the app (as a URL) and the PKCE verifier. */
export async function authorize(server: TestServer, options: AuthorizeOptions): Promise<{ redirect: URL; verifier: string; consentHtml: string }> {
  const browser = options.browser ?? new Browser();
  const { verifier, challenge } = pkce();
  const params = new URLSearchParams({
    response_type: 'code',
    client_id: options.clientId,
    redirect_uri: options.redirectUri,
    scope: options.scope,
    state: 'state-' + randomBytes(4).toString('hex'),
    aud: server.baseUrl,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(options.launch && { launch: options.launch }),
    ...options.extra,
  });
  const start = await browser.request(`${server.baseUrl}/oauth2/authorize?${params}`);
  if (start.status !== 303 || !start.location) throw new Error(`authorize: ${start.status} ${start.location} ${start.html.slice(0, 500)}`);
  if (start.location.startsWith(options.redirectUri)) return { redirect: new URL(start.location), verifier, consentHtml: '' };
  let page = await browser.request(start.location);
  if (page.html.includes('name="password"')) {
    const login = await browser.request(`${server.baseUrl}/oauth2/login`, {
      form: { request: hidden(page.html, 'request'), csrf: hidden(page.html, 'csrf'), username: options.username, password: options.password },
    });
    if (login.status !== 303) throw new Error(`login: ${login.status} ${login.html.slice(0, 500)}`);
    page = await browser.request(login.location as string);
  }
  const scopes = options.keep ?? [...page.html.matchAll(/name="scope" value="([^"]*)"/g)].map((m) => m[1]);
  const consent = await browser.request(`${server.baseUrl}/oauth2/consent`, {
    form: {
      request: hidden(page.html, 'request'),
      csrf: hidden(page.html, 'csrf'),
      decision: options.decision ?? 'allow',
      scope: scopes,
      ...(options.patient && { patient: options.patient }),
    },
  });
  if (consent.status !== 303) throw new Error(`consent: ${consent.status} ${consent.html.slice(0, 1000)}`);
  return { redirect: new URL(consent.location as string), verifier, consentHtml: page.html };
}

/** The whole authorization-code flow for a public client; returns the token response. */
export async function launchToken(server: TestServer, options: AuthorizeOptions) {
  const { redirect, verifier } = await authorize(server, options);
  const code = redirect.searchParams.get('code');
  if (!code) throw new Error(`no code: ${redirect}`);
  return tokenRequest(server, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: options.redirectUri,
    code_verifier: verifier,
    client_id: options.clientId,
  });
}
