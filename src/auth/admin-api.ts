/**
 * The admin API (<base>/admin/...) and the EHR launch-context API (<base>/oauth2/launch):
 * JSON in and out, for a bearer token carrying the `admin` scope (the bootstrap admin
 * client has it). Registers clients and users (with the public keys a practitioner signs
 * with), rotates signing keys, creates launch contexts.
 */
import express, { type Request, type Response } from 'express';
import { ADMIN_SCOPE } from '../access/scopes';
import type { SigningAlg } from '../keys/keystore';
import { clientProblem, type NewClient } from './clients';
import { bearerClaims, insufficientScope, type AuthServer } from './context';
import { OAuthError, oauthErrors, oauthHandler } from './oauth';
import type { LaunchContext } from './tokens';
import { userProblem, type NewUser, type SigningJwks } from './users';

const LAUNCH_LIFETIME = 3600;

async function requireAdmin(auth: AuthServer, req: Request): Promise<void> {
  const claims = await bearerClaims(auth, req);
  if (!claims.scope.split(' ').includes(ADMIN_SCOPE)) throw insufficientScope(auth, 'The admin scope is required');
}

function admin(auth: AuthServer, fn: (req: Request, res: Response) => Promise<void>) {
  return oauthHandler(async (req, res) => {
    await requireAdmin(auth, req);
    res.setHeader('Cache-Control', 'no-store');
    await fn(req, res);
  });
}

function body<T>(req: Request): T {
  if (!req.body || typeof req.body !== 'object' || Array.isArray(req.body)) throw oauthErrors.invalidRequest('A JSON object body is required');
  return req.body as T;
}

/** Turns the stores' validation errors (plain Errors) into 400s. */
async function validated<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof OAuthError) throw err;
    throw oauthErrors.invalidRequest((err as Error).message);
  }
}

function launchContext(input: Record<string, unknown>): LaunchContext {
  const context: LaunchContext = {};
  const id = /^[A-Za-z0-9\-.]{1,64}$/;
  if (input.patient !== undefined) {
    if (typeof input.patient !== 'string' || !id.test(input.patient)) throw oauthErrors.invalidRequest('patient must be a Patient id');
    context.patient = input.patient;
  }
  if (input.encounter !== undefined) {
    if (typeof input.encounter !== 'string' || !id.test(input.encounter)) throw oauthErrors.invalidRequest('encounter must be an Encounter id');
    context.encounter = input.encounter;
  }
  if (input.fhirContext !== undefined) {
    if (!Array.isArray(input.fhirContext) || input.fhirContext.some((c) => !c || typeof c !== 'object')) {
      throw oauthErrors.invalidRequest('fhirContext must be an array of objects ({"reference": "Type/id"}, ...)');
    }
    context.fhirContext = input.fhirContext as LaunchContext['fhirContext'];
  }
  for (const key of ['need_patient_banner'] as const) {
    if (input[key] !== undefined) context[key] = Boolean(input[key]);
  }
  for (const key of ['smart_style_url', 'intent', 'tenant'] as const) {
    if (input[key] !== undefined) context[key] = String(input[key]);
  }
  return context;
}

export function adminRouter(auth: AuthServer, adminPath: string, oauthPath: string): express.Router {
  const router = express.Router();
  const json = express.json({ limit: '1mb' });

  router.post(`${oauthPath}/launch`, json, admin(auth, async (req, res) => {
    const input = body<Record<string, unknown>>(req);
    const clientId = typeof input.client_id === 'string' ? input.client_id : undefined;
    if (clientId && !(await auth.clients.get(clientId))) throw oauthErrors.invalidRequest(`Unknown client "${clientId}"`);
    const launch = await auth.grants.createLaunch(launchContext(input), clientId, LAUNCH_LIFETIME);
    res.status(201).json({ launch, expires_in: LAUNCH_LIFETIME, iss: auth.services.config.baseUrl });
  }));

  router.get(`${adminPath}/clients`, admin(auth, async (_req, res) => {
    res.json(await auth.clients.list());
  }));
  router.post(`${adminPath}/clients`, json, admin(auth, async (req, res) => {
    const input = body<NewClient>(req);
    const problem = clientProblem(input);
    if (problem) throw oauthErrors.invalidRequest(problem);
    const { client, secret } = await validated(() => auth.clients.create(input));
    res.status(201).json({ ...client, ...(secret && { clientSecret: secret }) });
  }));
  router.get(`${adminPath}/clients/:id`, admin(auth, async (req, res) => {
    const client = await auth.clients.get(String(req.params.id));
    if (!client) throw new OAuthError(404, 'not_found', 'No such active client');
    res.json(client);
  }));
  router.delete(`${adminPath}/clients/:id`, admin(auth, async (req, res) => {
    if (!(await auth.clients.deactivate(String(req.params.id)))) throw new OAuthError(404, 'not_found', 'No such active client');
    res.status(204).end();
  }));
  router.post(`${adminPath}/clients/:id/secret`, admin(auth, async (req, res) => {
    const secret = await auth.clients.resetSecret(String(req.params.id));
    if (!secret) throw new OAuthError(404, 'not_found', 'No such active confidential-symmetric client');
    res.json({ clientId: req.params.id, clientSecret: secret });
  }));

  router.get(`${adminPath}/users`, admin(auth, async (_req, res) => {
    res.json(await auth.users.list());
  }));
  router.post(`${adminPath}/users`, json, admin(auth, async (req, res) => {
    const input = body<NewUser>(req);
    const problem = userProblem(input);
    if (problem) throw oauthErrors.invalidRequest(problem);
    res.status(201).json(await validated(() => auth.users.create(input)));
  }));
  // A practitioner's own signing keys (a small JWKS of public keys): PUT replaces, DELETE removes them.
  for (const method of ['put', 'delete'] as const) {
    router[method](`${adminPath}/users/:id/signing-keys`, json, admin(auth, async (req, res) => {
      const input = method === 'put' ? body<SigningJwks>(req) : undefined;
      const user = await validated(() => auth.users.setSigningJwks(String(req.params.id), input));
      if (!user) throw new OAuthError(404, 'not_found', 'No such active user');
      res.json(user);
    }));
  }
  router.delete(`${adminPath}/users/:id`, admin(auth, async (req, res) => {
    if (!(await auth.users.deactivate(String(req.params.id)))) throw new OAuthError(404, 'not_found', 'No such active user');
    res.status(204).end();
  }));

  router.post(`${adminPath}/keys/rotate`, json, admin(auth, async (req, res) => {
    const input = (req.body ?? {}) as { alg?: string; retainSeconds?: number };
    const alg = (input.alg ?? 'RS256') as SigningAlg;
    if (alg !== 'RS256' && alg !== 'ES256') throw oauthErrors.invalidRequest('alg must be RS256 or ES256');
    // Access-token keys stay verifiable at least as long as the tokens they signed.
    const retain = input.retainSeconds ?? (alg === 'RS256' ? auth.services.config.auth.accessTokenLifetime * 2 : undefined);
    if (retain !== undefined && (!Number.isInteger(retain) || retain < 0)) throw oauthErrors.invalidRequest('retainSeconds must be a non-negative integer');
    const kid = await auth.services.keys.rotate(alg, retain === undefined ? undefined : retain * 1000);
    res.status(201).json({ kid, alg, previousKeyRetainedSeconds: retain ?? null });
  }));
  return router;
}
