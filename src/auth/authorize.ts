/**
 * The authorization endpoint and the pages behind it (SMART App Launch 2.x, OAuth 2.0 with
 * PKCE): standalone launch (a practitioner picks the patient, a patient user gets their own
 * record) and EHR launch (a `launch` id bound to a context the EHR created).
 *
 * GET or POST /authorize validates the request. Until client_id and redirect_uri are known
 * to be registered, errors are shown as a page (never redirected); after that they go back
 * to the app as `error=...&state=...`. A valid request is stored and the browser continues
 * to /interact: login page, then consent page; the consent form posts to /consent, which
 * redirects to the app with a single-use code.
 *
 * CSRF: the login form uses a double-submit cookie; forms after login carry the session's
 * own token. Cookies are HttpOnly and SameSite=Lax.
 */
import type { Request, Response } from 'express';
import type { Patient } from '@medplum/fhirtypes';
import { grantableScopes, splitScopes } from '../access/scopes';
import { SmartAccessPolicy } from '../access/smart-policy';
import type { Principal, RequestContext } from '../fhir/context';
import { systemContext } from '../fhir/system-context';
import type { Client } from './clients';
import { auditSecurity, type AuthServer } from './context';
import type { AuthorizationRequest } from './grants';
import { consentPage, errorPage, loginPage, type PatientChoice } from './pages';
import type { LaunchContext } from './tokens';
import type { Session, User } from './users';
import { mountPath, OAUTH_PATH, randomToken } from './oauth';

const SESSION_COOKIE = 'fhir_session';
const LOGIN_CSRF_COOKIE = 'fhir_login_csrf';

function cookies(req: Request): Record<string, string> {
  const result: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) result[part.slice(0, eq).trim()] = decodeURIComponent(part.slice(eq + 1).trim());
  }
  return result;
}

function setCookie(auth: AuthServer, res: Response, name: string, value: string, maxAge: number): void {
  const secure = auth.services.config.baseUrl.startsWith('https:') ? '; Secure' : '';
  const path = mountPath(auth.services.config, OAUTH_PATH);
  res.append('Set-Cookie', `${name}=${encodeURIComponent(value)}; Path=${path}; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure}`);
}

function page(res: Response, status: number, html: string): void {
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
  res.setHeader('X-Frame-Options', 'DENY');
  res.status(status).type('html').send(html);
}

function redirectWith(res: Response, redirectUri: string, params: Record<string, string | undefined>): void {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  res.setHeader('Cache-Control', 'no-store');
  res.redirect(303, url.toString());
}

function paramsOf(req: Request): Record<string, string> {
  const merged: Record<string, unknown> = { ...(req.query as Record<string, unknown>), ...((req.method === 'POST' && req.body) || {}) };
  const result: Record<string, string> = {};
  for (const [k, v] of Object.entries(merged)) {
    const value = Array.isArray(v) ? v[v.length - 1] : v;
    if (typeof value === 'string') result[k] = value;
  }
  return result;
}

/** GET and POST /authorize. */
export async function authorizeEndpoint(auth: AuthServer, req: Request, res: Response): Promise<void> {
  const p = paramsOf(req);
  const client = p.client_id ? await auth.clients.get(p.client_id) : undefined;
  if (!client) return page(res, 400, errorPage('Unknown application', 'The client_id is missing or not registered.'));
  if (!p.redirect_uri || !client.redirectUris.includes(p.redirect_uri)) {
    return page(res, 400, errorPage('Invalid redirect', `The redirect_uri is missing or is not registered for ${client.name}.`));
  }
  const fail = (error: string, description: string) =>
    redirectWith(res, p.redirect_uri, { error, error_description: description, state: p.state });
  if (p.response_type !== 'code') return fail('unsupported_response_type', 'response_type must be code');
  if (!p.code_challenge || p.code_challenge_method !== 'S256') {
    return fail('invalid_request', 'PKCE is required: code_challenge with code_challenge_method=S256');
  }
  if (!/^[A-Za-z0-9_-]{43}$/.test(p.code_challenge)) return fail('invalid_request', 'code_challenge must be a base64url SHA-256 hash');
  const baseUrl = auth.services.config.baseUrl;
  if ((p.aud ?? '').replace(/\/$/, '') !== baseUrl) return fail('invalid_request', `aud must be this FHIR server: ${baseUrl}`);
  const requested = splitScopes(p.scope);
  const grantable = grantableScopes(requested, client.scopes, ['patient', 'user']);
  if (grantable.length === 0) return fail('invalid_scope', 'None of the requested scopes may be granted to this app');
  let context: LaunchContext | undefined;
  if (p.launch) {
    if (!grantable.includes('launch')) return fail('invalid_scope', 'An EHR launch needs the launch scope');
    const launch = await auth.grants.launch(p.launch);
    if (!launch || (launch.clientId && launch.clientId !== client.clientId)) {
      return fail('invalid_request', 'The launch is unknown, expired, or meant for another app');
    }
    context = launch.context;
  }
  const request: AuthorizationRequest = {
    response_type: 'code',
    client_id: client.clientId,
    redirect_uri: p.redirect_uri,
    scope: p.scope,
    state: p.state,
    aud: p.aud,
    code_challenge: p.code_challenge,
    code_challenge_method: 'S256',
    launch: p.launch,
    nonce: p.nonce,
    grantable,
    context,
  };
  const id = await auth.grants.saveRequest(request);
  res.setHeader('Cache-Control', 'no-store');
  res.redirect(303, `${auth.endpoints.interact}?request=${encodeURIComponent(id)}`);
}

interface Pending {
  id: string;
  request: AuthorizationRequest;
  client: Client;
}

async function pending(auth: AuthServer, id: string | undefined): Promise<Pending | undefined> {
  const request = await auth.grants.request(id);
  const client = request && (await auth.clients.get(request.client_id));
  return request && client ? { id: id as string, request, client } : undefined;
}

const expired = () => errorPage('Authorization expired', 'This authorization request is unknown or has expired. Start again from the app.');

function userPrincipal(user: User, scopes: string[]): Principal {
  return { kind: 'user', userId: user.userId, fhirUser: user.fhirUser, organization: user.organization, scopes };
}

/** A context in which the user's own access rules apply (the patient picker sees what the user may see). */
function userContext(auth: AuthServer, user: User): RequestContext {
  const principal = userPrincipal(user, ['user/Patient.rs']);
  return { ...systemContext(auth.services), principal, access: new SmartAccessPolicy(principal, auth.services) };
}

function patientName(patient: Patient): string {
  const name = patient.name?.[0];
  const text = name?.text ?? [...(name?.given ?? []), name?.family].filter(Boolean).join(' ');
  return text || `Patient ${patient.id}`;
}

function needsPicker(p: Pending, user: User): boolean {
  return p.request.grantable.includes('launch/patient') && !p.request.context?.patient && !user.fhirUser.startsWith('Patient/');
}

async function findPatients(auth: AuthServer, user: User, query: string): Promise<PatientChoice[]> {
  const params: [string, string][] = [['_count', '20'], ['_sort', 'family']];
  if (query) params.push(['name', query]);
  const bundle = await auth.services.search.search(userContext(auth, user), { resourceType: 'Patient', params, url: auth.endpoints.authorize });
  return (bundle.entry ?? []).map((e) => {
    const patient = e.resource as Patient;
    return { id: patient.id as string, name: patientName(patient), details: [patient.birthDate && `born ${patient.birthDate}`, patient.gender, `id ${patient.id}`].filter(Boolean).join(', ') };
  });
}

async function renderConsent(auth: AuthServer, res: Response, p: Pending, session: Session, query: string, error?: string): Promise<void> {
  const user = session.user;
  let patientLabel: string | undefined;
  const patientId = p.request.context?.patient ?? (user.fhirUser.startsWith('Patient/') ? user.fhirUser.slice(8) : undefined);
  if (patientId) {
    try {
      patientLabel = patientName((await auth.services.repo.read(systemContext(auth.services), 'Patient', patientId)).resource as Patient);
    } catch {
      patientLabel = `Patient ${patientId}`;
    }
  }
  const picker = needsPicker(p, user) ? { query, results: await findPatients(auth, user, query) } : undefined;
  page(
    res,
    error ? 400 : 200,
    consentPage({
      action: auth.endpoints.consent,
      pickerAction: auth.endpoints.interact,
      logoutAction: auth.endpoints.logout,
      requestId: p.id,
      csrf: session.csrf,
      appName: p.client.name,
      userName: user.displayName ?? user.username,
      scopes: p.request.grantable,
      patientLabel: p.request.grantable.some((s) => s.startsWith('launch') || s.startsWith('patient/')) ? patientLabel : undefined,
      picker,
      error,
    })
  );
}

function renderLogin(auth: AuthServer, res: Response, p: Pending, status: number, username?: string, error?: string): void {
  const csrf = randomToken(18);
  setCookie(auth, res, LOGIN_CSRF_COOKIE, csrf, 3600);
  page(res, status, loginPage({ action: auth.endpoints.login, requestId: p.id, csrf, appName: p.client.name, username, error }));
}

/** GET /interact: the login page, or the consent page once logged in. */
export async function interactPage(auth: AuthServer, req: Request, res: Response): Promise<void> {
  const p = await pending(auth, req.query.request as string | undefined);
  if (!p) return page(res, 400, expired());
  const session = await auth.users.session(cookies(req)[SESSION_COOKIE]);
  if (!session) return renderLogin(auth, res, p, 200);
  await renderConsent(auth, res, p, session, typeof req.query.patient_search === 'string' ? req.query.patient_search.slice(0, 100) : '');
}

/** POST /login. */
export async function loginSubmit(auth: AuthServer, req: Request, res: Response): Promise<void> {
  const form = paramsOf(req);
  const p = await pending(auth, form.request);
  if (!p) return page(res, 400, expired());
  const csrf = cookies(req)[LOGIN_CSRF_COOKIE];
  if (!csrf || csrf !== form.csrf) return renderLogin(auth, res, p, 403, form.username, 'The form expired. Please sign in again.');
  const user = await auth.users.login(form.username ?? '', form.password ?? '');
  if (!user) {
    await auditSecurity(auth, req, res, 'login', 401, `Login failed for user name "${(form.username ?? '').slice(0, 100)}"`, {
      kind: 'anonymous',
      scopes: [],
      clientId: p.client.clientId,
    });
    return renderLogin(auth, res, p, 401, form.username, 'The user name or password is not correct.');
  }
  const value = await auth.users.startSession(user.userId, auth.services.config.auth.sessionLifetime);
  setCookie(auth, res, SESSION_COOKIE, value, auth.services.config.auth.sessionLifetime);
  setCookie(auth, res, LOGIN_CSRF_COOKIE, '', 0);
  await auditSecurity(auth, req, res, 'login', 200, 'Login', { ...userPrincipal(user, []), clientId: p.client.clientId });
  res.redirect(303, `${auth.endpoints.interact}?request=${encodeURIComponent(p.id)}`);
}

/** POST /logout. */
export async function logoutSubmit(auth: AuthServer, req: Request, res: Response): Promise<void> {
  const form = paramsOf(req);
  const session = await auth.users.session(cookies(req)[SESSION_COOKIE]);
  if (session && session.csrf === form.csrf) {
    await auth.users.endSession(session.sessionHash);
    setCookie(auth, res, SESSION_COOKIE, '', 0);
    await auditSecurity(auth, req, res, 'logout', 200, 'Logout', userPrincipal(session.user, []));
  }
  const target = form.request ? `${auth.endpoints.interact}?request=${encodeURIComponent(form.request)}` : undefined;
  if (target) return res.redirect(303, target);
  page(res, 200, errorPage('Signed out', 'You are signed out.'));
}

/** POST /consent: allow (with the scopes left checked, and the patient chosen) or deny. */
export async function consentSubmit(auth: AuthServer, req: Request, res: Response): Promise<void> {
  const form = paramsOf(req);
  const p = await pending(auth, form.request);
  if (!p) return page(res, 400, expired());
  const session = await auth.users.session(cookies(req)[SESSION_COOKIE]);
  if (!session) return renderLogin(auth, res, p, 401, undefined, 'Please sign in again.');
  if (session.csrf !== form.csrf) return page(res, 403, errorPage('Form expired', 'The form could not be verified. Start again from the app.'));
  const { request } = p;
  if (form.decision !== 'allow') {
    await auth.grants.deleteRequest(p.id);
    return redirectWith(res, request.redirect_uri, { error: 'access_denied', error_description: 'The user denied access', state: request.state });
  }
  const raw = (req.body as Record<string, unknown>).scope;
  const checked = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((s): s is string => typeof s === 'string');
  const scopes = request.grantable.filter((s) => checked.includes(s));
  if (scopes.length === 0) return renderConsent(auth, res, p, session, '', 'Choose at least one permission, or deny.');
  const user = session.user;
  const context: LaunchContext = { ...(request.context ?? {}) };
  if (user.fhirUser.startsWith('Patient/')) {
    const own = user.fhirUser.slice(8);
    if (context.patient && context.patient !== own) {
      // client_id and redirect_uri are valid by now, so the error goes back to the app with its
      // state (RFC 6749 §4.1.2.1), not onto a page where the flow would end.
      await auth.grants.deleteRequest(p.id);
      return redirectWith(res, request.redirect_uri, {
        error: 'access_denied',
        error_description: 'This launch concerns another patient than the signed-in patient',
        state: request.state,
      });
    }
    if (scopes.includes('launch/patient') || scopes.some((s) => s.startsWith('patient/'))) context.patient = own;
  } else if (needsPicker(p, user)) {
    const chosen = form.patient;
    const visible = chosen && (await auth.services.repo.read(userContext(auth, user), 'Patient', chosen).then(() => true, () => false));
    if (!visible) return renderConsent(auth, res, p, session, '', 'Choose the patient the app is for.');
    context.patient = chosen;
    context.need_patient_banner = true;
  }
  if (context.patient && context.need_patient_banner === undefined) context.need_patient_banner = !request.context;
  context.smart_style_url ??= auth.endpoints.smartStyle;
  const code = await auth.grants.createCode(
    {
      clientId: p.client.clientId,
      userId: user.userId,
      sessionHash: session.sessionHash,
      redirectUri: request.redirect_uri,
      scope: scopes.join(' '),
      codeChallenge: request.code_challenge,
      nonce: request.nonce,
      context,
    },
    auth.services.config.auth.codeLifetime
  );
  await auth.grants.deleteRequest(p.id);
  redirectWith(res, request.redirect_uri, { code, state: request.state });
}
