/**
 * What every OAuth endpoint shares: RFC 6749 JSON errors (thrown as OAuthError, rendered
 * once), the no-store headers, random opaque tokens and their stored hashes, and the
 * endpoint URLs that discovery publishes.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { basePath, type Config } from '../config';
import { logger } from '../logger';

export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
    readonly headers: Record<string, string> = {}
  ) {
    super(description);
    this.name = 'OAuthError';
  }
}

export const oauthErrors = {
  invalidRequest: (d: string) => new OAuthError(400, 'invalid_request', d),
  invalidGrant: (d: string) => new OAuthError(400, 'invalid_grant', d),
  invalidScope: (d: string) => new OAuthError(400, 'invalid_scope', d),
  unauthorizedClient: (d: string) => new OAuthError(400, 'unauthorized_client', d),
  unsupportedGrantType: (d: string) => new OAuthError(400, 'unsupported_grant_type', d),
  unsupportedTokenType: (d: string) => new OAuthError(400, 'unsupported_token_type', d),
  invalidClient: (d: string, basic = false) =>
    new OAuthError(401, 'invalid_client', d, basic ? { 'WWW-Authenticate': 'Basic realm="token"' } : {}),
};

export function noStore(res: Response): void {
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Pragma', 'no-cache');
}

export function sendOAuthError(res: Response, err: OAuthError): void {
  noStore(res);
  for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
  res.status(err.status).json({ error: err.error, error_description: err.description });
}

/** Wraps an async handler: OAuthErrors become RFC 6749 JSON, anything else a logged 500 server_error. */
export function oauthHandler(fn: (req: Request, res: Response) => Promise<void>) {
  return (req: Request, res: Response, _next: NextFunction) => {
    fn(req, res).catch((err) => {
      if (err instanceof OAuthError) {
        sendOAuthError(res, err);
        return;
      }
      logger.error('oauth endpoint failed', { requestId: res.locals.requestId, error: String(err), stack: (err as Error).stack });
      if (!res.headersSent) sendOAuthError(res, new OAuthError(500, 'server_error', 'Internal server error'));
    });
  };
}

/** A fresh random token (256 bits), URL-safe. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** Codes, refresh tokens, session ids and client secrets are stored only as this hash. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export interface Endpoints {
  issuer: string;
  authorize: string;
  token: string;
  introspect: string;
  revoke: string;
  jwks: string;
  launch: string;
  userinfo: string;
  smartConfiguration: string;
  /** The pages behind /authorize. */
  interact: string;
  login: string;
  logout: string;
  consent: string;
  smartStyle: string;
}

/** Mount path of the OAuth endpoints, below the FHIR base (so a proxy in front maps them too). */
export const OAUTH_PATH = '/oauth2';
export const ADMIN_PATH = '/admin';

export function mountPath(config: Pick<Config, 'baseUrl'>, suffix: string): string {
  return basePath(config).replace(/\/$/, '') + suffix;
}

export function endpoints(config: Pick<Config, 'baseUrl'>): Endpoints {
  const base = config.baseUrl;
  return {
    issuer: base,
    authorize: `${base}${OAUTH_PATH}/authorize`,
    token: `${base}${OAUTH_PATH}/token`,
    introspect: `${base}${OAUTH_PATH}/introspect`,
    revoke: `${base}${OAUTH_PATH}/revoke`,
    jwks: `${base}/.well-known/jwks.json`,
    launch: `${base}${OAUTH_PATH}/launch`,
    userinfo: `${base}${OAUTH_PATH}/userinfo`,
    smartConfiguration: `${base}/.well-known/smart-configuration`,
    interact: `${base}${OAUTH_PATH}/interact`,
    login: `${base}${OAUTH_PATH}/login`,
    logout: `${base}${OAUTH_PATH}/logout`,
    consent: `${base}${OAUTH_PATH}/consent`,
    smartStyle: `${base}${OAUTH_PATH}/smart-style.json`,
  };
}

/**
 * Form fields of an application/x-www-form-urlencoded body. A repeated parameter is
 * invalid_request: "Request and response parameters MUST NOT be included more than once"
 * (RFC 6749 §3.2, §5.2), and picking one of the values would be a guess.
 */
export function formOf(req: Request): Record<string, string> {
  const body = (req.body && typeof req.body === 'object' ? req.body : {}) as Record<string, unknown>;
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(body)) {
    if (Array.isArray(value)) throw oauthErrors.invalidRequest(`The parameter ${key} is repeated`);
    if (typeof value === 'string') result[key] = value;
  }
  return result;
}
