/**
 * The auth module: this server is its own SMART-on-FHIR authorization server. It installs
 * the bearer-token authenticator for the FHIR endpoint, the CapabilityStatement's security
 * section, and the routers for discovery, the OAuth endpoints, the login and consent pages
 * and the admin API. AUTH_DISABLED=true leaves the open authenticator in place.
 */
import express from 'express';
import { logger } from '../logger';
import type { ServerModule } from '../services';
import { adminRouter } from './admin-api';
import { authorizeEndpoint, consentSubmit, interactPage, loginSubmit, logoutSubmit } from './authorize';
import { smartAuthenticator } from './authenticator';
import { createAuthServer, type AuthServer } from './context';
import { openidConfiguration, securityContributor, smartConfiguration, SMART_STYLE } from './discovery';
import { ADMIN_PATH, mountPath, OAUTH_PATH, OAuthError, oauthErrors, oauthHandler, sendOAuthError } from './oauth';
import { introspectEndpoint, revokeEndpoint, tokenEndpoint } from './token-endpoint';
import { userinfoEndpoint } from './userinfo';

function pageHandler(fn: (req: express.Request, res: express.Response) => Promise<void>) {
  return (req: express.Request, res: express.Response, next: express.NextFunction) => {
    fn(req, res).catch(next);
  };
}

/**
 * U+0000 (%00) in a query or form parameter would reach PostgreSQL text, which cannot hold it:
 * a database error (500) where the client deserves invalid_request. Checked once for every
 * OAuth and admin endpoint, after the form (if any) is parsed.
 */
function refuseNul(req: express.Request, res: express.Response, next: express.NextFunction): void {
  const form = req.body && typeof req.body === 'object' && !Buffer.isBuffer(req.body) ? Object.entries(req.body as object).flat() : [];
  if (/%00/.test(req.originalUrl) || form.some((text) => typeof text === 'string' && text.includes('\u0000'))) {
    sendOAuthError(res, oauthErrors.invalidRequest('A parameter contains a NUL character (%00)'));
    return;
  }
  next();
}

function oauthRouter(auth: AuthServer): express.Router {
  const { config } = auth.services;
  const router = express.Router();
  const form = [express.urlencoded({ extended: false, limit: '64kb' }), refuseNul];
  const oauth = mountPath(config, OAUTH_PATH);
  router.use([oauth, mountPath(config, ADMIN_PATH)], refuseNul);
  const wellKnown = mountPath(config, '/.well-known');

  const publicJson = (body: unknown) => (_req: express.Request, res: express.Response) => {
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.json(body);
  };
  router.get(`${wellKnown}/smart-configuration`, publicJson(smartConfiguration(auth.endpoints)));
  router.get(`${wellKnown}/openid-configuration`, publicJson(openidConfiguration(auth.endpoints)));
  router.get(`${oauth}/smart-style.json`, publicJson(SMART_STYLE));

  router.get(`${oauth}/authorize`, pageHandler((req, res) => authorizeEndpoint(auth, req, res)));
  router.post(`${oauth}/authorize`, form, pageHandler((req, res) => authorizeEndpoint(auth, req, res)));
  router.get(`${oauth}/interact`, pageHandler((req, res) => interactPage(auth, req, res)));
  router.post(`${oauth}/login`, form, pageHandler((req, res) => loginSubmit(auth, req, res)));
  router.post(`${oauth}/logout`, form, pageHandler((req, res) => logoutSubmit(auth, req, res)));
  router.post(`${oauth}/consent`, form, pageHandler((req, res) => consentSubmit(auth, req, res)));

  router.post(`${oauth}/token`, form, oauthHandler((req, res) => tokenEndpoint(auth, req, res)));
  router.post(`${oauth}/introspect`, form, oauthHandler((req, res) => introspectEndpoint(auth, req, res)));
  router.post(`${oauth}/revoke`, form, oauthHandler((req, res) => revokeEndpoint(auth, req, res)));
  router.get(`${oauth}/userinfo`, oauthHandler((req, res) => userinfoEndpoint(auth, req, res)));
  for (const path of ['token', 'introspect', 'revoke']) {
    router.all(`${oauth}/${path}`, oauthHandler(async (req) => {
      throw new OAuthError(405, 'invalid_request', `${req.method} is not allowed here; use POST`, { Allow: 'POST' });
    }));
  }
  router.use(adminRouter(auth, mountPath(config, ADMIN_PATH), oauth));
  return router;
}

export const authModule: ServerModule = {
  name: 'auth',
  install(services) {
    if (services.config.auth.disabled) {
      logger.warn(
        '!!! AUTH_DISABLED=true: NO AUTHENTICATION. Anyone who can reach this server may read and change every record. For local experiments only. !!!'
      );
      return;
    }
    const auth = createAuthServer(services);
    services.authenticator = smartAuthenticator(auth);
    services.capabilityContributors.push(securityContributor(auth.endpoints));
    return [() => oauthRouter(auth)];
  },
};
