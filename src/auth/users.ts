/**
 * People who log in on the authorization pages: practitioners (linked to their Practitioner
 * resource and Organization) and patients (linked to their Patient resource). Passwords are
 * hashed with scrypt; login sessions live in PostgreSQL behind a random cookie value.
 */
import { createPublicKey, randomUUID, scrypt as scryptCb, timingSafeEqual, randomBytes, type ScryptOptions } from 'node:crypto';
import type { JWK } from 'jose';
import type { Database } from '../store/database';
import { sql } from '../store/sql';
import { randomToken, tokenHash } from './oauth';

export interface User {
  userId: string;
  username: string;
  displayName?: string;
  /** "Practitioner/123" or "Patient/456". */
  fhirUser: string;
  organization?: string;
  /** The user's own public keys, with which they sign what they write (Provenance author signatures). */
  signingJwks?: SigningJwks;
}

export interface SigningJwks {
  keys: JWK[];
}

export interface NewUser {
  username: string;
  password: string;
  fhirUser: string;
  organization?: string;
  displayName?: string;
  signingJwks?: SigningJwks;
}

interface UserRow {
  user_id: string;
  username: string;
  password_hash: string;
  display_name: string | null;
  fhir_user: string;
  organization: string | null;
  signing_jwks: SigningJwks | null;
}

/** Algorithms a user's signing key may declare (JWS, RFC 7518 and RFC 8037). */
export const USER_SIGNING_ALGS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA'];
const MAX_SIGNING_KEYS = 5;
const MAX_SIGNING_JWKS_BYTES = 8192;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Why a user's signing JWKS is not acceptable: a few public signature keys, each with its kid. */
export function signingJwksProblem(jwks: unknown): string | undefined {
  const set = jwks as SigningJwks;
  if (!set || typeof set !== 'object' || !Array.isArray(set.keys) || set.keys.length === 0) {
    return 'signingJwks must be a JWKS: {"keys": [ ...public keys... ]}';
  }
  if (set.keys.length > MAX_SIGNING_KEYS) return `signingJwks may hold at most ${MAX_SIGNING_KEYS} keys`;
  if (JSON.stringify(set).length > MAX_SIGNING_JWKS_BYTES) return `signingJwks may be at most ${MAX_SIGNING_JWKS_BYTES} bytes`;
  const kids = new Set<string>();
  for (const key of set.keys) {
    if (!key || typeof key !== 'object') return 'every key of signingJwks must be a JWK object';
    if (typeof key.kid !== 'string' || !key.kid || key.kid.length > 200) return 'every key of signingJwks needs a kid';
    if (kids.has(key.kid)) return `signingJwks has two keys with kid "${key.kid}"`;
    kids.add(key.kid);
    if (PRIVATE_MEMBERS.some((m) => m in key)) return `key "${key.kid}" holds private key material: register the public key only`;
    if (!['EC', 'RSA', 'OKP'].includes(key.kty as string)) return `key "${key.kid}": kty must be EC, RSA or OKP`;
    if (key.alg !== undefined && !USER_SIGNING_ALGS.includes(key.alg)) return `key "${key.kid}": alg must be one of ${USER_SIGNING_ALGS.join(', ')}`;
    if (key.use !== undefined && key.use !== 'sig') return `key "${key.kid}": use must be "sig"`;
    try {
      createPublicKey({ key: key as import('node:crypto').JsonWebKey, format: 'jwk' });
    } catch (err) {
      return `key "${key.kid}" is not a valid public key (${(err as Error).message})`;
    }
  }
  return undefined;
}

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 };

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key)))
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p });
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt') return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p) });
  return timingSafeEqual(key, expected);
}

function toUser(row: UserRow): User {
  return {
    userId: row.user_id,
    username: row.username,
    ...(row.display_name && { displayName: row.display_name }),
    fhirUser: row.fhir_user,
    ...(row.organization && { organization: row.organization }),
    ...(row.signing_jwks && { signingJwks: row.signing_jwks }),
  };
}

export function userProblem(input: NewUser): string | undefined {
  if (!input || typeof input.username !== 'string' || !/^[^\s]{1,100}$/.test(input.username)) return 'username is required (no spaces)';
  if (typeof input.password !== 'string' || input.password.length < 8) return 'password must have at least 8 characters';
  if (typeof input.fhirUser !== 'string' || !/^(Practitioner|Patient)\/[A-Za-z0-9\-.]{1,64}$/.test(input.fhirUser)) {
    return 'fhirUser must be "Practitioner/<id>" or "Patient/<id>"';
  }
  if (input.organization !== undefined && !/^[A-Za-z0-9\-.]{1,64}$/.test(input.organization)) return 'organization must be an Organization id';
  // A practitioner acts for an organization, which becomes the custodian of what they write.
  if (input.fhirUser.startsWith('Practitioner/') && !input.organization) return 'a practitioner needs an organization (Organization id)';
  if (input.signingJwks !== undefined) return signingJwksProblem(input.signingJwks);
  return undefined;
}

// Compared against when the username is unknown, so that timing does not tell which names exist.
let dummyHash: Promise<string> | undefined;

export interface Session {
  sessionHash: string;
  csrf: string;
  user: User;
}

export class UserStore {
  constructor(private readonly db: Database) {}

  async create(input: NewUser): Promise<User> {
    const problem = userProblem(input);
    if (problem) throw new Error(problem);
    const result = await this.db.query<UserRow>(
      sql`INSERT INTO auth_user (user_id, username, password_hash, display_name, fhir_user, organization, signing_jwks)
          VALUES (${randomUUID()}, ${input.username}, ${await hashPassword(input.password)}, ${input.displayName ?? null},
                  ${input.fhirUser}, ${input.organization ?? null}, ${input.signingJwks ? JSON.stringify(input.signingJwks) : null})
          ON CONFLICT (username) DO NOTHING RETURNING *`
    );
    if (!result.rows[0]) throw new Error(`A user named "${input.username}" already exists`);
    return toUser(result.rows[0]);
  }

  async list(): Promise<User[]> {
    const result = await this.db.query<UserRow>(sql`SELECT * FROM auth_user WHERE active ORDER BY username`);
    return result.rows.map(toUser);
  }

  async get(userId: string): Promise<User | undefined> {
    const result = await this.db.query<UserRow>(sql`SELECT * FROM auth_user WHERE user_id = ${userId} AND active`);
    return result.rows[0] ? toUser(result.rows[0]) : undefined;
  }

  /** Replaces a user's signing keys (undefined removes them); false when there is no such active user. */
  async setSigningJwks(userId: string, jwks: SigningJwks | undefined): Promise<User | undefined> {
    if (jwks !== undefined) {
      const problem = signingJwksProblem(jwks);
      if (problem) throw new Error(problem);
    }
    const result = await this.db.query<UserRow>(
      sql`UPDATE auth_user SET signing_jwks = ${jwks ? JSON.stringify(jwks) : null} WHERE user_id = ${userId} AND active RETURNING *`
    );
    return result.rows[0] ? toUser(result.rows[0]) : undefined;
  }

  /**
   * The signing keys of the active users whose FHIR resource is fhirUser ("Practitioner/1"),
   * read through `via` (a write's own transaction, so that it never waits for a second connection).
   */
  async signingKeysOf(fhirUser: string, via: Pick<Database, 'query'> = this.db): Promise<JWK[]> {
    const result = await via.query<{ signing_jwks: SigningJwks }>(
      sql`SELECT signing_jwks FROM auth_user WHERE fhir_user = ${fhirUser} AND active AND signing_jwks IS NOT NULL`
    );
    return result.rows.flatMap((row) => row.signing_jwks.keys);
  }

  async deactivate(userId: string): Promise<boolean> {
    const result = await this.db.query(sql`UPDATE auth_user SET active = false WHERE user_id = ${userId} AND active`);
    await this.db.query(sql`UPDATE auth_session SET ended_at = now() WHERE user_id = ${userId} AND ended_at IS NULL`);
    return (result.rowCount ?? 0) > 0;
  }

  /** The user, if the password is right. */
  async login(username: string, password: string): Promise<User | undefined> {
    const result = await this.db.query<UserRow>(sql`SELECT * FROM auth_user WHERE username = ${username} AND active`);
    const row = result.rows[0];
    if (!row) {
      dummyHash ??= hashPassword(randomToken());
      await verifyPassword(password, await dummyHash);
      return undefined;
    }
    return (await verifyPassword(password, row.password_hash)) ? toUser(row) : undefined;
  }

  /** Starts a login session; the returned value goes into the cookie and is stored hashed. */
  async startSession(userId: string, lifetimeSeconds: number): Promise<string> {
    const value = randomToken();
    await this.db.query(
      sql`INSERT INTO auth_session (session_hash, user_id, csrf, expires_at)
          VALUES (${tokenHash(value)}, ${userId}, ${randomToken(18)}, now() + ${lifetimeSeconds} * interval '1 second')`
    );
    await this.db.query(sql`DELETE FROM auth_session WHERE expires_at < now() - interval '1 day'`);
    return value;
  }

  async session(cookieValue: string | undefined): Promise<Session | undefined> {
    if (!cookieValue) return undefined;
    const result = await this.db.query<UserRow & { session_hash: string; csrf: string }>(
      sql`SELECT s.session_hash, s.csrf, u.* FROM auth_session s JOIN auth_user u USING (user_id)
          WHERE s.session_hash = ${tokenHash(cookieValue)} AND s.ended_at IS NULL AND s.expires_at > now() AND u.active`
    );
    const row = result.rows[0];
    return row ? { sessionHash: row.session_hash, csrf: row.csrf, user: toUser(row) } : undefined;
  }

  /** Whether a session (by its stored hash) is still open: online_access refresh tokens live as long. */
  async sessionActive(sessionHash: string): Promise<boolean> {
    const result = await this.db.query(
      sql`SELECT 1 FROM auth_session WHERE session_hash = ${sessionHash} AND ended_at IS NULL AND expires_at > now()`
    );
    return (result.rowCount ?? 0) > 0;
  }

  /** When the user logged in to start this session (seconds since the epoch), if it is still on record. */
  async sessionStartedAt(sessionHash: string): Promise<number | undefined> {
    const result = await this.db.query<{ started: number }>(
      sql`SELECT floor(extract(epoch FROM created_at))::bigint AS started FROM auth_session WHERE session_hash = ${sessionHash}`
    );
    return result.rows[0]?.started;
  }

  async endSession(sessionHash: string): Promise<void> {
    await this.db.query(sql`UPDATE auth_session SET ended_at = now() WHERE session_hash = ${sessionHash}`);
  }
}
