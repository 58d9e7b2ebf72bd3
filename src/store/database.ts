/**
 * The PostgreSQL connection pool and the transaction helper every write goes through.
 */
import pg from 'pg';
import { sql, Sql } from './sql';

// Bigint (COUNT, int8) as JS numbers: counts and sizes here stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));
// Timestamps are passed through as strings and formatted by us (see toFhirInstant).
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, (value: string) => value);

export type Queryable = Pick<pg.PoolClient, 'query'>;

/**
 * Planner settings of every connection. A search is a few index lookups joined on rid, and
 * PostgreSQL plans it for longer than it runs it. Costing a merge join on a uuid key probes
 * the index for its real first and last values (get_actual_variable_range), about a third of
 * the planning time of a search; nested loops and hash joins are what such joins use anyway.
 * The setting does not apply to a FULL JOIN, which PostgreSQL still merges where it must.
 */
const SESSION_SETTINGS = 'SET enable_mergejoin = off';

/**
 * A client that applies SESSION_SETTINGS once connected, before the pool hands it out: as a
 * statement rather than a startup option, which poolers such as PgBouncer may refuse.
 */
class SessionClient extends pg.Client {
  override connect(): Promise<pg.Client>;
  override connect(callback: (err: Error) => void): void;
  override connect(callback?: (err: Error, client?: pg.Client) => void): Promise<pg.Client> | void {
    const ready = super.connect().then(async (client) => {
      await client.query(SESSION_SETTINGS);
      return client;
    });
    if (!callback) return ready;
    ready.then(
      (client) => callback(null as unknown as Error, client),
      (err: Error) => callback(err)
    );
  }
}

export class Database {
  readonly pool: pg.Pool;

  /**
   * idleTimeoutMs 0 keeps idle connections open. A new backend pays for its fork, for filling
   * its catalog caches, and for a page fault on each shared buffer it touches for the first
   * time; pg's default (closing after 10 s idle) made every burst after a pause pay it again.
   */
  constructor(connectionString: string, max: number, idleTimeoutMs = 0) {
    this.pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: idleTimeoutMs, application_name: 'fhir-server', Client: SessionClient });
    // An idle client losing its connection (database restart) must not crash the process.
    this.pool.on('error', () => undefined);
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(q: Sql): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(q.toQuery());
  }

  /**
   * Runs fn inside BEGIN/COMMIT on one connection; any throw rolls back. Serialization
   * failures and deadlocks are retried, since they only mean that a concurrent write won.
   */
  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>, isolation = 'READ COMMITTED'): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      try {
        await client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        if (attempt < 5 && isRetryable(err)) {
          continue;
        }
        throw err;
      } finally {
        client.release();
      }
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Marker for unique violations that a retry resolves (two creators racing on one new row). */
export class RetryableConflict extends Error {
  readonly code = '23505';
}

export function isRetryable(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === '40001' || code === '40P01' || err instanceof RetryableConflict;
}

export async function runQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(
  client: Queryable,
  q: Sql
): Promise<pg.QueryResult<R>> {
  return client.query<R>(q.toQuery());
}

/**
 * Runs data-modifying statements (INSERT, UPDATE, DELETE without RETURNING) as one
 * statement, each a part of a WITH clause: one round trip instead of one each. The parts
 * share one snapshot, so none sees the others' changes (a DELETE beside an INSERT into the
 * same table removes only rows that existed before), and they must not touch the same rows.
 */
export async function runStatements(client: Queryable, statements: Sql[]): Promise<void> {
  const combined = combineStatements(statements);
  if (combined) await runQuery(client, combined);
}

/** The one statement runStatements sends; undefined for none. */
export function combineStatements(statements: Sql[]): Sql | undefined {
  if (statements.length === 0) return undefined;
  if (statements.length === 1) return statements[0];
  const parts = statements.map((statement, i) => sql`${sql.raw(`w${i}`)} AS (${statement})`);
  return sql`WITH ${sql.join(parts, ', ')} SELECT 1`;
}
