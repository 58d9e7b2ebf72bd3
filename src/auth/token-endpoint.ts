/**
 * The token endpoint (authorization_code with PKCE S256, refresh_token with rotation,
 * client_credentials for SMART Backend Services), introspection (RFC 7662) and revocation
 * (RFC 7009). Every answer carries Cache-Control: no-store; errors are RFC 6749 JSON.
 */
import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { ADMIN_SCOPE, grantableScopes, splitScopes } from '../access/scopes';
import type { Principal } from '../fhir/context';
import type { Client } from './clients';
import type { AuthenticatedClient } from './client-auth';
import { auditSecurity, bearerClaims, bearerToken, type AuthServer } from './context';
import { formOf, noStore, OAuthError, oauthErrors, randomToken } from './oauth';
import type { AccessClaims, LaunchContext } from './tokens';
import type { User } from './users';

interface Issue {
  client: Client;
  /** The access token's scope. */
  scope: string;
  /** The grant's scope, for the refresh token (default: scope); it decides whether there is one. */
  refreshScope?: string;
  user?: User;
  context?: LaunchContext;
  /**
   * The grant's family: access tokens carry it (so revoking it revokes them), refresh tokens
   * continue it (rotation). Started here when absent and a refresh token is issued.
   */
  familyId?: string;
  sessionHash?: string;
  nonce?: string;
}

/** Whether a token response should include a refresh token. */
function wantsRefresh(scopes: string[]): boolean {
  return scopes.includes('offline_access') || scopes.includes('online_access');
}

async function issueTokens(auth: AuthServer, issue: Issue): Promise<Record<string, unknown>> {
  const { config } = auth.services;
  const scopes = splitScopes(issue.scope);
  const refreshScope = issue.refreshScope ?? issue.scope;
  const refresh = issue.user !== undefined && wantsRefresh(splitScopes(refreshScope));
  const familyId = issue.familyId ?? (refresh ? randomToken(16) : undefined);
  const context = issue.context ?? {};
  const access = await auth.tokens.issueAccessToken({
    clientId: issue.client.clientId,
    scope: issue.scope,
    subject: issue.user?.userId ?? issue.client.clientId,
    userId: issue.user?.userId,
    fhirUser: issue.user?.fhirUser,
    organization: issue.user?.organization ?? issue.client.organization,
    context,
    familyId,
    purposeOfUse: issue.client.purposeOfUse,
  });
  const body: Record<string, unknown> = {
    access_token: access.token,
    token_type: 'Bearer',
    expires_in: access.expiresIn,
    scope: issue.scope,
  };
  for (const key of ['patient', 'encounter', 'fhirContext', 'need_patient_banner', 'smart_style_url', 'intent', 'tenant'] as const) {
    if (context[key] !== undefined) body[key] = context[key];
  }
  if (refresh && familyId) {
    body.refresh_token = await auth.grants.issueRefresh({
      familyId,
      clientId: issue.client.clientId,
      userId: issue.user?.userId,
      sessionHash: issue.sessionHash,
      scope: refreshScope,
      context,
      expiresAt: Math.floor(Date.now() / 1000) + config.auth.refreshTokenLifetime,
    });
  }
  // OpenID Connect Core §3.1.3.3: a token response to an openid request carries an id_token
  // (sub at least); the user's FHIR resource and name only for fhirUser or profile (SMART).
  if (issue.user && scopes.includes('openid')) {
    const identity = scopes.includes('fhirUser') || scopes.includes('profile');
    body.id_token = await auth.tokens.issueIdToken({
      clientId: issue.client.clientId,
      userId: issue.user.userId,
      ...(identity && { fhirUser: issue.user.fhirUser, name: issue.user.displayName }),
      nonce: issue.nonce,
      // OpenID Connect Core §2 and §12.2: when the user logged in, the same in every id_token of
      // the login (refreshed, or from an authorization that reused the login session).
      authTime: issue.sessionHash ? await auth.users.sessionStartedAt(issue.sessionHash) : undefined,
    });
  }
  return body;
}

export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

/** Revokes a refresh family and every access token issued from it. */
async function revokeFamily(auth: AuthServer, familyId: string): Promise<void> {
  const expiresAt = await auth.grants.revokeFamily(familyId);
  // Access tokens of the family may outlive its refresh tokens by at most their own lifetime.
  await auth.tokens.revoke(familyId, Math.max(expiresAt, Math.floor(Date.now() / 1000)) + auth.services.config.auth.accessTokenLifetime);
}

async function authorizationCodeGrant(auth: AuthServer, form: Record<string, string>, caller: AuthenticatedClient): Promise<Issue> {
  for (const name of ['code', 'redirect_uri'] as const) {
    if (!form[name]) throw oauthErrors.invalidRequest(`${name} is required`);
  }
  const consumed = await auth.grants.consumeCode(form.code);
  if (!consumed) throw oauthErrors.invalidGrant('The authorization code is unknown or has expired');
  if ('replayed' in consumed) {
    if (consumed.familyId) await revokeFamily(auth, consumed.familyId);
    throw oauthErrors.invalidGrant('The authorization code was already used; the tokens issued for it are revoked');
  }
  const { grant } = consumed;
  if (grant.clientId !== caller.client.clientId) throw oauthErrors.invalidGrant('The authorization code was issued to another client');
  if (grant.redirectUri !== form.redirect_uri) throw oauthErrors.invalidGrant('redirect_uri differs from the authorization request');
  const verifier = form.code_verifier;
  if (!verifier) throw oauthErrors.invalidGrant('code_verifier is required (PKCE)');
  if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier) || pkceChallenge(verifier) !== grant.codeChallenge) {
    throw oauthErrors.invalidGrant('code_verifier does not match the code_challenge (S256)');
  }
  const user = await auth.users.get(grant.userId);
  if (!user) throw oauthErrors.invalidGrant('The user of this grant no longer exists');
  const issue: Issue = {
    client: caller.client,
    scope: grant.scope,
    user,
    context: grant.context,
    sessionHash: grant.sessionHash,
    nonce: grant.nonce,
  };
  // Every grant from a code gets a family, with or without a refresh token, so that a replay
  // of the code can revoke what was issued for it (RFC 6749 §4.1.2).
  issue.familyId = randomToken(16);
  await auth.grants.setCodeFamily(form.code, issue.familyId);
  return issue;
}

async function refreshTokenGrant(auth: AuthServer, form: Record<string, string>, caller: AuthenticatedClient): Promise<Issue> {
  if (!form.refresh_token) throw oauthErrors.invalidRequest('refresh_token is required');
  // The request is validated (client, scope, session, user) before the token is consumed: an
  // error response issues nothing, so the client keeps its refresh token (RFC 6749 §6), and
  // only a request that would rotate the token can trigger reuse detection (§10.4).
  const known = await auth.grants.lookupRefresh(form.refresh_token);
  if (!known) throw oauthErrors.invalidGrant('The refresh token is unknown, expired or revoked');
  const { grant } = known;
  if (grant.clientId !== caller.client.clientId) throw oauthErrors.invalidGrant('The refresh token was issued to another client');
  if (!known.usable) {
    await revokeFamily(auth, grant.familyId);
    throw oauthErrors.invalidGrant('The refresh token was already used: every token of this grant is now revoked');
  }
  const granted = splitScopes(grant.scope);
  let scope = grant.scope;
  if (form.scope) {
    const asked = splitScopes(form.scope);
    const extra = asked.filter((s) => !granted.includes(s));
    if (extra.length) throw oauthErrors.invalidScope(`Scopes beyond the original grant: ${extra.join(' ')}`);
    scope = asked.join(' ');
  }
  if (granted.includes('online_access') && !granted.includes('offline_access')) {
    if (!grant.sessionHash || !(await auth.users.sessionActive(grant.sessionHash))) {
      throw oauthErrors.invalidGrant('online_access: the user is no longer logged in');
    }
  }
  const user = grant.userId ? await auth.users.get(grant.userId) : undefined;
  if (grant.userId && !user) throw oauthErrors.invalidGrant('The user of this grant no longer exists');
  const used = await auth.grants.useRefresh(form.refresh_token);
  if (!used || 'reused' in used) {
    // Used (or revoked) by a concurrent request since the lookup: the same as a reuse.
    await revokeFamily(auth, grant.familyId);
    throw oauthErrors.invalidGrant('The refresh token was already used: every token of this grant is now revoked');
  }
  // A narrower scope applies to the access token only; the new refresh token keeps the
  // scope of the one presented (RFC 6749 §6), so a later refresh can ask for all of it again.
  return {
    client: caller.client, scope, refreshScope: grant.scope, user, context: grant.context, familyId: grant.familyId, sessionHash: grant.sessionHash,
  };
}

function clientCredentialsGrant(form: Record<string, string>, caller: AuthenticatedClient): Issue {
  if (caller.method === 'none') throw oauthErrors.unauthorizedClient('client_credentials needs a confidential client');
  const requested = splitScopes(form.scope);
  if (requested.length === 0) throw oauthErrors.invalidScope('scope is required (system/ scopes)');
  const scopes = grantableScopes(requested, caller.client.scopes, ['system']).filter(
    (s) => s.startsWith('system/') || (s === ADMIN_SCOPE && caller.client.isAdmin)
  );
  if (scopes.length === 0) {
    throw oauthErrors.invalidScope(`None of the requested scopes may be granted to this client (allowed: ${caller.client.scopes.join(' ')})`);
  }
  return { client: caller.client, scope: scopes.join(' ') };
}

function principalOf(issue: Issue): Principal {
  return {
    kind: issue.user ? 'user' : 'client',
    clientId: issue.client.clientId,
    userId: issue.user?.userId,
    fhirUser: issue.user?.fhirUser,
    organization: issue.user?.organization ?? issue.client.organization,
    scopes: splitScopes(issue.scope),
    patient: issue.context?.patient,
  };
}

export async function tokenEndpoint(auth: AuthServer, req: Request, res: Response): Promise<void> {
  const form = formOf(req);
  const grantType = form.grant_type;
  let principal: Principal = { kind: 'anonymous', scopes: [], clientId: form.client_id };
  try {
    if (!grantType) throw oauthErrors.invalidRequest('grant_type is required');
    if (!['authorization_code', 'refresh_token', 'client_credentials'].includes(grantType)) {
      throw oauthErrors.unsupportedGrantType(`grant_type ${grantType} is not supported`);
    }
    const caller = await auth.clientAuth.authenticate(req, form);
    if (!caller) throw oauthErrors.invalidClient('The client must identify itself (client_id) or authenticate');
    principal = { ...principal, kind: 'client', clientId: caller.client.clientId };
    let issue: Issue;
    if (grantType === 'authorization_code') {
      issue = await authorizationCodeGrant(auth, form, caller);
    } else if (grantType === 'refresh_token') {
      issue = await refreshTokenGrant(auth, form, caller);
    } else {
      issue = clientCredentialsGrant(form, caller);
    }
    const body = await issueTokens(auth, issue);
    await auditSecurity(auth, req, res, 'token', 200, `Access token issued (${grantType}): ${issue.scope}`, principalOf(issue));
    noStore(res);
    res.status(200).json(body);
  } catch (err) {
    if (err instanceof OAuthError) {
      await auditSecurity(auth, req, res, 'token', err.status, `Token refused (${grantType ?? 'no grant_type'}): ${err.error}: ${err.description}`, principal);
    }
    throw err;
  }
}

/**
 * Which tokens the caller may have described; refused (401) without valid credentials.
 * RFC 7662 §2.1 and §4 and SMART App Launch 2.x (Token Introspection) require authorization
 * for this endpoint, against token scanning and so as not to reveal one app's or user's tokens
 * to another. A confidential client (client secret or private_key_jwt) may introspect the
 * tokens issued to itself, an admin client any. A bearer token may belong to any app, public
 * and patient apps included, so it authorizes only with the admin scope (the privileged
 * grant of this server's resource-server and management callers), and then for any token.
 */
async function introspectionCaller(auth: AuthServer, req: Request, form: Record<string, string>): Promise<(clientId: string) => boolean> {
  if (bearerToken(req)) {
    const claims = await bearerClaims(auth, req);
    const privileged = splitScopes(claims.scope).includes(ADMIN_SCOPE);
    return () => privileged;
  }
  const caller = await auth.clientAuth.authenticate(req, form);
  if (!caller || caller.method === 'none') {
    throw oauthErrors.invalidClient('Introspection needs client authentication (a confidential client) or a bearer token with the admin scope');
  }
  return (clientId) => caller.client.isAdmin || clientId === caller.client.clientId;
}

export async function introspectEndpoint(auth: AuthServer, req: Request, res: Response): Promise<void> {
  const form = formOf(req);
  const mayIntrospect = await introspectionCaller(auth, req, form);
  if (!form.token) throw oauthErrors.invalidRequest('token is required');
  noStore(res);
  // token_type_hint is only a hint: every token type is searched whatever it says (RFC 7662
  // §2.1). The two kinds cannot be confused: access tokens are JWTs, refresh tokens random strings.
  // A token the caller may not see is answered like an unknown one, revealing nothing (RFC 7662 §4).
  try {
    const claims = await auth.tokens.verify(form.token);
    if (!mayIntrospect(claims.client_id)) {
      res.json({ active: false });
      return;
    }
    res.json({
      active: true,
      scope: claims.scope,
      client_id: claims.client_id,
      sub: claims.sub,
      exp: claims.exp,
      iat: claims.iat,
      iss: claims.iss,
      aud: claims.aud,
      jti: claims.jti,
      token_type: 'Bearer',
      ...(claims.patient && { patient: claims.patient }),
      ...(claims.encounter && { encounter: claims.encounter }),
      ...(claims.fhirUser && { fhirUser: `${auth.services.config.baseUrl}/${claims.fhirUser}` }),
    });
    return;
  } catch {
    // not a valid access token: perhaps a refresh token
  }
  const refresh = await auth.grants.peekRefresh(form.token);
  if (refresh && mayIntrospect(refresh.clientId)) {
    // No token_type: RFC 7662 §2.2 means an access token type (RFC 6749 §7.1), which a
    // refresh token has not. The grant's launch context is included as SMART's introspection
    // response does for access tokens.
    res.json({
      active: true,
      scope: refresh.scope,
      client_id: refresh.clientId,
      sub: refresh.userId ?? refresh.clientId,
      exp: refresh.expiresAt,
      iss: auth.services.config.baseUrl,
      ...(refresh.context.patient && { patient: refresh.context.patient }),
      ...(refresh.context.encounter && { encounter: refresh.context.encounter }),
    });
    return;
  }
  res.json({ active: false });
}

export async function revokeEndpoint(auth: AuthServer, req: Request, res: Response): Promise<void> {
  const form = formOf(req);
  const caller = await auth.clientAuth.authenticate(req, form);
  if (!caller) throw oauthErrors.invalidClient('The client must identify itself (client_id) or authenticate');
  if (!form.token) throw oauthErrors.invalidRequest('token is required');
  // RFC 7009 §2.1: the server verifies that the token was issued to the client asking; if
  // not, "the request is refused and the client is informed of the error". An admin client
  // may revoke any token.
  const assertMayRevoke = (clientId: string) => {
    if (clientId !== caller.client.clientId && !caller.client.isAdmin) {
      throw oauthErrors.unauthorizedClient('The token was issued to another client');
    }
  };
  // token_type_hint is only a hint: both token types are searched whatever it says (RFC 7009 §2.1).
  let claims: AccessClaims | undefined;
  try {
    claims = await auth.tokens.verifySignature(form.token);
  } catch {
    // not an access token of ours
  }
  if (claims) {
    assertMayRevoke(claims.client_id);
    await auth.tokens.revoke(claims.jti, claims.exp);
  } else {
    const refresh = await auth.grants.findRefresh(form.token);
    if (refresh) {
      assertMayRevoke(refresh.clientId);
      await revokeFamily(auth, refresh.familyId);
    }
  }
  // RFC 7009: unknown and already invalid tokens are answered the same way.
  noStore(res);
  res.status(200).end();
}
