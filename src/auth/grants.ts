/**
 * Authorization codes, refresh-token families, EHR launch contexts and pending authorization
 * requests, all in PostgreSQL so that any server process can continue a flow another began.
 *
 * Codes are single-use (an atomic UPDATE marks them used) and short-lived; a replayed code
 * revokes what its first exchange issued. Refresh tokens rotate on every use; presenting a
 * rotated one again revokes its whole family (and the access tokens issued from it).
 */
import type { Database } from '../store/database';
import { sql } from '../store/sql';
import { randomToken, tokenHash } from './oauth';
import type { LaunchContext } from './tokens';

export interface CodeGrant {
  clientId: string;
  userId: string;
  sessionHash?: string;
  redirectUri: string;
  scope: string;
  codeChallenge: string;
  nonce?: string;
  context: LaunchContext;
}

export interface RefreshGrant {
  familyId: string;
  clientId: string;
  userId?: string;
  sessionHash?: string;
  scope: string;
  context: LaunchContext;
  expiresAt: number;
}

export interface AuthorizationRequest {
  response_type: string;
  client_id: string;
  redirect_uri: string;
  scope: string;
  state?: string;
  aud: string;
  code_challenge: string;
  code_challenge_method: string;
  launch?: string;
  nonce?: string;
  /** The scopes that may be granted (requested and allowed for the client). */
  grantable: string[];
  /** Context from an EHR launch. */
  context?: LaunchContext;
}

const REQUEST_LIFETIME = 30 * 60;

export class GrantStore {
  constructor(private readonly db: Database) {}

  async saveRequest(request: AuthorizationRequest): Promise<string> {
    const id = randomToken(18);
    await this.db.query(
      sql`INSERT INTO auth_request (request_id, client_id, params, expires_at)
          VALUES (${id}, ${request.client_id}, ${request}, now() + ${REQUEST_LIFETIME} * interval '1 second')`
    );
    await this.db.query(sql`DELETE FROM auth_request WHERE expires_at < now()`);
    return id;
  }

  async request(id: string | undefined): Promise<AuthorizationRequest | undefined> {
    if (!id) return undefined;
    const result = await this.db.query<{ params: AuthorizationRequest }>(
      sql`SELECT params FROM auth_request WHERE request_id = ${id} AND expires_at > now()`
    );
    return result.rows[0]?.params;
  }

  async deleteRequest(id: string): Promise<void> {
    await this.db.query(sql`DELETE FROM auth_request WHERE request_id = ${id}`);
  }

  async createCode(grant: CodeGrant, lifetimeSeconds: number): Promise<string> {
    const code = randomToken();
    await this.db.query(
      sql`INSERT INTO auth_code (code_hash, client_id, user_id, session_hash, redirect_uri, scope, code_challenge, nonce, context, expires_at)
          VALUES (${tokenHash(code)}, ${grant.clientId}, ${grant.userId}, ${grant.sessionHash ?? null}, ${grant.redirectUri},
                  ${grant.scope}, ${grant.codeChallenge}, ${grant.nonce ?? null}, ${grant.context},
                  now() + ${lifetimeSeconds} * interval '1 second')`
    );
    // Used and expired codes are kept a day, so that a late replay is still recognised as one.
    await this.db.query(sql`DELETE FROM auth_code WHERE expires_at < now() - interval '1 day'`);
    return code;
  }

  /**
   * Marks the code used and returns its grant; `replayed` when it had been used before (its
   * family id, if any, is returned so the caller can revoke it), undefined when unknown or expired.
   */
  async consumeCode(code: string): Promise<{ grant: CodeGrant } | { replayed: true; familyId?: string } | undefined> {
    const hash = tokenHash(code);
    const used = await this.db.query<{
      client_id: string; user_id: string; session_hash: string | null; redirect_uri: string; scope: string;
      code_challenge: string; nonce: string | null; context: LaunchContext;
    }>(
      sql`UPDATE auth_code SET used_at = now() WHERE code_hash = ${hash} AND used_at IS NULL AND expires_at > now()
          RETURNING client_id, user_id, session_hash, redirect_uri, scope, code_challenge, nonce, context`
    );
    const row = used.rows[0];
    if (row) {
      return {
        grant: {
          clientId: row.client_id,
          userId: row.user_id,
          sessionHash: row.session_hash ?? undefined,
          redirectUri: row.redirect_uri,
          scope: row.scope,
          codeChallenge: row.code_challenge,
          nonce: row.nonce ?? undefined,
          context: row.context,
        },
      };
    }
    const earlier = await this.db.query<{ family_id: string | null }>(
      sql`SELECT family_id FROM auth_code WHERE code_hash = ${hash} AND used_at IS NOT NULL`
    );
    return earlier.rows[0] ? { replayed: true, familyId: earlier.rows[0].family_id ?? undefined } : undefined;
  }

  async setCodeFamily(code: string, familyId: string): Promise<void> {
    await this.db.query(sql`UPDATE auth_code SET family_id = ${familyId} WHERE code_hash = ${tokenHash(code)}`);
  }

  /** A new refresh token of the family. */
  async issueRefresh(grant: RefreshGrant): Promise<string> {
    const token = randomToken();
    await this.db.query(
      sql`INSERT INTO auth_refresh (token_hash, family_id, client_id, user_id, session_hash, scope, context, expires_at)
          VALUES (${tokenHash(token)}, ${grant.familyId}, ${grant.clientId}, ${grant.userId ?? null}, ${grant.sessionHash ?? null},
                  ${grant.scope}, ${grant.context}, to_timestamp(${grant.expiresAt}))`
    );
    await this.db.query(sql`DELETE FROM auth_refresh WHERE expires_at < now() - interval '1 day'`);
    return token;
  }

  /**
   * The grant behind a known, unexpired refresh token, and whether it may still be used (not
   * rotated, not revoked), without changing it: the token endpoint validates the request
   * against it before it consumes the token (RFC 6749 §6).
   */
  async lookupRefresh(token: string): Promise<{ grant: RefreshGrant; usable: boolean } | undefined> {
    const result = await this.db.query<RefreshRow & { usable: boolean }>(
      sql`SELECT ${REFRESH_COLUMNS}, (used_at IS NULL AND revoked_at IS NULL) AS usable FROM auth_refresh
          WHERE token_hash = ${tokenHash(token)} AND expires_at > now()`
    );
    const row = result.rows[0];
    return row ? { grant: toRefreshGrant(row), usable: row.usable } : undefined;
  }

  /**
   * Consumes a refresh token for rotation. `reused` means it had already been rotated (or
   * its family revoked): the caller must revoke the family.
   */
  async useRefresh(token: string): Promise<{ grant: RefreshGrant } | { reused: true; familyId: string; expiresAt: number } | undefined> {
    const hash = tokenHash(token);
    const used = await this.db.query<RefreshRow>(
      sql`UPDATE auth_refresh SET used_at = now()
          WHERE token_hash = ${hash} AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
          RETURNING ${REFRESH_COLUMNS}`
    );
    if (used.rows[0]) return { grant: toRefreshGrant(used.rows[0]) };
    const known = await this.db.query<RefreshRow>(
      sql`SELECT ${REFRESH_COLUMNS} FROM auth_refresh WHERE token_hash = ${hash} AND expires_at > now()`
    );
    const row = known.rows[0];
    return row ? { reused: true, familyId: row.family_id, expiresAt: Number(row.exp) } : undefined;
  }

  /** The grant behind a refresh token that is still usable (for introspection). */
  async peekRefresh(token: string): Promise<RefreshGrant | undefined> {
    const result = await this.db.query<RefreshRow>(
      sql`SELECT ${REFRESH_COLUMNS} FROM auth_refresh
          WHERE token_hash = ${tokenHash(token)} AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()`
    );
    return result.rows[0] ? toRefreshGrant(result.rows[0]) : undefined;
  }

  /** The family and client of a known refresh token, whatever its state (for revocation). */
  async findRefresh(token: string): Promise<{ familyId: string; clientId: string } | undefined> {
    const result = await this.db.query<RefreshRow>(
      sql`SELECT ${REFRESH_COLUMNS} FROM auth_refresh WHERE token_hash = ${tokenHash(token)}`
    );
    const row = result.rows[0];
    return row ? { familyId: row.family_id, clientId: row.client_id } : undefined;
  }

  /** Revokes every refresh token of the family; returns the latest expiry among them (seconds). */
  async revokeFamily(familyId: string): Promise<number> {
    const result = await this.db.query<{ exp: number | null }>(
      sql`WITH revoked AS (UPDATE auth_refresh SET revoked_at = coalesce(revoked_at, now())
                           WHERE family_id = ${familyId} RETURNING expires_at)
          SELECT extract(epoch FROM max(expires_at))::bigint AS exp FROM revoked`
    );
    return Number(result.rows[0]?.exp ?? Math.floor(Date.now() / 1000));
  }

  async createLaunch(context: LaunchContext, clientId: string | undefined, lifetimeSeconds: number): Promise<string> {
    const id = randomToken(18);
    await this.db.query(
      sql`INSERT INTO auth_launch (launch_id, client_id, context, expires_at)
          VALUES (${id}, ${clientId ?? null}, ${context}, now() + ${lifetimeSeconds} * interval '1 second')`
    );
    await this.db.query(sql`DELETE FROM auth_launch WHERE expires_at < now() - interval '1 day'`);
    return id;
  }

  async launch(id: string): Promise<{ clientId?: string; context: LaunchContext } | undefined> {
    const result = await this.db.query<{ client_id: string | null; context: LaunchContext }>(
      sql`SELECT client_id, context FROM auth_launch WHERE launch_id = ${id} AND expires_at > now()`
    );
    const row = result.rows[0];
    return row ? { clientId: row.client_id ?? undefined, context: row.context } : undefined;
  }
}

interface RefreshRow {
  family_id: string;
  client_id: string;
  user_id: string | null;
  session_hash: string | null;
  scope: string;
  context: LaunchContext;
  exp: number;
}

const REFRESH_COLUMNS = sql.raw(
  'family_id, client_id, user_id, session_hash, scope, context, extract(epoch FROM expires_at)::bigint AS exp'
);

function toRefreshGrant(row: RefreshRow): RefreshGrant {
  return {
    familyId: row.family_id,
    clientId: row.client_id,
    userId: row.user_id ?? undefined,
    sessionHash: row.session_hash ?? undefined,
    scope: row.scope,
    context: row.context,
    expiresAt: Number(row.exp),
  };
}
