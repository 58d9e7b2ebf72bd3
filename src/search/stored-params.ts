/**
 * SearchParameter resources stored in the database: loaded at start-up, and reloaded in every
 * server process when one is created, changed or deleted. A write hook sends a PostgreSQL
 * NOTIFY inside the write's transaction, so it is delivered only if the write commits; each
 * process LISTENs on its own connection and reloads. Existing resources get values for a new
 * parameter only through `npm run reindex`.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { SearchParameter } from '@medplum/fhirtypes';
import { getResourceTypeList } from '../fhir/definitions';
import { logger } from '../logger';
import type { WriteHook } from '../services';
import type { Database, Queryable } from '../store/database';
import { runQuery } from '../store/database';
import { sql } from '../store/sql';
import { indexedParamsOf, setStoredSearchParameters, type StoredParameterReport } from './registry';

const CHANNEL = 'fhir_search_parameters';

export async function loadStoredSearchParameters(db: Queryable): Promise<StoredParameterReport> {
  const result = await runQuery<{ content: SearchParameter }>(
    db,
    sql`SELECT content FROM resource WHERE resource_type = 'SearchParameter' AND NOT deleted ORDER BY id`
  );
  return setStoredSearchParameters(result.rows.map((r) => r.content));
}

/** Announces a change of SearchParameter resources to every server process, on commit. */
export const searchParameterChangeHook: WriteHook = {
  async afterWrite(_ctx, tx, event) {
    if (event.resourceType === 'SearchParameter') {
      await tx.query(sql`SELECT pg_notify(${CHANNEL}, ${event.id})`);
    }
  },
};

/** A hash of every indexed parameter (type, code, kind, expression): changes when the index would. */
export function parameterFingerprint(): string {
  const hash = createHash('sha256');
  for (const type of getResourceTypeList()) {
    for (const p of indexedParamsOf(type)) {
      hash.update(`${type}.${p.code}:${p.kind}:${p.definition.expression}\n`);
    }
  }
  return hash.digest('hex');
}

/** Warns when the index was built with other parameters than this process has. */
export async function checkIndexState(db: Database): Promise<void> {
  const current = parameterFingerprint();
  const result = await db.query<{ fingerprint: string }>(
    sql`INSERT INTO search_index_state (fingerprint) VALUES (${current})
        ON CONFLICT (singleton) DO UPDATE SET singleton = true
        RETURNING fingerprint`
  );
  if (result.rows[0].fingerprint !== current) {
    logger.warn('search parameters changed since the search index was built: run `npm run reindex`');
  }
}

export async function recordIndexState(db: Queryable): Promise<void> {
  await runQuery(
    db,
    sql`INSERT INTO search_index_state (fingerprint) VALUES (${parameterFingerprint()})
        ON CONFLICT (singleton) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, updated_at = now()`
  );
}

function logReport(report: StoredParameterReport): void {
  for (const r of report.rejected) {
    logger.warn('stored SearchParameter not activated', { reference: r.reference, reason: r.reason });
  }
  logger.info('stored search parameters loaded', { active: report.active.length });
}

/**
 * Loads the stored parameters now and keeps them current: a dedicated connection LISTENs
 * for changes (reconnecting after a failure). Returns the function that stops listening.
 */
export async function watchStoredSearchParameters(
  db: Database,
  databaseUrl: string,
  onChange: () => void
): Promise<() => Promise<void>> {
  logReport(await loadStoredSearchParameters(db.pool));
  let client: pg.Client | undefined;
  let stopped = false;
  let reloading: Promise<void> = Promise.resolve();
  const reload = () => {
    // A notification can still arrive while stopping, after the pool has ended.
    if (stopped) return;
    // Serialized: a burst of changes reloads in order, each seeing at least its own change.
    reloading = reloading
      .then(async () => {
        if (stopped) return;
        logReport(await loadStoredSearchParameters(db.pool));
        onChange();
      })
      .catch((err) => logger.error('reloading stored search parameters failed', { error: (err as Error).message }));
  };
  const retry = () => {
    // Changes made while disconnected are picked up by the reload after reconnecting.
    if (!stopped) setTimeout(() => connect().then(reload, retry), 1000).unref();
  };
  const connect = async (): Promise<void> => {
    if (stopped) return;
    const next = new pg.Client({ connectionString: databaseUrl, application_name: 'fhir-server-listen' });
    next.on('notification', reload);
    next.on('error', (err) => {
      logger.warn('search parameter listener lost its connection; reconnecting', { error: err.message });
      next.end().catch(() => undefined);
      retry();
    });
    await next.connect();
    await next.query(`LISTEN ${CHANNEL}`);
    client = next;
  };
  await connect();
  return async () => {
    stopped = true;
    await reloading;
    await client?.end().catch(() => undefined);
  };
}
