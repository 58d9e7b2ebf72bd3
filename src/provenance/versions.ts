/**
 * Stored versions as signatures see them, read straight from resource_version (whatever the
 * caller may see: verification reveals whether a version is intact, never its content).
 */
import type { Resource } from '@medplum/fhirtypes';
import { toFhirInstant } from '../store/repository';
import type { Database } from '../store/database';
import { ridOf } from '../store/rid';
import { sql } from '../store/sql';
import type { SignedVersion } from './canonical';

export interface VersionRef {
  resourceType: string;
  id: string;
  versionId: string;
}

const VERSION_REFERENCE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})\/_history\/([1-9][0-9]{0,8})$/;

/** "Patient/1/_history/2" (relative, or absolute under baseUrl) as its parts; undefined when not version-specific. */
export function parseVersionReference(reference: string | undefined, baseUrl: string): VersionRef | undefined {
  let local = reference ?? '';
  if (local.startsWith(baseUrl + '/')) local = local.slice(baseUrl.length + 1);
  const match = VERSION_REFERENCE.exec(local);
  return match ? { resourceType: match[1], id: match[2], versionId: match[3] } : undefined;
}

export const refKey = (ref: VersionRef) => `${ref.resourceType}/${ref.id}/_history/${ref.versionId}`;

interface Row {
  resource_type: string;
  id: string;
  version_id: number;
  last_updated: string;
  method: string;
  content: Resource | null;
}

/** The stored versions named, keyed by "Type/id/_history/v"; missing ones are absent. */
export async function loadVersions(q: Pick<Database, 'query'>, refs: VersionRef[]): Promise<Map<string, SignedVersion>> {
  const found = new Map<string, SignedVersion>();
  if (refs.length === 0) return found;
  const result = await q.query<Row>(
    sql`SELECT h.resource_type, h.id, h.version_id, h.last_updated, h.method, h.content
        FROM unnest(${refs.map((r) => ridOf(r.resourceType, r.id))}::uuid[], ${refs.map((r) => Number(r.versionId))}::int[]) AS k(rid, version_id)
        JOIN resource_version h ON h.rid = k.rid AND h.version_id = k.version_id`
  );
  for (const row of result.rows) {
    const version: SignedVersion = {
      resourceType: row.resource_type,
      id: row.id,
      versionId: String(row.version_id),
      lastUpdated: toFhirInstant(row.last_updated),
      method: row.method,
      content: row.content ?? undefined,
    };
    found.set(refKey(version), version);
  }
  return found;
}
