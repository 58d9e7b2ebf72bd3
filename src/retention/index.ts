/**
 * The retention module: a delete before a record's retention date is refused with an
 * OperationOutcome saying until when; otherwise delete stays a soft delete that keeps
 * history. $expunge (permanent removal of every version) is refused before retention ends,
 * and only those the access policy allows may call it (admins).
 *
 * Retention is computed when it matters (delete, expunge) from the current Encounters, so it
 * always reflects their latest class and period and costs nothing on the write path.
 */
import type { Encounter, Resource } from '@medplum/fhirtypes';
import type { RequestContext } from '../fhir/context';
import { CANONICAL_BASE } from '../fhir/canonical';
import { errors, informational } from '../fhir/outcome';
import { ownOperationDefinition } from '../fhir/operations/registry';
import { ridOf } from '../store/rid';
import { sql } from '../store/sql';
import type { ServerModule, Services } from '../services';
import { encounterRetention, longest, referencedEncounters, type Retention } from './rules';

async function loadEncounters(ctx: RequestContext, where: ReturnType<typeof sql>): Promise<Encounter[]> {
  const query = sql`SELECT content FROM resource r WHERE r.resource_type = 'Encounter' AND NOT r.deleted AND ${where}`;
  const result = await (ctx.tx ?? ctx.services.db).query<{ content: Encounter }>(query);
  return result.rows.map((row) => row.content);
}

/** The retention that applies to a resource, if any. */
export async function retentionOf(ctx: RequestContext, resource: Resource): Promise<Retention | undefined> {
  let encounters: Encounter[];
  if (resource.resourceType === 'Encounter') {
    encounters = [resource as Encounter];
  } else if (resource.resourceType === 'Patient') {
    encounters = await loadEncounters(ctx, sql`r.compartments @> ARRAY[${resource.id}]::text[]`);
  } else {
    const ids = referencedEncounters(resource, ctx.baseUrl);
    encounters = ids.length ? await loadEncounters(ctx, sql`r.rid = ANY(${ids.map((id) => ridOf('Encounter', id))}::uuid[])`) : [];
  }
  return longest(encounters.map(encounterRetention));
}

function refuse(resource: Resource, retention: Retention, what: string): never {
  const until = retention.until ? `until ${retention.until.toISOString().slice(0, 10)}` : 'until its retention period can be determined';
  throw errors.businessRule(
    `${resource.resourceType}/${resource.id} cannot be ${what}: the record must be kept ${until} (${retention.reason})`
  );
}

export async function assertRetentionEnded(ctx: RequestContext, resource: Resource, what: string): Promise<void> {
  const retention = await retentionOf(ctx, resource);
  if (retention && (!retention.until || retention.until > new Date())) {
    refuse(resource, retention, what);
  }
}

/** Removes every version and every index row of a resource, permanently. */
async function expunge(ctx: RequestContext, resourceType: string, id: string) {
  const { repo, indexer } = ctx.services;
  return repo.inTransaction(ctx, async (txCtx, tx) => {
    const current = await repo.currentRow(txCtx, resourceType, id, { forUpdate: true });
    if (!current || !current.visible) {
      throw errors.notFound(`Resource ${resourceType}/${id} is not known`);
    }
    // The newest content is what retention is judged on; for a deleted resource, history has it.
    const content =
      current.resource ??
      (
        await tx.query<{ content: Resource }>(
          sql`SELECT content FROM resource_history WHERE rid = ${current.rid} AND content IS NOT NULL ORDER BY version_id DESC LIMIT 1`
        )
      ).rows[0]?.content;
    if (content) {
      await assertRetentionEnded(txCtx, content, 'expunged');
    }
    await indexer.index(tx.client, [{ rid: current.rid, resourceType, resource: undefined, isNew: false }]);
    const replaced = await tx.query(sql`DELETE FROM resource_history WHERE rid = ${current.rid}`);
    await tx.query(sql`DELETE FROM resource WHERE rid = ${current.rid}`);
    // History holds the replaced versions; the current one was the resource row.
    return (replaced.rowCount ?? 0) + 1;
  });
}

export const retentionModule: ServerModule = {
  name: 'retention',
  install(services: Services) {
    services.writeHooks.push({
      async beforeWrite(ctx, _tx, event) {
        if (event.interaction === 'delete' && event.previous) {
          await assertRetentionEnded(ctx, event.previous, 'deleted');
        }
      },
    });
    services.operations.register({
      name: 'expunge',
      definition: `${CANONICAL_BASE}/OperationDefinition/expunge`,
      operationDefinition: ownOperationDefinition(
        CANONICAL_BASE,
        {
          name: 'expunge',
          title: 'Expunge a resource',
          description:
            'Removes every version of the resource permanently, only after its legal retention period has ended, and only for callers the access policy allows (the admin scope). AuditEvent and Provenance resources cannot be expunged.',
          affectsState: true,
          levels: ['instance'],
        },
        [['return', 'out', 1, '1', 'OperationOutcome', 'How many versions were removed']]
      ),
      instance: true,
      affectsState: true,
      async handler(ctx, _req, target) {
        if (ctx.services.immutableTypes.has(target.resourceType as string)) {
          // The audit and provenance trails are never removed (a removed Provenance breaks its chain).
          throw errors.methodNotAllowed(`${target.resourceType} resources cannot be expunged`, ['GET']);
        }
        const versions = await expunge(ctx, target.resourceType as string, target.id as string);
        const outcome = informational(`Expunged ${target.resourceType}/${target.id}: ${versions} version(s) permanently removed`);
        return { status: 200, resource: outcome };
      },
    });
  },
};
