/**
 * People who log in on the authorization pages: practitioners (linked to their Practitioner
 * resource and Organization) and patients (linked to their Patient resource). Passwords are
 * hashed with scrypt; login sessions live in PostgreSQL behind a random cookie value.
 */
import { randomUUID, scrypt as scryptCb, timingSafeEqual, randomBytes, type ScryptOptions } from 'node:crypto';
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
}

export interface NewUser {
  username: string;
  password: string;
  fhirUser: string;
  organization?: string;
  displayName?: string;
}

interface UserRow {
  user_id: string;
  username: string;
  password_hash: string;
  display_name: string | null;
  fhir_user: string;
  organization: string | null;
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
      sql`INSERT INTO auth_user (user_id, username, password_hash, display_name, fhir_user, organization)
          VALUES (${randomUUID()}, ${input.username}, ${await hashPassword(input.password)}, ${input.displayName ?? null},
                  ${input.fhirUser}, ${input.organization ?? null})
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

  async endSession(sessionHash: string): Promise<void> {
    await this.db.query(sql`UPDATE auth_session SET ended_at = now() WHERE session_hash = ${sessionHash}`);
  }
}
