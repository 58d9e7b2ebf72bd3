/**
 * The profile pack, served: at start-up every conformance resource under PROFILES_DIR is
 * stored as an ordinary resource with the id its file gives it, so `GET
 * /StructureDefinition?url=...`, `GET /ValueSet/[id]` and `GET /CodeSystem?url=` work as
 * for anything else, and the CapabilityStatement lists the pack's profiles.
 *
 * The pack is authoritative for its own resources: a start-up restores them as the files say
 * (a client's change to one is overwritten, in a new version), and content that did not
 * change writes nothing. Several processes starting together take turns under a
 * transaction-scoped advisory lock; the later ones find nothing to write.
 */
import type { CapabilityStatement, Meta, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { isKnownResourceType } from '../fhir/definitions';
import { readProfileFolder, type PackResource } from '../fhir/profile-folder';
import { ID_PATTERN } from '../fhir/params';
import { systemContext } from '../fhir/system-context';
import { logger } from '../logger';
import type { Services } from '../services';
import { ridOf } from '../store/rid';
import { sql } from '../store/sql';
import { jsonEquals } from './json';

/** The conformance resources of a pack that are stored and served. */
export const PACK_TYPES: ReadonlySet<string> = new Set([
  'StructureDefinition',
  'CodeSystem',
  'ValueSet',
  'ConceptMap',
  'NamingSystem',
  'SearchParameter',
  'ImplementationGuide',
  'OperationDefinition',
  'CompartmentDefinition',
]);

/** Arbitrary constant naming the pack-loading lock (migrations use 7_340_021). */
const PACK_LOCK_KEY = 7_340_400;

/** The content without what the server assigns (meta.versionId, meta.lastUpdated). */
function comparable(resource: Resource): Resource {
  const { meta, ...rest } = resource as Resource & { meta?: Meta };
  if (!meta) return rest as Resource;
  const { versionId: _v, lastUpdated: _l, ...kept } = meta;
  return (Object.keys(kept).length ? { ...rest, meta: kept } : rest) as Resource;
}

/** The id a pack resource is stored under: its own, or the last segment of its canonical URL. */
function packId(resource: Resource): string | undefined {
  if (resource.id) return ID_PATTERN.test(resource.id) ? resource.id : undefined;
  const last = (resource as { url?: string }).url?.split(/[/#]/).pop();
  return last && ID_PATTERN.test(last) ? last : undefined;
}

export interface PackResult {
  written: string[];
  unchanged: number;
}

/** The pack's conformance resources, read from the folder (once per start-up). */
export function readPack(profilesDir: string): PackResource[] {
  return readProfileFolder(profilesDir, (type) => PACK_TYPES.has(type));
}

/** Stores the pack's conformance resources; returns what it wrote. */
export async function storePack(services: Services, pack: PackResource[]): Promise<PackResult> {
  const found = new Map<string, Resource>();
  for (const { resource, file } of pack) {
    const id = packId(resource);
    if (!id) {
      logger.warn('profile pack resource without a usable id or canonical URL: not stored', { file, resourceType: resource.resourceType });
      continue;
    }
    const key = `${resource.resourceType}/${id}`;
    if (found.has(key)) {
      logger.warn('two profile pack resources share an id: the first is stored', { file, reference: key });
      continue;
    }
    found.set(key, { ...resource, id } as Resource);
  }
  const result: PackResult = { written: [], unchanged: 0 };
  if (!found.size) return result;
  const { repo } = services;
  await repo.inTransaction(systemContext(services), async (ctx, tx) => {
    await tx.query(sql`SELECT pg_advisory_xact_lock(${PACK_LOCK_KEY})`);
    const rids = [...found.values()].map((r) => ridOf(r.resourceType, r.id as string));
    const stored = await tx.query<{ resource_type: string; id: string; content: Resource | null }>(
      sql`SELECT resource_type, id, content FROM resource WHERE rid = ANY(${rids}::uuid[])`
    );
    const current = new Map(stored.rows.map((row) => [`${row.resource_type}/${row.id}`, row.content]));
    for (const [key, resource] of found) {
      const existing = current.get(key);
      if (existing && jsonEquals(comparable(existing), comparable(resource))) {
        result.unchanged++;
        continue;
      }
      // Not an internal record: pack content is validated and gets its signed Provenance like any write.
      await repo.update(ctx, resource.resourceType, resource.id as string, resource);
      result.written.push(key);
    }
  });
  return result;
}

/** The pack's profiles of resource types (not extensions or data type profiles), by type. */
export function packProfilesByType(pack: Iterable<StructureDefinition>): Map<string, string[]> {
  const byType = new Map<string, string[]>();
  for (const sd of pack) {
    if (sd.derivation !== 'constraint' || sd.kind !== 'resource' || !sd.url || !sd.type || !isKnownResourceType(sd.type)) continue;
    byType.set(sd.type, [...(byType.get(sd.type) ?? []), sd.url]);
  }
  return byType;
}

/**
 * CapabilityStatement.rest.resource: supportedProfile lists the pack's profiles of the type,
 * profile names the one every resource of the type must conform to (the first required).
 */
export function profileContributor(supported: Map<string, string[]>, required: ReadonlyMap<string, string[]>) {
  return (statement: CapabilityStatement): void => {
    for (const resource of statement.rest?.[0]?.resource ?? []) {
      const type = resource.type as string;
      const profiles = [...new Set([...(required.get(type) ?? []), ...(supported.get(type) ?? [])])];
      if (profiles.length) resource.supportedProfile = profiles;
      const first = required.get(type)?.[0];
      if (first) resource.profile = first;
    }
  };
}
