/**
 * The server's signing keys, persisted in PostgreSQL so that every server process signs
 * with the same key and verifies what any other signed.
 *
 * One active key per algorithm signs; rotate() replaces it. A retired key stays published
 * in the JWKS and accepted for verification: access tokens signed by it keep working until
 * they expire, and Provenance signatures (which must be verifiable for the records' whole
 * legal retention period) keep verifying for good: a key handed out by recordSigningKey()
 * is marked as a record-signing key and never expires, whatever retention a rotation asks.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type JWK, type KeyLike } from 'jose';
import type { Database } from '../store/database';
import { sql } from '../store/sql';

/** RS256: id tokens and access tokens (what SMART clients expect); ES256: Provenance signatures (short). */
export type SigningAlg = 'RS256' | 'ES256';

export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  privateKey: KeyLike;
  publicJwk: JWK;
}

export interface VerificationKey {
  kid: string;
  alg: string;
  key: KeyLike;
  /** The key is still published (not expired). */
  retiredAt?: string;
}

interface KeyRow {
  kid: string;
  alg: SigningAlg;
  public_jwk: JWK;
  private_jwk: JWK;
  retired_at: string | null;
  expires_at: string | null;
  signs_records?: boolean;
}

/** How long a key is trusted from the cache before the database is asked again. */
const ACTIVE_CACHE_MS = 30_000;
/** Arbitrary constant naming the lock that serializes key creation across processes. */
const KEY_LOCK = 7_340_022;

/** The algorithm of record (Provenance) signatures: ES256 signs in a fraction of RS256's time. */
export const RECORD_SIGNING_ALG: SigningAlg = 'ES256';

export class KeyStore {
  private active = new Map<SigningAlg, { key: SigningKey; loadedAt: number }>();
  private verification = new Map<string, { key: VerificationKey; loadedAt: number }>();
  private record?: { key: SigningKey; loadedAt: number };

  constructor(private readonly db: Database) {}

  /** The key that signs with alg now; created on first use (once, whatever the number of processes). */
  async signingKey(alg: SigningAlg): Promise<SigningKey> {
    const cached = this.active.get(alg);
    if (cached && Date.now() - cached.loadedAt < ACTIVE_CACHE_MS) {
      return cached.key;
    }
    let row = await this.activeRow(alg);
    if (!row) {
      row = await this.createKey(alg, false);
    }
    const key = await toSigningKey(row);
    this.active.set(alg, { key, loadedAt: Date.now() });
    return key;
  }

  /**
   * The key that signs records (Provenance) now, read through `via` (a write's own
   * transaction: the write path never waits for a second pool connection). Before it signs
   * anything it is marked as a record-signing key, which clears any expiry: what it signs must
   * stay verifiable for the records' whole retention period, even if a rotation raced with
   * this and asked otherwise. Only a key seen marked (committed) is cached; until then every
   * caller marks it again in its own transaction, so no signature can commit with an unmarked key.
   */
  async recordSigningKey(via: Pick<Database, 'query'> = this.db): Promise<SigningKey> {
    const cached = this.record;
    if (cached && Date.now() - cached.loadedAt < ACTIVE_CACHE_MS) {
      return cached.key;
    }
    let row = (
      await via.query<KeyRow>(
        sql`SELECT kid, alg, public_jwk, private_jwk, retired_at, expires_at, signs_records FROM signing_key
            WHERE alg = ${RECORD_SIGNING_ALG} AND retired_at IS NULL`
      )
    ).rows[0];
    // Only on a new database (the provenance module asks at start-up, so not on the write path).
    row ??= await this.createKey(RECORD_SIGNING_ALG, false);
    const key = await toSigningKey(row);
    if (row.signs_records) {
      this.record = { key, loadedAt: Date.now() };
    } else {
      await via.query(sql`UPDATE signing_key SET signs_records = true, expires_at = NULL WHERE kid = ${row.kid}`);
      this.verification.delete(row.kid);
    }
    return key;
  }

  /** The public key with this kid, if it is known and not expired (looked up again when not cached). */
  async verificationKey(kid: string): Promise<VerificationKey | undefined> {
    const cached = this.verification.get(kid);
    if (cached && Date.now() - cached.loadedAt < ACTIVE_CACHE_MS) {
      return cached.key;
    }
    const result = await this.db.query<KeyRow>(
      sql`SELECT kid, alg, public_jwk, private_jwk, retired_at, expires_at FROM signing_key
          WHERE kid = ${kid} AND (expires_at IS NULL OR expires_at > now())`
    );
    const row = result.rows[0];
    if (!row) {
      return undefined;
    }
    const key: VerificationKey = {
      kid: row.kid,
      alg: row.alg,
      key: (await importJWK(row.public_jwk, row.alg)) as KeyLike,
      retiredAt: row.retired_at ?? undefined,
    };
    // Briefly cached: a rotation in another process (which may set an expiry) is seen soon.
    this.verification.set(kid, { key, loadedAt: Date.now() });
    return key;
  }

  /** Every published public key, as a JSON Web Key Set. */
  async jwks(): Promise<{ keys: JWK[] }> {
    // Make sure both algorithms have a key, so the set never starts empty.
    await Promise.all([this.signingKey('RS256'), this.signingKey('ES256')]);
    const result = await this.db.query<KeyRow>(
      sql`SELECT kid, alg, public_jwk FROM signing_key
          WHERE expires_at IS NULL OR expires_at > now() ORDER BY created_at DESC`
    );
    return { keys: result.rows.map((row) => ({ ...row.public_jwk, kid: row.kid, alg: row.alg, use: 'sig' })) };
  }

  /**
   * Makes a new key the active one for alg. The previous key stops signing at once but stays
   * published; `retainFor` (ms) sets when it expires (undefined: never). A key that has signed
   * records never expires.
   */
  async rotate(alg: SigningAlg, retainFor?: number): Promise<string> {
    const row = await this.createKey(alg, true, retainFor);
    this.active.delete(alg);
    if (alg === RECORD_SIGNING_ALG) this.record = undefined;
    return row.kid;
  }

  private async activeRow(alg: SigningAlg): Promise<KeyRow | undefined> {
    const result = await this.db.query<KeyRow>(
      sql`SELECT kid, alg, public_jwk, private_jwk, retired_at, expires_at FROM signing_key
          WHERE alg = ${alg} AND retired_at IS NULL`
    );
    return result.rows[0];
  }

  private async createKey(alg: SigningAlg, replace: boolean, retainFor?: number): Promise<KeyRow> {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    const kid = randomUUID();
    const publicJwk = await exportJWK(publicKey);
    const privateJwk = await exportJWK(privateKey);
    return this.db.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [KEY_LOCK]);
      const existing = await client.query<KeyRow>(
        'SELECT kid, alg, public_jwk, private_jwk, retired_at, expires_at FROM signing_key WHERE alg = $1 AND retired_at IS NULL',
        [alg]
      );
      if (existing.rows[0] && !replace) {
        // Another process created it first.
        return existing.rows[0];
      }
      if (existing.rows[0]) {
        await client.query(
          `UPDATE signing_key SET retired_at = now(),
             expires_at = CASE WHEN $2::bigint IS NULL OR signs_records THEN NULL
                               ELSE now() + ($2::bigint * interval '1 millisecond') END
           WHERE kid = $1`,
          [existing.rows[0].kid, retainFor ?? null]
        );
      }
      await client.query('INSERT INTO signing_key (kid, alg, public_jwk, private_jwk) VALUES ($1, $2, $3, $4)', [
        kid,
        alg,
        publicJwk,
        privateJwk,
      ]);
      return { kid, alg, public_jwk: publicJwk, private_jwk: privateJwk, retired_at: null, expires_at: null };
    });
  }
}

async function toSigningKey(row: KeyRow): Promise<SigningKey> {
  return {
    kid: row.kid,
    alg: row.alg,
    privateKey: (await importJWK(row.private_jwk, row.alg)) as KeyLike,
    publicJwk: { ...row.public_jwk, kid: row.kid, alg: row.alg, use: 'sig' },
  };
}
