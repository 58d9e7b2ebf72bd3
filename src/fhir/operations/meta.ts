/**
 * $meta, $meta-add and $meta-delete (Resource-meta*). The spec allows $meta-add/-delete to
 * change a version in place; this server writes a new version instead, because every change
 * to a record must stay traceable (history, Provenance) and a stored version is never altered.
 */
import type { Coding, Meta, Parameters, Resource } from '@medplum/fhirtypes';
import type { FhirResponse, RequestContext } from '../context';
import { errors } from '../outcome';
import { sql } from '../../store/sql';
import type { Operation, OperationRegistry, OperationTarget } from './registry';
import { inputValue } from './registry';

const sameCoding = (a: Coding, b: Coding) => a.system === b.system && a.code === b.code;

function metaParameters(meta: Meta): FhirResponse {
  const result: Parameters = { resourceType: 'Parameters', parameter: [{ name: 'return', valueMeta: meta }] };
  return { status: 200, resource: result };
}

function inputMeta(input: Parameters): Meta {
  const meta = inputValue(input, 'meta') as Meta | undefined;
  if (!meta || typeof meta !== 'object' || Array.isArray(meta)) {
    throw errors.badRequest('The operation needs a "meta" parameter of type Meta', 'meta');
  }
  // Merged with the stored meta before the result is validated: the lists must be lists first.
  const isCoding = (c: unknown) => c !== null && typeof c === 'object' && !Array.isArray(c);
  for (const [key, isItem] of [['tag', isCoding], ['security', isCoding], ['profile', (p: unknown) => typeof p === 'string']] as const) {
    const list: unknown = meta[key];
    if (list !== undefined && !(Array.isArray(list) && list.every(isItem))) {
      throw errors.badRequest(`meta.${key} must be an array of ${key === 'profile' ? 'canonical URLs' : 'Codings'}`, `meta.${key}`);
    }
  }
  return meta;
}

function union(existing: Coding[] = [], added: Coding[] = []): Coding[] | undefined {
  const result = [...existing];
  for (const coding of added) {
    if (!result.some((c) => sameCoding(c, coding))) result.push(coding);
  }
  return result.length ? result : undefined;
}

function without(existing: Coding[] = [], removed: Coding[] = []): Coding[] | undefined {
  const result = existing.filter((c) => !removed.some((r) => sameCoding(c, r)));
  return result.length ? result : undefined;
}

function mergeMeta(current: Meta, change: Meta, mode: 'add' | 'delete'): Meta {
  const profiles =
    mode === 'add'
      ? [...new Set([...(current.profile ?? []), ...(change.profile ?? [])])]
      : (current.profile ?? []).filter((p) => !(change.profile ?? []).includes(p));
  const next: Meta = { ...current };
  delete next.profile;
  delete next.tag;
  delete next.security;
  const combine = mode === 'add' ? union : without;
  const tag = combine(current.tag, change.tag);
  const security = combine(current.security, change.security);
  if (profiles.length) next.profile = profiles;
  if (tag) next.tag = tag;
  if (security) next.security = security;
  return next;
}

async function changeMeta(ctx: RequestContext, target: OperationTarget, change: Meta, mode: 'add' | 'delete') {
  const { resourceType, id } = target as Required<OperationTarget>;
  return ctx.services.repo.inTransaction(ctx, async (txCtx) => {
    const current = await ctx.services.repo.currentRow(txCtx, resourceType, id, { forUpdate: true });
    if (!current || !current.visible) throw errors.notFound(`Resource ${resourceType}/${id} is not known`);
    if (current.deleted) throw errors.gone(`Resource ${resourceType}/${id} was deleted`);
    const resource = current.resource as Resource;
    const updated = { ...resource, meta: mergeMeta(resource.meta ?? {}, change, mode) };
    const result = await ctx.services.repo.update(txCtx, resourceType, id, updated, { ifMatch: current.versionId });
    return metaParameters(result.resource.meta ?? {});
  });
}

/** Every tag, profile and security label in use, for a type or the whole server. */
async function metaInUse(ctx: RequestContext, resourceType?: string): Promise<FhirResponse> {
  const filter = ctx.access.readFilter(resourceType);
  const result = await ctx.services.db.query<{ kind: string; value: Coding | string }>(
    sql`SELECT DISTINCT kind, value FROM resource r,
          LATERAL (SELECT 'tag' AS kind, t AS value FROM jsonb_array_elements(r.content->'meta'->'tag') t
                   UNION ALL SELECT 'security', s FROM jsonb_array_elements(r.content->'meta'->'security') s
                   UNION ALL SELECT 'profile', p FROM jsonb_array_elements(r.content->'meta'->'profile') p) m
        WHERE NOT r.deleted
          ${resourceType ? sql`AND r.resource_type = ${resourceType}` : sql``}
          ${filter ? sql`AND (${filter})` : sql``}`
  );
  const meta: Meta = {};
  for (const row of result.rows) {
    if (row.kind === 'profile') (meta.profile ??= []).push(row.value as string);
    else if (row.kind === 'tag') meta.tag = union(meta.tag, [row.value as Coding]);
    else meta.security = union(meta.security, [row.value as Coding]);
  }
  return metaParameters(meta);
}

const DEFINITION = 'http://hl7.org/fhir/OperationDefinition/Resource-meta';

export function registerMetaOperations(registry: OperationRegistry): void {
  const meta: Operation = {
    name: 'meta',
    definition: DEFINITION,
    system: true,
    type: true,
    instance: true,
    affectsState: false,
    async handler(ctx, _req, target) {
      if (target.id) {
        const stored = await ctx.services.repo.read(ctx, target.resourceType as string, target.id);
        return metaParameters(stored.resource?.meta ?? {});
      }
      return metaInUse(ctx, target.resourceType);
    },
  };
  registry.register(meta);
  registry.register({
    name: 'meta-add',
    definition: DEFINITION + '-add',
    instance: true,
    affectsState: true,
    handler: (ctx, _req, target, input) => changeMeta(ctx, target, inputMeta(input), 'add'),
  });
  registry.register({
    name: 'meta-delete',
    definition: DEFINITION + '-delete',
    instance: true,
    affectsState: true,
    handler: (ctx, _req, target, input) => changeMeta(ctx, target, inputMeta(input), 'delete'),
  });
}
