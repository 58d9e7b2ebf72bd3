/**
 * Access tokens and id tokens: JWTs signed RS256 with the server's active key (services.keys),
 * verified against whichever published key signed them, so a key rotation invalidates nothing.
 *
 * Verification on every FHIR request is cheap: the signature check uses a cached public key,
 * and the answer for a token (including "not revoked") is cached per process for
 * REVOCATION_CACHE_SECONDS; after that one indexed lookup in auth_revocation checks the
 * token's jti and refresh family again. A revocation through this process clears its cache
 * at once; other processes see it within that interval.
 */
import { decodeProtectedHeader, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { Config } from '../config';
import type { KeyStore } from '../keys/keystore';
import type { Database } from '../store/database';
import { sql } from '../store/sql';
import { randomToken } from './oauth';

/** The launch context a token carries (SMART token response parameters). */
export interface LaunchContext {
  patient?: string;
  encounter?: string;
  fhirContext?: { reference?: string; role?: string; type?: string; identifier?: unknown; canonical?: string }[];
  need_patient_banner?: boolean;
  smart_style_url?: string;
  intent?: string;
  tenant?: string;
}

export interface AccessClaims extends JWTPayload {
  client_id: string;
  scope: string;
  jti: string;
  exp: number;
  patient?: string;
  encounter?: string;
  fhirUser?: string;
  /** Organization id of the user or client (custodian of what they write). */
  org?: string;
  /** Refresh-token family, so that revoking the family revokes its access tokens too. */
  fam?: string;
  /** Purposes of use the client may state; the first is the default. */
  pou?: string[];
  /** The user id, for user tokens. */
  uid?: string;
}

export interface IssueInput {
  clientId: string;
  scope: string;
  subject: string;
  userId?: string;
  fhirUser?: string;
  organization?: string;
  context?: LaunchContext;
  familyId?: string;
  purposeOfUse?: string[];
}

interface Cached {
  claims: AccessClaims;
  checkedAt: number;
}

const MAX_CACHED = 10_000;

export class TokenService {
  private readonly cache = new Map<string, Cached>();

  constructor(
    private readonly config: Config,
    private readonly keys: KeyStore,
    private readonly db: Database
  ) {}

  async issueAccessToken(input: IssueInput): Promise<{ token: string; claims: AccessClaims; expiresIn: number }> {
    const key = await this.keys.signingKey('RS256');
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = this.config.auth.accessTokenLifetime;
    const claims: AccessClaims = {
      client_id: input.clientId,
      scope: input.scope,
      jti: randomToken(16),
      exp: now + expiresIn,
      ...(input.userId && { uid: input.userId }),
      ...(input.fhirUser && { fhirUser: input.fhirUser }),
      ...(input.organization && { org: input.organization }),
      ...(input.context?.patient && { patient: input.context.patient }),
      ...(input.context?.encounter && { encounter: input.context.encounter }),
      ...(input.familyId && { fam: input.familyId }),
      ...(input.purposeOfUse?.length && { pou: input.purposeOfUse }),
    };
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'at+jwt' })
      .setIssuer(this.config.baseUrl)
      .setAudience(this.config.baseUrl)
      .setSubject(input.subject)
      .setIssuedAt(now)
      .sign(key.privateKey);
    return { token, claims: { ...claims, iss: this.config.baseUrl, aud: this.config.baseUrl, sub: input.subject, iat: now }, expiresIn };
  }

  /** An OpenID Connect id token for the client; fhirUser, when given, as an absolute URL. */
  async issueIdToken(input: { clientId: string; userId: string; fhirUser?: string; name?: string; nonce?: string; authTime?: number }): Promise<string> {
    const key = await this.keys.signingKey('RS256');
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      ...(input.fhirUser && { fhirUser: `${this.config.baseUrl}/${input.fhirUser}` }),
      ...(input.name && { name: input.name }),
      ...(input.nonce && { nonce: input.nonce }),
      auth_time: input.authTime ?? now,
    })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
      .setIssuer(this.config.baseUrl)
      .setAudience(input.clientId)
      .setSubject(input.userId)
      .setIssuedAt(now)
      .setExpirationTime(now + this.config.auth.accessTokenLifetime)
      .sign(key.privateKey);
  }

  /** The claims of a valid, unrevoked access token; throws an Error whose message says why not. */
  async verify(token: string): Promise<AccessClaims> {
    const cached = this.cache.get(token);
    const now = Date.now();
    if (cached && now - cached.checkedAt < this.config.auth.revocationCacheSeconds * 1000) {
      if (cached.claims.exp * 1000 <= now) throw new Error('The access token has expired');
      return cached.claims;
    }
    const claims = await this.verifySignature(token);
    if (await this.isRevoked([claims.jti, claims.fam])) {
      this.cache.delete(token);
      throw new Error('The access token has been revoked');
    }
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(token, { claims, checkedAt: now });
    return claims;
  }

  /** Signature, issuer, audience and expiry, without the revocation check. */
  async verifySignature(token: string): Promise<AccessClaims> {
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      throw new Error('The access token is not a JWT');
    }
    const key = kid ? await this.keys.verificationKey(kid) : undefined;
    if (!key) throw new Error('The access token was not signed by a key of this server');
    try {
      const { payload } = await jwtVerify(token, key.key, {
        algorithms: ['RS256'],
        issuer: this.config.baseUrl,
        audience: this.config.baseUrl,
        typ: 'at+jwt',
        requiredClaims: ['exp', 'jti', 'client_id', 'scope'],
      });
      return payload as AccessClaims;
    } catch (err) {
      const code = (err as { code?: string }).code;
      throw new Error(code === 'ERR_JWT_EXPIRED' ? 'The access token has expired' : `The access token is not valid (${code ?? 'invalid'})`);
    }
  }

  async isRevoked(ids: (string | undefined)[]): Promise<boolean> {
    const present = ids.filter((id): id is string => Boolean(id));
    if (present.length === 0) return false;
    const result = await this.db.query(sql`SELECT 1 FROM auth_revocation WHERE id = ANY(${present}::text[]) LIMIT 1`);
    return (result.rowCount ?? 0) > 0;
  }

  /** Records a revocation (a token's jti or a refresh family) until `expiresAt` (seconds). */
  async revoke(id: string, expiresAt: number): Promise<void> {
    await this.db.query(
      sql`INSERT INTO auth_revocation (id, expires_at) VALUES (${id}, to_timestamp(${expiresAt}))
          ON CONFLICT (id) DO NOTHING`
    );
    // Expired revocations are of no use any more: the tokens they name are rejected anyway.
    await this.db.query(sql`DELETE FROM auth_revocation WHERE expires_at < now() - interval '1 hour'`);
    this.cache.clear();
  }
}
