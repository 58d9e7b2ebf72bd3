/**
 * OpenID Connect userinfo: who the holder of a user access token is (sub, fhirUser, name).
 */
import type { Request, Response } from 'express';
import { bearerClaims, insufficientScope, type AuthServer } from './context';
import { noStore } from './oauth';

export async function userinfoEndpoint(auth: AuthServer, req: Request, res: Response): Promise<void> {
  const claims = await bearerClaims(auth, req);
  const scopes = claims.scope.split(' ');
  const user = claims.uid ? await auth.users.get(claims.uid) : undefined;
  if (!user || !scopes.includes('openid')) {
    throw insufficientScope(auth, 'userinfo needs a user token with the openid scope');
  }
  noStore(res);
  res.json({
    sub: user.userId,
    fhirUser: `${auth.services.config.baseUrl}/${user.fhirUser}`,
    ...(scopes.includes('profile') && { name: user.displayName ?? user.username, preferred_username: user.username }),
  });
}
