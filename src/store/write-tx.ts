/**
 * A write transaction with deferred, set-based inserts.
 *
 * New resource rows (server-assigned ids, which cannot collide), replaced versions (moved to
 * history) and search index rows are queued and written as one statement when the transaction
 * next reads or commits. A transaction Bundle of a hundred creates thus costs a handful of
 * statements instead of hundreds. Every read through `query` flushes first, so the
 * transaction always sees its own writes.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { PoolClient, QueryResult, QueryResultRow } from 'pg';
import type { IndexItem, ResourceIndexer } from '../services';
import { combineStatements, isRetryable, runQuery, type Database } from './database';
import { sql, type Sql } from './sql';

export interface ResourceRow {
  rid: string;
  resource_type: string;
  id: string;
  version_id: number;
  last_updated: string;
  deleted: boolean;
  content: Resource | null;
  compartments: string[];
  custodian: string | null;
  /** The interaction that wrote this version: POST, PUT, PATCH or DELETE. */
  method: string;
}

/** The columns of `resource`, in the order of ResourceRow. */
export const RESOURCE_COLUMNS = sql.raw('rid, resource_type, id, version_id, last_updated, deleted, content, compartments, custodian, method');
/** What a version keeps when it moves to resource_history. */
const VERSION_COLUMNS = sql.raw('rid, version_id, resource_type, id, last_updated, method, content, compartments, custodian');

const BEGIN = 'BEGIN ISOLATION LEVEL READ COMMITTED';

/**
 * Statements longer than this (as literal text) keep their parameters and a round trip of
 * their own: PostgreSQL scans a literal character by character, while a bound parameter is
 * copied as it is, so for a transaction Bundle's megabytes of rows the saved round trip is
 * worth less than the scanning.
 */
const MAX_INLINE_LENGTH = 64 * 1024;

function inlined(q: Sql): string | undefined {
  const text = q.inline(MAX_INLINE_LENGTH);
  return text !== undefined && text.length <= MAX_INLINE_LENGTH ? text : undefined;
}

/** The result of the last statement of a multi-statement message (pg answers with one result per statement). */
function lastResult<R extends QueryResultRow>(result: QueryResult<R> | QueryResult<R>[]): QueryResult<R> {
  return Array.isArray(result) ? result[result.length - 1] : result;
}

export class WriteTx {
  private statements: Sql[] = [];
  private created: ResourceRow[] = [];
  private index = new Map<string, IndexItem>();
  private begun: boolean;
  private beginFailure: unknown;
  private commitHooks: (() => Promise<void>)[] = [];

  /**
   * `begun: false` defers BEGIN until the transaction first talks to the database, so that a
   * write that reads nothing and queues everything (a create, a batch of AuditEvents, a
   * transaction Bundle of creates) is committed as its one statement alone: atomic by
   * itself, and one round trip instead of three (see runWriteTransaction).
   */
  constructor(
    private readonly connection: PoolClient,
    private readonly indexer: ResourceIndexer,
    options: { begun?: boolean } = {}
  ) {
    this.begun = options.begun ?? true;
  }

  /**
   * The connection, inside the transaction: whatever is sent on it runs after BEGIN. For
   * callers that need the connection itself; statements of the code go through query or send,
   * which save the round trip of BEGIN.
   */
  get client(): PoolClient {
    if (!this.begun) {
      this.begun = true;
      // pg sends queries on one connection in order: anything sent after this runs inside the transaction.
      this.connection.query(BEGIN).catch((err: unknown) => (this.beginFailure = err));
    }
    return this.connection;
  }

  /** Runs a statement after writing everything queued. */
  async query<R extends QueryResultRow = QueryResultRow>(q: Sql): Promise<QueryResult<R>> {
    await this.flush();
    return this.send<R>(q);
  }

  /**
   * Runs a statement now, without writing what is queued first (for statements that neither
   * read nor depend on the queued rows, such as locking the Provenance chain heads). The
   * transaction's first statement carries its BEGIN in the same message: each round trip to
   * PostgreSQL costs more CPU (on both sides) than most statements themselves.
   */
  async send<R extends QueryResultRow = QueryResultRow>(q: Sql): Promise<QueryResult<R>> {
    if (!this.begun) {
      const text = inlined(q);
      if (text !== undefined) {
        this.begun = true;
        return lastResult<R>(await this.connection.query({ text: `${BEGIN}; ${text}`, types: q.resultTypes() }));
      }
    }
    const result = await runQuery<R>(this.client, q);
    // BEGIN was answered before this statement: if it failed, nothing here is transactional.
    if (this.beginFailure) throw this.beginFailure;
    return result;
  }

  /**
   * Writes what is queued and commits. Without BEGIN sent, what is queued goes as one
   * statement in autocommit mode, which PostgreSQL applies entirely or not at all; with it,
   * the last statement runs prepared and COMMIT follows (when it cannot be prepared, the two
   * go in one message). A failing statement skips the COMMIT and leaves the transaction to be
   * rolled back.
   */
  async commit(): Promise<void> {
    await this.runCommitHooks();
    if (!this.begun && !this.needsSeveralStatements()) {
      const statement = combineStatements(this.takeStatements().statements);
      if (statement) await runQuery(this.connection, statement.prepared('write'));
      return;
    }
    if (this.needsSeveralStatements()) {
      await this.flush();
      if (this.beginFailure) throw this.beginFailure;
      await runQuery(this.connection, sql`COMMIT`);
      return;
    }
    if (this.beginFailure) throw this.beginFailure;
    const last = combineStatements(this.takeStatements().statements);
    // A write's statement comes in few shapes (the tables it touches; rows are arrays), so as
    // a prepared statement PostgreSQL parses and plans it once per connection: that saves more
    // than the round trip COMMIT then needs of its own, and the locks taken before (the
    // Provenance chain heads) are held for less time. Inlined with COMMIT when it cannot be
    // prepared (DB_PREPARED_STATEMENTS=false, or too many shapes already).
    const prepared = last?.prepared('write').toQuery();
    if (prepared?.name) {
      await this.connection.query(prepared);
      await this.connection.query('COMMIT');
      return;
    }
    const text = last && inlined(last);
    if (last && text === undefined) {
      await runQuery(this.connection, last);
      await runQuery(this.connection, sql`COMMIT`);
      return;
    }
    await this.connection.query(text === undefined ? 'COMMIT' : `${text}; COMMIT`);
  }

  /**
   * Runs fn once at the end of the transaction, after every write of it and before the final
   * flush and COMMIT: work that must see all of the transaction's writes, and locks that
   * should be held as briefly as possible (the Provenance chain heads).
   */
  beforeCommit(fn: () => Promise<void>): void {
    this.commitHooks.push(fn);
  }

  /** The beforeCommit work, which may queue more rows or register more hooks. */
  private async runCommitHooks(): Promise<void> {
    while (this.commitHooks.length) {
      const hooks = this.commitHooks;
      this.commitHooks = [];
      for (const hook of hooks) {
        await hook();
      }
    }
  }

  /** Undoes whatever was sent; nothing to do when BEGIN never was. */
  async rollback(): Promise<void> {
    if (this.begun) await this.connection.query('ROLLBACK');
  }

  private needsSeveralStatements(): boolean {
    return this.index.size > 0 && !this.indexer.statements;
  }

  /** A data-modifying statement (no result needed) to send with the next flush. */
  queueStatement(statement: Sql): void {
    this.statements.push(statement);
  }

  /** A new resource row (its first version), written at the next flush with the other new rows. */
  queueCreate(row: ResourceRow): void {
    this.created.push(row);
  }

  /**
   * A new version of an existing resource, whose row the transaction has locked: the version it
   * replaces moves to resource_history, copied inside PostgreSQL. Both parts run at the next
   * flush and, in one statement, see the row as it was before it: the copy is the old version.
   */
  queueReplace(row: ResourceRow): void {
    this.statements.push(
      sql`INSERT INTO resource_history (${VERSION_COLUMNS}, replaced_at)
          SELECT ${VERSION_COLUMNS}, ${row.last_updated}::timestamptz FROM resource WHERE rid = ${row.rid}`,
      sql`UPDATE resource SET version_id = ${row.version_id}, last_updated = ${row.last_updated}, deleted = ${row.deleted},
            content = ${row.content}, compartments = ${row.compartments}, custodian = ${row.custodian}, method = ${row.method}
          WHERE rid = ${row.rid}`
    );
  }

  queueIndex(item: IndexItem): void {
    const earlier = this.index.get(item.rid);
    this.index.set(item.rid, earlier ? { ...item, isNew: earlier.isNew && item.isNew } : item);
  }

  /**
   * Writes everything queued as one statement (queued statements, new resource rows and index
   * rows, each table's rows in one multi-row part), so a write costs one round
   * trip however many resources and values it holds.
   */
  async flush(): Promise<void> {
    const { statements, items } = this.takeStatements();
    if (statements.length === 0 && items.length === 0) return;
    const combined = combineStatements(statements);
    if (combined) await this.send(combined);
    if (items.length) {
      await this.indexer.index(this.client, items);
    }
  }

  /** Empties the queues into statements, and the index items the indexer must write itself. */
  private takeStatements(): { statements: Sql[]; items: IndexItem[] } {
    const statements: Sql[] = this.statements;
    this.statements = [];
    if (this.created.length) {
      const rows = this.created;
      this.created = [];
      statements.push(
        sql`INSERT INTO resource (${RESOURCE_COLUMNS})
            SELECT ${RESOURCE_COLUMNS}
            FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(
              rid uuid, resource_type text, id text, version_id integer, last_updated timestamptz,
              deleted boolean, content jsonb, compartments text[], custodian text, method text)`
      );
    }
    let items: IndexItem[] = [];
    if (this.index.size) {
      items = [...this.index.values()];
      this.index = new Map();
      if (this.indexer.statements) {
        statements.push(...this.indexer.statements(items));
        items = [];
      }
    }
    return { statements, items };
  }
}

/**
 * Runs fn in a write transaction with BEGIN deferred (see WriteTx) and commits it; any throw
 * rolls back. Serialization failures, deadlocks and RetryableConflict are retried, as in
 * Database.transaction.
 */
export async function runWriteTransaction<T>(db: Database, indexer: ResourceIndexer, fn: (tx: WriteTx) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const connection = await db.pool.connect();
    const tx = new WriteTx(connection, indexer, { begun: false });
    try {
      const result = await fn(tx);
      await tx.commit();
      return result;
    } catch (err) {
      await tx.rollback().catch(() => undefined);
      if (attempt < 5 && isRetryable(err)) {
        continue;
      }
      throw err;
    } finally {
      connection.release();
    }
  }
}
