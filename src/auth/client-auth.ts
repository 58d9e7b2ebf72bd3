/**
 * Client authentication at the token, introspection and revocation endpoints:
 * client_secret_basic, client_secret_post, and private_key_jwt (SMART Backend Services:
 * RS384 or ES384 assertions, keys registered as a JWKS value or fetched and cached from a
 * JWKS URL, `aud` the token URL, `exp` at most five minutes ahead, each `jti` accepted once).
 * Public clients only name themselves (client_id) and prove nothing here; PKCE does that.
 */
import type { Request } from 'express';
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Database } from '../store/database';
import { sql } from '../store/sql';
import type { Client, ClientStore } from './clients';
import { oauthErrors } from './oauth';

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export type AuthMethod = 'none' | 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';
const MAX_ASSERTION_LIFETIME = 300;
/** How long keys fetched from a client's JWKS URL are trusted before fetching again. */
const JWKS_CACHE_MS = 5 * 60_000;

export interface AuthenticatedClient {
  client: Client;
  method: AuthMethod;
}

export class ClientAuthenticator {
  private readonly remoteSets = new Map<string, JWTVerifyGetKey>();

  constructor(
    private readonly clients: ClientStore,
    private readonly db: Database,
    private readonly tokenUrl: string
  ) {}

  /**
   * The calling client, authenticated by whichever method it used; undefined when it named
   * itself in no way. A confidential client that does not authenticate is refused.
   */
  async authenticate(req: Request, form: Record<string, string>): Promise<AuthenticatedClient | undefined> {
    const authorization = req.headers.authorization;
    const basic = Boolean(authorization && /^basic /i.test(authorization));
    const assertion = form.client_assertion_type !== undefined || form.client_assertion !== undefined;
    const posted = form.client_secret !== undefined;
    // "The client MUST NOT use more than one authentication method in each request" (RFC 6749
    // §2.3); such a request is invalid_request (§5.2), rather than one method silently winning.
    if ([basic, assertion, posted].filter(Boolean).length > 1) {
      throw oauthErrors.invalidRequest('More than one client authentication method (use exactly one of Basic, client_secret, client_assertion)');
    }
    if (authorization && basic) {
      const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw oauthErrors.invalidClient('Malformed Basic credentials', true);
      const id = safeDecode(decoded.slice(0, colon));
      const secret = safeDecode(decoded.slice(colon + 1));
      if (form.client_id !== undefined && form.client_id !== id) throw oauthErrors.invalidRequest('client_id differs from the Basic credentials');
      const client = await this.clients.verifySecret(id, secret);
      if (!client) throw oauthErrors.invalidClient('Unknown client or wrong client secret', true);
      return { client, method: 'client_secret_basic' };
    }
    if (assertion) {
      if (form.client_assertion_type !== JWT_BEARER || !form.client_assertion) {
        throw oauthErrors.invalidClient(`client_assertion_type must be ${JWT_BEARER}, with a client_assertion`);
      }
      return { client: await this.verifyAssertion(form.client_assertion, form.client_id), method: 'private_key_jwt' };
    }
    if (posted) {
      const client = form.client_id ? await this.clients.verifySecret(form.client_id, form.client_secret) : undefined;
      if (!client) throw oauthErrors.invalidClient('Unknown client or wrong client secret');
      return { client, method: 'client_secret_post' };
    }
    if (form.client_id) {
      const client = await this.clients.get(form.client_id);
      if (!client) throw oauthErrors.invalidClient(`Unknown client "${form.client_id}"`);
      if (client.type !== 'public') throw oauthErrors.invalidClient('This client is confidential: it must authenticate');
      return { client, method: 'none' };
    }
    return undefined;
  }

  private async verifyAssertion(assertion: string, claimedId: string | undefined): Promise<Client> {
    let clientId: string | undefined;
    // SMART Backend Services, authentication JWT header: kid is required (the key pair used).
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(assertion).kid;
    } catch {
      // not a JWT: refused just below
    }
    try {
      const payload = decodeJwt(assertion);
      clientId = payload.iss;
      if (!clientId || payload.sub !== clientId) throw new Error();
    } catch {
      throw oauthErrors.invalidClient('The client assertion is not a JWT with iss = sub = client_id');
    }
    if (!kid) throw oauthErrors.invalidClient('The client assertion header has no kid (required by SMART Backend Services)');
    if (claimedId && claimedId !== clientId) throw oauthErrors.invalidClient('client_id does not match the assertion');
    const client = await this.clients.get(clientId);
    if (!client || client.type !== 'confidential-asymmetric') {
      throw oauthErrors.invalidClient(`Unknown client "${clientId}", or it has no registered keys`);
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, this.keySet(client), {
        algorithms: ['RS384', 'ES384'],
        issuer: clientId,
        subject: clientId,
        audience: this.tokenUrl,
        requiredClaims: ['exp', 'jti'],
        clockTolerance: 5,
      }));
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'invalid';
      throw oauthErrors.invalidClient(`The client assertion was refused (${code}: ${(err as Error).message})`);
    }
    const now = Math.floor(Date.now() / 1000);
    if ((payload.exp as number) > now + MAX_ASSERTION_LIFETIME) {
      throw oauthErrors.invalidClient('The client assertion expires more than five minutes from now');
    }
    const inserted = await this.db.query(
      sql`INSERT INTO auth_jti (client_id, jti, expires_at) VALUES (${clientId}, ${payload.jti}, to_timestamp(${payload.exp}))
          ON CONFLICT DO NOTHING`
    );
    if (inserted.rowCount === 0) throw oauthErrors.invalidClient('The client assertion was already used (jti replay)');
    // Ids of expired assertions can go: an expired assertion is refused anyway.
    await this.db.query(sql`DELETE FROM auth_jti WHERE expires_at < now() - interval '1 minute'`);
    return client;
  }

  private keySet(client: Client): JWTVerifyGetKey {
    if (client.jwks) return createLocalJWKSet(client.jwks);
    const url = client.jwksUri as string;
    let set = this.remoteSets.get(url);
    if (!set) {
      // An unknown kid triggers a new fetch (at most every 10 s), so a client can rotate its keys.
      set = createRemoteJWKSet(new URL(url), { cacheMaxAge: JWKS_CACHE_MS, cooldownDuration: 10_000, timeoutDuration: 5000 });
      this.remoteSets.set(url, set);
    }
    return set;
  }
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return value;
  }
}
