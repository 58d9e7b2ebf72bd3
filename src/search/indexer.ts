/**
 * Writes index rows in the write's transaction, set-based: for a batch of resources, one
 * DELETE per table (only for resources indexed before) and one multi-row INSERT per table,
 * whatever the number of resources and values.
 */
import type { PoolClient } from 'pg';
import type { IndexItem, ResourceIndexer } from '../services';
import { runStatements } from '../store/database';
import { sql, type Sql } from '../store/sql';
import { emptyRows, extractRows, type IndexRows } from './extract';

const TABLES: { table: keyof IndexRows; name: string; columns: string[]; types: string[] }[] = [
  { table: 'token', name: 'sp_token', columns: ['rid', 'p', 'system', 'code', 'display'], types: ['uuid', 'int4', 'text', 'text', 'text'] },
  { table: 'string', name: 'sp_string', columns: ['rid', 'p', 'norm', 'exact'], types: ['uuid', 'int4', 'text', 'text'] },
  { table: 'date', name: 'sp_date', columns: ['rid', 'p', 'lo', 'hi'], types: ['uuid', 'int4', 'timestamptz', 'timestamptz'] },
  { table: 'number', name: 'sp_number', columns: ['rid', 'p', 'value'], types: ['uuid', 'int4', 'numeric'] },
  {
    table: 'quantity',
    name: 'sp_quantity',
    columns: ['rid', 'p', 'value', 'system', 'code', 'unit'],
    types: ['uuid', 'int4', 'numeric', 'text', 'text', 'text'],
  },
  { table: 'uri', name: 'sp_uri', columns: ['rid', 'p', 'value'], types: ['uuid', 'int4', 'text'] },
  {
    table: 'reference',
    name: 'sp_reference',
    columns: ['rid', 'p', 'target_rid', 'target_type', 'target_id', 'url'],
    types: ['uuid', 'int4', 'uuid', 'text', 'text', 'text'],
  },
  {
    table: 'composite',
    name: 'sp_composite',
    columns: ['rid', 'p', 'ref_rid', 't1_system', 't1_code', 't2_system', 't2_code', 'num1', 'num2', 'lo', 'hi', 'str'],
    types: ['uuid', 'int4', 'uuid', 'text', 'text', 'text', 'text', 'numeric', 'numeric', 'timestamptz', 'timestamptz', 'text'],
  },
];

export const INDEX_TABLES = TABLES.map((t) => t.name);

type Value = string | number | null;

/** Column-wise arrays for unnest(): one array per column. */
function columns(rows: Value[][], width: number): Value[][] {
  const result: Value[][] = Array.from({ length: width }, () => new Array(rows.length));
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    for (let c = 0; c < width; c++) result[c][i] = row[c];
  }
  return result;
}

export class SearchIndexer implements ResourceIndexer {
  constructor(private readonly baseUrl: string) {}

  /** Per table, a DELETE of the rows of resources indexed before and one multi-row INSERT. */
  statements(items: IndexItem[]): Sql[] {
    const stale = items.filter((i) => !i.isNew).map((i) => i.rid);
    const rows = emptyRows();
    for (const item of items) {
      if (item.resource) extractRows(item.resource, item.rid, this.baseUrl, rows);
    }
    const statements: Sql[] = [];
    for (const { table, name, columns: cols, types } of TABLES) {
      if (stale.length === 1) {
        // A single rid as such, not as an array of unknown length: the plan of a prepared
        // write statement then costs the same with or without the value (see WriteTx.commit).
        statements.push(sql`DELETE FROM ${sql.raw(name)} WHERE rid = ${stale[0]}::uuid`);
      } else if (stale.length) {
        statements.push(sql`DELETE FROM ${sql.raw(name)} WHERE rid = ANY(${stale}::uuid[])`);
      }
      const data = rows[table] as Value[][];
      if (data.length) {
        const arrays = columns(data, cols.length).map((values, i) => sql`${sql.array(values)}::${sql.raw(types[i])}[]`);
        statements.push(sql`INSERT INTO ${sql.raw(name)} (${sql.raw(cols.join(', '))}) SELECT * FROM unnest(${sql.join(arrays, ', ')})`);
      }
    }
    return statements;
  }

  /**
   * All of it as one statement (see runStatements): each round trip to PostgreSQL costs far
   * more than the rows it carries, so one statement instead of up to sixteen is most of the
   * cost of indexing a small write.
   */
  async index(client: PoolClient, items: IndexItem[]): Promise<void> {
    await runStatements(client, this.statements(items));
  }
}
