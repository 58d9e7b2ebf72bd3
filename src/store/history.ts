/**
 * History queries at instance, type and system level, newest first, with keyset paging on
 * (last_updated, rid, version_id): a page link stays valid however many versions are
 * written after it was issued.
 */
import type { RequestContext } from '../fhir/context';
import { errors } from '../fhir/outcome';
import { ridOf } from './rid';
import { sql, type Sql } from './sql';
import { toStoredVersion, type StoredVersion } from './repository';

export interface HistoryCursor {
  lastUpdated: string;
  rid: string;
  versionId: number;
  /** 'next' pages towards older versions, 'prev' towards newer ones. */
  direction: 'next' | 'prev';
}

export interface HistoryQuery {
  resourceType?: string;
  id?: string;
  /** Versions written at or after this instant. */
  since?: string;
  /** Versions current at some point within [start, end]. */
  at?: { start: string; end: string };
  count: number;
  cursor?: HistoryCursor;
}

/** A version as history shows it. */
export interface HistoryVersion extends StoredVersion {
  /**
   * Whether this version brought the resource into existence: version 1, or a version written
   * after a deletion (a PUT that re-creates the resource, which answered 201 Created).
   */
  created: boolean;
}

export interface HistoryPage {
  versions: HistoryVersion[];
  /** Whether more versions exist beyond this page in the direction it was read. */
  hasMore: boolean;
}

export function encodeCursor(cursor: HistoryCursor): string {
  return Buffer.from(JSON.stringify([cursor.lastUpdated, cursor.rid, cursor.versionId, cursor.direction])).toString(
    'base64url'
  );
}

export function decodeCursor(raw: string): HistoryCursor {
  try {
    const [lastUpdated, rid, versionId, direction] = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (
      typeof lastUpdated !== 'string' ||
      Number.isNaN(Date.parse(lastUpdated)) ||
      !/^[0-9a-f-]{36}$/.test(rid) ||
      !Number.isInteger(versionId) ||
      (direction !== 'next' && direction !== 'prev')
    ) {
      throw new Error('bad cursor');
    }
    return { lastUpdated, rid, versionId, direction };
  } catch {
    throw errors.badRequest('Invalid _cursor: use the paging links the server returned', '_cursor');
  }
}

export async function readHistory(ctx: RequestContext, query: HistoryQuery): Promise<HistoryPage> {
  const where: Sql[] = [];
  if (query.resourceType) {
    where.push(sql`r.resource_type = ${query.resourceType}`);
  }
  if (query.resourceType && query.id) {
    where.push(sql`r.rid = ${ridOf(query.resourceType, query.id)}`);
  }
  if (query.since) {
    where.push(sql`r.last_updated >= ${query.since}`);
  }
  const filter = ctx.access.readFilter(query.resourceType);
  if (filter) {
    where.push(sql`(${filter})`);
  }

  if (query.at) {
    // The version current during [start, end]: written before end and not replaced before start.
    where.push(sql`r.last_updated <= ${query.at.end}`);
    where.push(sql`(r.replaced_at IS NULL OR r.replaced_at > ${query.at.start})`);
  }

  const cursor = query.cursor;
  const backwards = cursor?.direction === 'prev';
  if (cursor) {
    const op = sql.raw(backwards ? '>' : '<');
    where.push(sql`(r.last_updated, r.rid, r.version_id) ${op} (${cursor.lastUpdated}::timestamptz, ${cursor.rid}::uuid, ${cursor.versionId})`);
  }
  const order = sql.raw(backwards ? 'ASC' : 'DESC');
  const result = await (ctx.tx ?? ctx.services.db).query(
    // A replaced version lives in resource_history, so the one before r is found there by its
    // primary key (rid, version_id).
    sql`SELECT r.rid, r.resource_type, r.id, r.version_id, r.last_updated, r.method, r.content, r.compartments, r.custodian,
               r.version_id = 1 OR EXISTS (
                 SELECT 1 FROM resource_history p
                  WHERE p.rid = r.rid AND p.version_id = r.version_id - 1 AND p.method = 'DELETE'
               ) AS created
        FROM resource_version r
        WHERE ${sql.and(where)}
        ORDER BY r.last_updated ${order}, r.rid ${order}, r.version_id ${order}
        LIMIT ${query.count + 1}`
  );
  const rows = result.rows as (Parameters<typeof toStoredVersion>[0] & { created: boolean })[];
  const hasMore = rows.length > query.count;
  const versions = rows.slice(0, query.count).map((row) => ({ ...toStoredVersion(row), created: row.created }));
  if (backwards) {
    versions.reverse();
  }
  return { versions, hasMore };
}
