/**
 * Rebuilds the search index rows of stored resources, for parameters that were added or
 * changed after the resources were written (new profiles/, stored SearchParameters, a new
 * server version).
 *
 * Set-based and batched: each batch reads a page of current resources of one type in keyset
 * order (last_updated, rid) over the resource_type_updated_idx index, locks them FOR SHARE
 * (a concurrent update waits for the batch instead of racing it), rewrites their rows with
 * the indexer's multi-row statements and records the cursor, all in one transaction. An
 * interrupted run resumes from the last committed batch of each type; a resource updated
 * during the run moves past the cursor and is indexed again, which is harmless.
 */
import { getResourceTypeList, isKnownResourceType, loadDefinitions } from '../fhir/definitions';
import type { Database } from '../store/database';
import { runQuery } from '../store/database';
import { sql } from '../store/sql';
import { SearchIndexer } from './indexer';
import type { StoredParameterReport } from './registry';
import { loadProfileSearchParameters } from './registry';
import { loadStoredSearchParameters, recordIndexState } from './stored-params';

export interface ReindexOptions {
  /** Only these types (default: every type that has resources). */
  types?: string[];
  /** Resources per transaction. */
  batchSize?: number;
  /** Forget the progress of an interrupted run and start every type from the beginning. */
  restart?: boolean;
  /** Where profiles/ is (SearchParameter resources of the national pack). */
  profilesDir: string;
  baseUrl: string;
  onProgress?: (progress: { resourceType: string; resources: number; done: boolean }) => void;
}

export interface ReindexResult {
  reindexed: { resourceType: string; resources: number }[];
  storedParameters: StoredParameterReport;
}

interface Progress {
  resource_type: string;
  last_updated: string | null;
  last_rid: string | null;
  resources: number;
  finished_at: string | null;
}

async function typesWithResources(db: Database): Promise<string[]> {
  // One index probe per known type instead of a DISTINCT over the whole table.
  const result = await db.query<{ resource_type: string }>(
    sql`SELECT t AS resource_type FROM unnest(${[...getResourceTypeList()]}::text[]) AS t
        WHERE EXISTS (SELECT 1 FROM resource WHERE resource_type = t AND NOT deleted)`
  );
  return result.rows.map((r) => r.resource_type);
}

export async function reindex(db: Database, options: ReindexOptions): Promise<ReindexResult> {
  loadDefinitions();
  loadProfileSearchParameters(options.profilesDir);
  const storedParameters = await loadStoredSearchParameters(db.pool);
  for (const type of options.types ?? []) {
    if (!isKnownResourceType(type)) throw new Error(`Unknown resource type "${type}"`);
  }
  const types = options.types ?? (await typesWithResources(db));
  const batchSize = options.batchSize ?? 500;
  const indexer = new SearchIndexer(options.baseUrl);
  if (options.restart) {
    await db.query(sql`DELETE FROM search_reindex_progress`);
  }
  const reindexed: ReindexResult['reindexed'] = [];
  for (const resourceType of types) {
    await db.query(sql`INSERT INTO search_reindex_progress (resource_type) VALUES (${resourceType}) ON CONFLICT DO NOTHING`);
    for (;;) {
      const step = await db.transaction(async (client) => {
        const progress = (
          await runQuery<Progress>(client, sql`SELECT * FROM search_reindex_progress WHERE resource_type = ${resourceType} FOR UPDATE`)
        ).rows[0];
        if (progress.finished_at) return { progress, done: true };
        const after =
          progress.last_rid === null
            ? sql`TRUE`
            : sql`(last_updated, rid) > (${progress.last_updated}::timestamptz, ${progress.last_rid}::uuid)`;
        const page = await runQuery<{ rid: string; content: never; last_updated: string }>(
          client,
          sql`SELECT rid, content, last_updated FROM resource
              WHERE resource_type = ${resourceType} AND NOT deleted AND ${after}
              ORDER BY last_updated, rid LIMIT ${batchSize} FOR SHARE`
        );
        if (page.rows.length) {
          await indexer.index(
            client,
            page.rows.map((row) => ({ rid: row.rid, resourceType, resource: row.content, isNew: false }))
          );
        }
        const last = page.rows[page.rows.length - 1];
        const done = page.rows.length < batchSize;
        const updated = await runQuery<Progress>(
          client,
          sql`UPDATE search_reindex_progress
              SET last_updated = ${last?.last_updated ?? progress.last_updated}, last_rid = ${last?.rid ?? progress.last_rid},
                  resources = resources + ${page.rows.length}, finished_at = ${done ? sql`now()` : sql`NULL`}
              WHERE resource_type = ${resourceType} RETURNING *`
        );
        return { progress: updated.rows[0], done };
      });
      options.onProgress?.({ resourceType, resources: Number(step.progress.resources), done: step.done });
      if (step.done) {
        reindexed.push({ resourceType, resources: Number(step.progress.resources) });
        break;
      }
    }
  }
  // Every requested type is done: the run is over, and the next one starts afresh.
  await db.query(sql`DELETE FROM search_reindex_progress WHERE resource_type = ANY(${types}::text[])`);
  if (!options.types) {
    await recordIndexState(db.pool);
  }
  return { reindexed, storedParameters };
}
