/**
 * Registered OAuth clients: public apps (PKCE only), confidential symmetric clients (a
 * secret, stored hashed) and confidential asymmetric clients (private_key_jwt with keys
 * registered as a JWKS value or URL). Used by the admin API, the CLI and the endpoints.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { JWK } from 'jose';
import type { Database } from '../store/database';
import { sql } from '../store/sql';
import { parseResourceScope, LAUNCH_SCOPES, ADMIN_SCOPE } from '../access/scopes';
import { randomToken, tokenHash } from './oauth';

export const CLIENT_TYPES = ['public', 'confidential-symmetric', 'confidential-asymmetric'] as const;
export type ClientType = (typeof CLIENT_TYPES)[number];

export interface Client {
  clientId: string;
  name: string;
  type: ClientType;
  redirectUris: string[];
  scopes: string[];
  jwks?: { keys: JWK[] };
  jwksUri?: string;
  organization?: string;
  purposeOfUse: string[];
  isAdmin: boolean;
  active: boolean;
}

export interface NewClient {
  clientId?: string;
  name: string;
  type: ClientType;
  redirectUris?: string[];
  scopes?: string[];
  jwks?: { keys: JWK[] };
  jwksUri?: string;
  organization?: string;
  purposeOfUse?: string[];
  isAdmin?: boolean;
}

interface ClientRow {
  client_id: string;
  name: string;
  client_type: ClientType;
  secret_hash: string | null;
  redirect_uris: string[];
  scopes: string[];
  jwks: { keys: JWK[] } | null;
  jwks_uri: string | null;
  organization: string | null;
  purpose_of_use: string[];
  is_admin: boolean;
  active: boolean;
}

function toClient(row: ClientRow): Client {
  return {
    clientId: row.client_id,
    name: row.name,
    type: row.client_type,
    redirectUris: row.redirect_uris,
    scopes: row.scopes,
    ...(row.jwks && { jwks: row.jwks }),
    ...(row.jwks_uri && { jwksUri: row.jwks_uri }),
    ...(row.organization && { organization: row.organization }),
    purposeOfUse: row.purpose_of_use,
    isAdmin: row.is_admin,
    active: row.active,
  };
}

/** Why a registration is invalid, or undefined. */
export function clientProblem(input: NewClient): string | undefined {
  if (!input || typeof input.name !== 'string' || !input.name.trim()) return 'name is required';
  if (!CLIENT_TYPES.includes(input.type)) return `type must be one of ${CLIENT_TYPES.join(', ')}`;
  if (input.clientId !== undefined && !/^[A-Za-z0-9._~-]{1,64}$/.test(input.clientId)) return 'clientId: 1-64 URL-safe characters';
  for (const uri of input.redirectUris ?? []) {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      return `redirect URI "${uri}" is not an absolute URL`;
    }
    if (url.hash) return `redirect URI "${uri}" must not have a fragment`;
  }
  for (const scope of input.scopes ?? []) {
    if (!parseResourceScope(scope) && !LAUNCH_SCOPES.includes(scope) && scope !== ADMIN_SCOPE) return `unknown scope "${scope}"`;
    if (scope === ADMIN_SCOPE && !input.isAdmin) return 'the admin scope needs an admin client';
  }
  if (input.type === 'confidential-asymmetric') {
    if (!input.jwks === !input.jwksUri) return 'an asymmetric client needs exactly one of jwks and jwksUri';
    if (input.jwks && !Array.isArray(input.jwks.keys)) return 'jwks must be a JSON Web Key Set ({"keys": [...]})';
    if (input.jwks?.keys.some((k) => 'd' in k)) return 'jwks must hold public keys only';
    if (input.jwksUri && !/^https?:\/\//.test(input.jwksUri)) return 'jwksUri must be an http(s) URL';
  } else if (input.jwks || input.jwksUri) {
    return 'only confidential-asymmetric clients register keys';
  }
  if (input.isAdmin && input.type === 'public') return 'an admin client must be confidential';
  return undefined;
}

export class ClientStore {
  constructor(private readonly db: Database) {}

  /** Registers a client; a symmetric client's secret is returned this once and stored hashed. */
  async create(input: NewClient): Promise<{ client: Client; secret?: string }> {
    const problem = clientProblem(input);
    if (problem) throw new Error(problem);
    const clientId = input.clientId ?? randomUUID();
    const secret = input.type === 'confidential-symmetric' ? randomToken() : undefined;
    const result = await this.db.query<ClientRow>(
      sql`INSERT INTO auth_client (client_id, name, client_type, secret_hash, redirect_uris, scopes, jwks, jwks_uri,
                                   organization, purpose_of_use, is_admin)
          VALUES (${clientId}, ${input.name.trim()}, ${input.type}, ${secret ? tokenHash(secret) : null},
                  ${input.redirectUris ?? []}, ${input.scopes ?? []}, ${input.jwks ?? null}, ${input.jwksUri ?? null},
                  ${input.organization ?? null}, ${input.purposeOfUse ?? []}, ${input.isAdmin ?? false})
          ON CONFLICT (client_id) DO NOTHING
          RETURNING *`
    );
    if (!result.rows[0]) throw new Error(`A client with id "${clientId}" already exists`);
    return { client: toClient(result.rows[0]), secret };
  }

  async get(clientId: string): Promise<Client | undefined> {
    const result = await this.db.query<ClientRow>(sql`SELECT * FROM auth_client WHERE client_id = ${clientId} AND active`);
    return result.rows[0] ? toClient(result.rows[0]) : undefined;
  }

  async list(): Promise<Client[]> {
    const result = await this.db.query<ClientRow>(sql`SELECT * FROM auth_client ORDER BY created_at, client_id`);
    return result.rows.map(toClient);
  }

  /** Deactivates a client: it can no longer authenticate or obtain tokens. */
  async deactivate(clientId: string): Promise<boolean> {
    const result = await this.db.query(sql`UPDATE auth_client SET active = false WHERE client_id = ${clientId} AND active`);
    return (result.rowCount ?? 0) > 0;
  }

  /** A new secret for a symmetric client (the old one stops working). */
  async resetSecret(clientId: string): Promise<string | undefined> {
    const secret = randomToken();
    const result = await this.db.query(
      sql`UPDATE auth_client SET secret_hash = ${tokenHash(secret)}
          WHERE client_id = ${clientId} AND client_type = 'confidential-symmetric' AND active`
    );
    return (result.rowCount ?? 0) > 0 ? secret : undefined;
  }

  async count(): Promise<number> {
    const result = await this.db.query<{ n: number }>(sql`SELECT count(*) AS n FROM auth_client`);
    return result.rows[0].n;
  }

  /** The client, if the secret is its current one (constant-time comparison of the hashes). */
  async verifySecret(clientId: string, secret: string): Promise<Client | undefined> {
    const result = await this.db.query<ClientRow>(
      sql`SELECT * FROM auth_client WHERE client_id = ${clientId} AND active AND client_type = 'confidential-symmetric'`
    );
    const row = result.rows[0];
    if (!row?.secret_hash) return undefined;
    const expected = Buffer.from(row.secret_hash);
    const given = Buffer.from(tokenHash(secret));
    return expected.length === given.length && timingSafeEqual(expected, given) ? toClient(row) : undefined;
  }
}
