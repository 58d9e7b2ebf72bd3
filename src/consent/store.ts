/**
 * Keeps consent_index and consent_provision in step with the stored Consents: rewritten in
 * the transaction of every Consent write (so a change counts exactly when it commits), and
 * completed at start-up for Consents stored before this module existed.
 */
import type { Consent } from '@medplum/fhirtypes';
import { logger } from '../logger';
import type { Services } from '../services';
import { ridOf } from '../store/rid';
import { sql } from '../store/sql';
import { WriteTx } from '../store/write-tx';
import { flattenConsent } from './flatten';

/** Replaces the rules of one Consent by those of its new version (none for a deletion). */
export async function indexConsent(tx: WriteTx, id: string, versionId: string, consent: Consent | undefined, baseUrl: string): Promise<void> {
  const rid = ridOf('Consent', id);
  await tx.query(sql`DELETE FROM consent_index WHERE rid = ${rid}`);
  if (!consent) return;
  await tx.query(sql`INSERT INTO consent_index (rid, version_id) VALUES (${rid}, ${Number(versionId)})`);
  const flat = flattenConsent(consent, baseUrl);
  if (!flat?.provisions.length) return;
  await tx.query(
    sql`INSERT INTO consent_provision (consent_rid, patient, path, variant, permit, actors, purposes, classes, data, labels,
                                       conf_min, conf_max, period)
        SELECT ${rid}, ${flat.patient}, x."path", x.variant, x.permit, x.actors, x.purposes, x.classes, x.data, x.labels,
               x."confMin", x."confMax", tstzrange(x."periodStart", x."periodEnd", '[)')
        FROM jsonb_to_recordset(${JSON.stringify(flat.provisions)}::jsonb) AS x(
          "path" integer[], variant integer, permit boolean, actors text[], purposes text[], classes text[], data text[],
          labels text[], "confMin" smallint, "confMax" smallint, "periodStart" timestamptz, "periodEnd" timestamptz)`
  );
}

const BATCH = 500;

/**
 * Flattens every stored Consent whose current version is not indexed yet, and forgets deleted
 * ones. Rows a concurrent write holds are skipped: that write indexes them itself.
 */
export async function syncConsentIndex(services: Services): Promise<number> {
  let total = 0;
  for (;;) {
    const done = await services.db.transaction(async (client) => {
      const tx = new WriteTx(client, services.indexer);
      await tx.query(sql`DELETE FROM consent_index c USING resource r WHERE r.rid = c.rid AND r.deleted`);
      const stale = await tx.query<{ id: string; version_id: number; content: Consent }>(
        sql`SELECT r.id, r.version_id, r.content FROM resource r LEFT JOIN consent_index c ON c.rid = r.rid
            WHERE r.resource_type = 'Consent' AND NOT r.deleted AND (c.rid IS NULL OR c.version_id <> r.version_id)
            LIMIT ${BATCH} FOR UPDATE OF r SKIP LOCKED`
      );
      for (const row of stale.rows) {
        await indexConsent(tx, row.id, String(row.version_id), row.content, services.config.baseUrl);
      }
      return stale.rows.length;
    });
    total += done;
    if (done < BATCH) break;
  }
  if (total) logger.info('consent index completed', { consents: total });
  return total;
}
