/**
 * Runs a parsed search: the WHERE clause (type, not deleted, filters, caller's access,
 * compartment), sort keys, keyset paging and totals.
 *
 * Paging is keyset-based: a page token holds the sort values and rid of the last row shown,
 * and the next page continues strictly after it, so pages stay correct (no duplicates, no
 * gaps) however much data is written between requests.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { RequestContext } from '../fhir/context';
import { errors } from '../fhir/outcome';
import { sql, type Sql } from '../store/sql';
import { STORED_COLUMNS, StoredResource } from '../store/stored-resource';
import { filtersConditions, TABLE } from './conditions';
import type { SearchQuery, SortRule } from './parse';
import type { ParamKind } from './registry';

export interface ResultRow {
  rid: string;
  /** The row's JSON text; `resource` parses it on first use. */
  stored: StoredResource;
  readonly resource: Resource;
  sortValues: (string | null)[];
}

interface SortKey {
  expression: Sql;
  descending: boolean;
  /** The SQL type the key's values are compared as in page tokens. */
  type: string;
}

const SORT_TYPES: Partial<Record<ParamKind, string>> = { date: 'timestamptz', number: 'numeric', quantity: 'numeric' };
const SORT_COLUMN: Partial<Record<ParamKind, [string, string]>> = {
  date: ['lo', 'hi'],
  string: ['norm', 'norm'],
  token: ['code', 'code'],
  number: ['value', 'value'],
  quantity: ['value', 'value'],
  uri: ['value', 'value'],
  reference: ["coalesce(target_type || '/' || target_id, url)", "coalesce(target_type || '/' || target_id, url)"],
};

function sortKey(rule: SortRule): SortKey {
  const param = rule.params[0];
  if (param.code === '_id') return { expression: sql`r.id`, descending: rule.descending, type: 'text' };
  if (param.code === '_lastUpdated') return { expression: sql`r.last_updated`, descending: rule.descending, type: 'timestamptz' };
  const [asc, desc] = SORT_COLUMN[param.kind] as [string, string];
  // Ascending sorts by a resource's lowest value, descending by its highest (FHIR search §3.1.1.4.9).
  const aggregate = rule.descending ? sql.raw(`max(${desc})`) : sql.raw(`min(${asc})`);
  const table = sql.raw(TABLE[param.kind as keyof typeof TABLE]);
  return {
    expression: sql`(SELECT ${aggregate} FROM ${table} WHERE rid = r.rid AND p = ANY(${rule.params.map((p) => p.key)}::int4[]))`,
    descending: rule.descending,
    type: SORT_TYPES[param.kind] ?? 'text',
  };
}

/** Without _sort: newest first, which the (resource_type, last_updated, rid) index serves directly. */
function sortKeys(query: SearchQuery): SortKey[] {
  if (query.sort.length === 0) {
    return [{ expression: sql`r.last_updated`, descending: true, type: 'timestamptz' }];
  }
  return query.sort.map(sortKey);
}

export function whereClause(ctx: RequestContext, query: SearchQuery, extra: Sql[] = []): Sql {
  const conditions: Sql[] = [sql`NOT r.deleted`];
  if (query.resourceTypes.length === 1) {
    conditions.push(sql`r.resource_type = ${query.resourceTypes[0]}`);
  } else {
    conditions.push(sql`r.resource_type = ANY(${query.resourceTypes}::text[])`);
  }
  conditions.push(...extra);
  conditions.push(...filtersConditions(ctx, query.filters));
  const access = ctx.access.readFilter(query.resourceTypes.length === 1 ? query.resourceTypes[0] : undefined);
  if (access) conditions.push(sql`(${access})`);
  return sql.and(conditions);
}

// ---- page tokens ----------------------------------------------------------------------

interface PageToken {
  direction: 'next' | 'prev';
  values: (string | null)[];
  rid: string;
}

export function encodePageToken(token: PageToken): string {
  return Buffer.from(JSON.stringify([token.direction === 'next' ? 'n' : 'p', token.values, token.rid])).toString('base64url');
}

function decodePageToken(raw: string, keys: number): PageToken {
  try {
    const [d, values, rid] = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if ((d !== 'n' && d !== 'p') || !Array.isArray(values) || values.length !== keys || !/^[0-9a-f-]{36}$/.test(rid)) {
      throw new Error('bad token');
    }
    if (!values.every((v: unknown) => v === null || typeof v === 'string')) throw new Error('bad token');
    return { direction: d === 'n' ? 'next' : 'prev', values, rid };
  } catch {
    throw errors.badRequest('Invalid _page token: use the paging links the server returned', '_page');
  }
}

/** Rows strictly after (or before) the token's row in the sort order; nulls sort last. */
function keysetCondition(keys: SortKey[], token: PageToken, columns: Sql[], ridColumn: Sql, ridDescending: boolean): Sql {
  const forward = token.direction === 'next';
  const alternatives: Sql[] = [];
  const equalSoFar: Sql[] = [];
  keys.forEach((key, i) => {
    const value = token.values[i];
    const column = columns[i];
    const typed = sql`${value}::${sql.raw(key.type)}`;
    // "Later" in the direction of travel: ascending keys grow going forward, descending ones shrink.
    const later = key.descending !== !forward ? sql`${column} < ${typed}` : sql`${column} > ${typed}`;
    if (value !== null) {
      // Non-null values come before nulls going forward, after them going back.
      alternatives.push(sql.and([...equalSoFar, forward ? sql`(${later} OR ${column} IS NULL)` : sql`(${later} AND ${column} IS NOT NULL)`]));
      equalSoFar.push(sql`${column} = ${typed}`);
    } else {
      if (!forward) alternatives.push(sql.and([...equalSoFar, sql`${column} IS NOT NULL`]));
      equalSoFar.push(sql`${column} IS NULL`);
    }
  });
  const ridLater = ridDescending !== !forward ? sql`${ridColumn} < ${token.rid}::uuid` : sql`${ridColumn} > ${token.rid}::uuid`;
  alternatives.push(sql.and([...equalSoFar, ridLater]));
  return sql.or(alternatives);
}

export interface Page {
  rows: ResultRow[];
  /** More rows after this page (in the order of the search). */
  hasNext: boolean;
  /** More rows before this page. */
  hasPrevious: boolean;
}

export async function runPage(ctx: RequestContext, query: SearchQuery, where: Sql, limit = query.count): Promise<Page> {
  const keys = sortKeys(query);
  const token = query.pageToken ? decodePageToken(query.pageToken, keys.length) : undefined;
  const backwards = token?.direction === 'prev';
  const ridDescending = keys[0].descending;
  const columns = keys.map((_, i) => sql.raw(`q.s${i}`));
  const selectKeys = keys.map((k, i) => sql`${k.expression} AS ${sql.raw(`s${i}`)}`);
  const order = keys.map((k, i) => {
    const descending = k.descending !== backwards;
    return sql.raw(`q.s${i} ${descending ? 'DESC' : 'ASC'} NULLS ${backwards ? 'FIRST' : 'LAST'}`);
  });
  order.push(sql.raw(`q.rid ${ridDescending !== backwards ? 'DESC' : 'ASC'}`));
  const keyset = token ? keysetCondition(keys, token, columns, sql`q.rid`, ridDescending) : sql`TRUE`;
  const result = await (ctx.tx ?? ctx.services.db).query<Record<string, unknown>>(
    sql`SELECT q.* FROM (SELECT r.rid, ${STORED_COLUMNS}, ${sql.join(selectKeys, ', ')} FROM resource r WHERE ${where}) q
        WHERE ${keyset}
        ORDER BY ${sql.join(order, ', ')}
        LIMIT ${limit + 1}`.jsonAsText()
  );
  const more = result.rows.length > limit;
  let rows: ResultRow[] = result.rows.slice(0, limit).map((row) => {
    const stored = StoredResource.fromRow(row);
    return {
      rid: row.rid as string,
      stored,
      get resource() {
        return stored.resource;
      },
      sortValues: keys.map((_, i) => (row[`s${i}`] === null || row[`s${i}`] === undefined ? null : String(row[`s${i}`]))),
    };
  });
  if (backwards) rows = rows.reverse();
  return {
    rows,
    hasNext: backwards ? true : more,
    hasPrevious: backwards ? more : token !== undefined,
  };
}

export function pageTokens(page: Page): { next?: string; previous?: string } {
  const first = page.rows[0];
  const last = page.rows[page.rows.length - 1];
  return {
    next: page.hasNext && last ? encodePageToken({ direction: 'next', values: last.sortValues, rid: last.rid }) : undefined,
    previous: page.hasPrevious && first ? encodePageToken({ direction: 'prev', values: first.sortValues, rid: first.rid }) : undefined,
  };
}

/** Up to this many matches, _total=estimate counts them (a bounded count is cheap) instead of asking the planner. */
export const ESTIMATE_COUNTS_UP_TO = 1000;

/**
 * Bundle.total. `estimate` (search.html 3.1.1.5.6: "a rough estimate ... is sufficient") is
 * still a total of matches (bundle.html, Bundle.total), so it is never below what is already
 * known: the matches counted up to ESTIMATE_COUNTS_UP_TO (exact when fewer), and `known`
 * (the matches of this page, plus one when there is a next page). Only beyond that bound is
 * the planner's row estimate used, which alone can be far off (1 for 25 matches when the
 * statistics are stale).
 */
export async function countMatches(ctx: RequestContext, where: Sql, estimate: boolean, known = 0): Promise<number> {
  const db = ctx.tx ?? ctx.services.db;
  if (estimate) {
    const bounded = await db.query<{ n: number }>(
      sql`SELECT count(*)::int AS n FROM (SELECT 1 FROM resource r WHERE ${where} LIMIT ${ESTIMATE_COUNTS_UP_TO}) s`
    );
    const counted = bounded.rows[0].n;
    if (counted < ESTIMATE_COUNTS_UP_TO) {
      return Math.max(counted, known); // exact, unless a write came in between
    }
    const plan = await db.query<{ 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }>(
      sql`EXPLAIN (FORMAT JSON) SELECT 1 FROM resource r WHERE ${where}`
    );
    return Math.max(Math.round(plan.rows[0]['QUERY PLAN'][0].Plan['Plan Rows']), counted, known);
  }
  const result = await db.query<{ n: number }>(sql`SELECT count(*)::int AS n FROM resource r WHERE ${where}`);
  return result.rows[0].n;
}
