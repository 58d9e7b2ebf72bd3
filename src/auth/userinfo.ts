/**
 * OpenID Connect userinfo: who the holder of a user access token is (sub, fhirUser, name).
 */
import type { Request, Response } from 'express';
import type { AuthServer } from './context';
import { noStore, OAuthError } from './oauth';

export async function userinfoEndpoint(auth: AuthServer, req: Request, res: Response): Promise<void> {
  const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  const realm = `Bearer realm="${auth.services.config.baseUrl}"`;
  if (!match) throw new OAuthError(401, 'invalid_token', 'An access token is required', { 'WWW-Authenticate': realm });
  let claims;
  try {
    claims = await auth.tokens.verify(match[1]);
  } catch (err) {
    throw new OAuthError(401, 'invalid_token', (err as Error).message, { 'WWW-Authenticate': `${realm}, error="invalid_token"` });
  }
  const scopes = claims.scope.split(' ');
  const user = claims.uid ? await auth.users.get(claims.uid) : undefined;
  if (!user || !scopes.includes('openid')) {
    throw new OAuthError(403, 'insufficient_scope', 'userinfo needs a user token with the openid scope');
  }
  noStore(res);
  res.json({
    sub: user.userId,
    fhirUser: `${auth.services.config.baseUrl}/${user.fhirUser}`,
    ...(scopes.includes('profile') && { name: user.displayName ?? user.username, preferred_username: user.username }),
  });
}
