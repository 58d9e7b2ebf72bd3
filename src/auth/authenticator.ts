/**
 * The bearer-token authenticator of the FHIR endpoint: a valid access token of this server
 * becomes a Principal and its SMART access policy; anything else is a 401 with
 * WWW-Authenticate (RFC 6750). The caller may state its purpose of use in X-Purpose-Of-Use
 * (comma-separated v3 ActReason codes), but only purposes registered for its client; without
 * the header the client's first registered purpose applies.
 */
import type { Request } from 'express';
import { SmartAccessPolicy } from '../access/smart-policy';
import type { AccessPolicy, Principal } from '../fhir/context';
import { errors } from '../fhir/outcome';
import type { Authenticator } from '../services';
import type { AuthServer } from './context';
import { splitScopes } from '../access/scopes';
import type { AccessClaims } from './tokens';

const MAX_CACHED = 10_000;

function purposeOfUse(req: Request, claims: AccessClaims): string[] | undefined {
  const header = req.headers['x-purpose-of-use'];
  const allowed = claims.pou ?? [];
  if (header === undefined) return allowed.length ? [allowed[0]] : undefined;
  const codes = (Array.isArray(header) ? header.join(',') : header).split(',').map((c) => c.trim()).filter(Boolean);
  const refused = codes.filter((c) => !allowed.includes(c));
  if (refused.length) {
    throw errors.forbidden(`Purpose of use ${refused.join(', ')} is not registered for this client (allowed: ${allowed.join(', ') || 'none'})`);
  }
  return codes.length ? codes : undefined;
}

export function principalOf(claims: AccessClaims, purposes: string[] | undefined): Principal {
  return {
    kind: claims.uid ? 'user' : 'client',
    clientId: claims.client_id,
    userId: claims.uid,
    fhirUser: claims.fhirUser,
    organization: claims.org,
    scopes: splitScopes(claims.scope),
    patient: claims.patient,
    encounter: claims.encounter,
    purposeOfUse: purposes,
    tokenId: claims.jti,
  };
}

export function smartAuthenticator(auth: AuthServer): Authenticator {
  const { services } = auth;
  const realm = `Bearer realm="${services.config.baseUrl}"`;
  // The policy of a token (and stated purpose) is built once: it caches its SQL filters.
  const policies = new Map<string, { principal: Principal; access: AccessPolicy }>();
  return {
    async authenticate(req: Request) {
      const header = req.headers.authorization;
      if (!header) {
        throw errors.unauthorized(`An access token is required (Authorization: Bearer); see ${auth.endpoints.smartConfiguration}`, realm);
      }
      // Another scheme (Basic, ...) is no authentication information for this resource server:
      // RFC 6750 §3.1 says the challenge SHOULD then carry no error code. A malformed Bearer
      // credential is an invalid token.
      if (!/^Bearer\s/i.test(header.trim())) {
        throw errors.unauthorized('The Authorization header must be "Bearer <access token>"', realm);
      }
      const match = /^Bearer\s+([A-Za-z0-9\-._~+/]+=*)$/i.exec(header.trim());
      if (!match) {
        throw errors.unauthorized('The bearer token is malformed', `${realm}, error="invalid_token", error_description="The bearer token is malformed"`);
      }
      let claims: AccessClaims;
      try {
        claims = await auth.tokens.verify(match[1]);
      } catch (err) {
        const message = (err as Error).message;
        throw errors.unauthorized(message, `${realm}, error="invalid_token", error_description="${message.replace(/"/g, "'")}"`);
      }
      const purposes = purposeOfUse(req, claims);
      const key = `${match[1]} ${purposes?.join(',') ?? ''}`;
      let entry = policies.get(key);
      if (!entry) {
        const principal = principalOf(claims, purposes);
        entry = { principal, access: new SmartAccessPolicy(principal, services) };
        if (policies.size >= MAX_CACHED) policies.clear();
        policies.set(key, entry);
      }
      return entry;
    },
  };
}
