/**
 * The authorization server's parts, built once per process by the auth module and shared
 * by its routers, plus the security audit events they emit.
 */
import type { Request, Response } from 'express';
import type { AuditRecord, Principal, SecurityEvent } from '../fhir/context';
import { systemContext } from '../fhir/system-context';
import { logger } from '../logger';
import type { Services } from '../services';
import { ClientAuthenticator } from './client-auth';
import { ClientStore } from './clients';
import { GrantStore } from './grants';
import { endpoints, OAuthError, type Endpoints } from './oauth';
import { TokenService, type AccessClaims } from './tokens';
import { UserStore } from './users';

export interface AuthServer {
  services: Services;
  endpoints: Endpoints;
  clients: ClientStore;
  users: UserStore;
  grants: GrantStore;
  tokens: TokenService;
  clientAuth: ClientAuthenticator;
}

export function createAuthServer(services: Services): AuthServer {
  const { config, db } = services;
  const urls = endpoints(config);
  const clients = new ClientStore(db);
  return {
    services,
    endpoints: urls,
    clients,
    users: new UserStore(db),
    grants: new GrantStore(db),
    tokens: new TokenService(config, services.keys, db),
    clientAuth: new ClientAuthenticator(clients, db, urls.token),
  };
}

/**
 * Records a security event (login, logout, token issued or refused) in the audit trail.
 * A failure to audit is logged, not thrown: the event it records has already happened.
 */
export async function auditSecurity(
  auth: AuthServer,
  req: Request,
  res: Response,
  event: SecurityEvent,
  status: number,
  outcomeText: string,
  principal: Principal = { kind: 'anonymous', scopes: [] }
): Promise<void> {
  const { services } = auth;
  const ctx = { ...systemContext(services), requestId: res.locals.requestId as string, principal, remoteAddress: req.ip };
  const record: AuditRecord = {
    interaction: event,
    status,
    outcomeText,
    method: req.method,
    url: new URL(services.config.baseUrl).origin + req.originalUrl.split('?')[0],
    ...(principal.patient && { audited: { patients: [principal.patient] } }),
  };
  try {
    await services.audit.write(ctx, [record]);
  } catch (err) {
    logger.error('security audit failed', { requestId: ctx.requestId, error: String(err) });
  }
}

/** The bearer token of a request, if the Authorization header carries one. */
export function bearerToken(req: Request): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec((req.headers.authorization ?? '').trim())?.[1];
}

/** The claims of the request's valid bearer token, for the JSON (non-FHIR) endpoints; 401 otherwise. */
export async function bearerClaims(auth: AuthServer, req: Request): Promise<AccessClaims> {
  const realm = `Bearer realm="${auth.services.config.baseUrl}"`;
  const token = bearerToken(req);
  if (!token) throw new OAuthError(401, 'invalid_token', 'An access token is required', { 'WWW-Authenticate': realm });
  try {
    return await auth.tokens.verify(token);
  } catch (err) {
    throw new OAuthError(401, 'invalid_token', (err as Error).message, { 'WWW-Authenticate': `${realm}, error="invalid_token"` });
  }
}

/** A 403 for a valid token whose scopes do not cover the request, with the challenge RFC 6750 §3.1 asks for. */
export function insufficientScope(auth: AuthServer, description: string): OAuthError {
  return new OAuthError(403, 'insufficient_scope', description, {
    'WWW-Authenticate': `Bearer realm="${auth.services.config.baseUrl}", error="insufficient_scope"`,
  });
}
