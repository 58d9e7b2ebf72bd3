/**
 * A write transaction with deferred, set-based inserts.
 *
 * New resource rows (server-assigned ids, which cannot collide), history rows and search
 * index rows are queued and written as one multi-row INSERT per table when the transaction
 * next reads or commits. A transaction Bundle of a hundred creates thus costs a handful of
 * statements instead of hundreds. Every read through `query` flushes first, so the
 * transaction always sees its own writes.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { PoolClient, QueryResult, QueryResultRow } from 'pg';
import type { IndexItem, ResourceIndexer } from '../services';
import { runQuery } from './database';
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
}

export interface HistoryRow extends Omit<ResourceRow, 'deleted'> {
  method: string;
}

export class WriteTx {
  private newResources: ResourceRow[] = [];
  private history: HistoryRow[] = [];
  private index = new Map<string, IndexItem>();
  private commitHooks: (() => Promise<void>)[] = [];

  constructor(
    readonly client: PoolClient,
    private readonly indexer: ResourceIndexer
  ) {}

  /** Runs a statement after writing everything queued. */
  async query<R extends QueryResultRow = QueryResultRow>(q: Sql): Promise<QueryResult<R>> {
    await this.flush();
    return runQuery<R>(this.client, q);
  }

  queueNewResource(row: ResourceRow): void {
    this.newResources.push(row);
  }

  queueHistory(row: HistoryRow): void {
    this.history.push(row);
  }

  queueIndex(item: IndexItem): void {
    const earlier = this.index.get(item.rid);
    this.index.set(item.rid, earlier ? { ...item, isNew: earlier.isNew && item.isNew } : item);
  }

  /**
   * Runs fn once at the end of the transaction, after every write of it and before the final
   * flush and COMMIT: work that must see all of the transaction's writes, and locks that
   * should be held as briefly as possible (the Provenance chain heads).
   */
  beforeCommit(fn: () => Promise<void>): void {
    this.commitHooks.push(fn);
  }

  /** The end of the transaction: the beforeCommit work (which may queue more rows), then the flush. */
  async prepareCommit(): Promise<void> {
    while (this.commitHooks.length) {
      const hooks = this.commitHooks;
      this.commitHooks = [];
      for (const hook of hooks) {
        await hook();
      }
    }
    await this.flush();
  }

  /** Writes everything queued, in set-based statements. */
  async flush(): Promise<void> {
    if (this.newResources.length) {
      const rows = this.newResources;
      this.newResources = [];
      await runQuery(
        this.client,
        sql`INSERT INTO resource (rid, resource_type, id, version_id, last_updated, deleted, content, compartments, custodian)
            SELECT rid, resource_type, id, version_id, last_updated, deleted, content, compartments, custodian
            FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(
              rid uuid, resource_type text, id text, version_id integer, last_updated timestamptz,
              deleted boolean, content jsonb, compartments text[], custodian text)`
      );
    }
    if (this.history.length) {
      const rows = this.history;
      this.history = [];
      await runQuery(
        this.client,
        sql`INSERT INTO resource_history (rid, version_id, resource_type, id, last_updated, method, content, compartments, custodian)
            SELECT rid, version_id, resource_type, id, last_updated, method, content, compartments, custodian
            FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(
              rid uuid, version_id integer, resource_type text, id text, last_updated timestamptz,
              method text, content jsonb, compartments text[], custodian text)`
      );
    }
    if (this.index.size) {
      const items = [...this.index.values()];
      this.index = new Map();
      await this.indexer.index(this.client, items);
    }
  }
}
