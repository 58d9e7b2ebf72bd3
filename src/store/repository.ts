/**
 * The versioned resource store. Every write is one transaction that writes the current row
 * (moving the version it replaces into resource_history), rewrites the resource's search
 * index rows and runs the write hooks (Provenance, retention), so none of them can exist
 * without the others. Every version is read through the view resource_version.
 *
 * The repository enforces what must hold for every write whatever its origin (validation,
 * access, versioning); interactions decide HTTP semantics around it.
 */
import { deepEquals } from '@medplum/core';
import type { Meta, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { patientCompartments } from '../fhir/compartments';
import type { FhirRequest, Interaction, RequestContext, RowAccessInfo } from '../fhir/context';
import { errors } from '../fhir/outcome';
import type { Services, WriteEvent } from '../services';
import { RetryableConflict } from './database';
import { mintId, ridOf } from './rid';
import { sql, type Sql } from './sql';
import { RESOURCE_COLUMNS, runWriteTransaction, type WriteTx, type ResourceRow } from './write-tx';

export interface StoredVersion {
  rid: string;
  resourceType: string;
  id: string;
  versionId: string;
  lastUpdated: string;
  deleted: boolean;
  /** The content; undefined for a deleted version. */
  resource?: Resource;
  compartments: string[];
  custodian?: string;
  /** For history rows: the interaction that made this version (POST, PUT, PATCH, DELETE). */
  method?: string;
}

export interface WriteResult {
  resource: Resource;
  /** True when a new resource was created (201), false for an update (200). */
  created: boolean;
  /** False when an update had nothing to change and no version was written. */
  changed: boolean;
  /** What validation found that does not block the write (warnings), for Prefer: return=OperationOutcome. */
  warnings?: OperationOutcomeIssue[];
}

export interface WriteOptions {
  /** If-Match version id: the write fails with 412 unless the current version is this one. */
  ifMatch?: string;
  /** The interaction recorded in history and hooks. */
  interaction?: 'update' | 'patch';
  /** The originating request, passed to write hooks. */
  request?: FhirRequest;
  /**
   * A record the server writes on its own authority (AuditEvent, Provenance): not validated,
   * not access-checked, and flagged to write hooks so they do not chain records of records.
   */
  internal?: boolean;
  /** For create: an id the server generated earlier (transaction Bundles); never a client's id. */
  id?: string;
  /**
   * For internal records: the patient compartments the row belongs to, instead of those its
   * content names (a Provenance belongs to the compartments of the version it records).
   */
  compartments?: string[];
}

/** A row of `resource` or of the view resource_version, which has no `deleted` (a deletion is its method). */
type VersionRow = Omit<ResourceRow, 'deleted'> & { deleted?: boolean };

export function toFhirInstant(value: string | Date): string {
  return new Date(value).toISOString();
}

export function toStoredVersion(row: VersionRow): StoredVersion {
  return {
    rid: row.rid,
    resourceType: row.resource_type,
    id: row.id,
    versionId: String(row.version_id),
    lastUpdated: toFhirInstant(row.last_updated),
    deleted: row.deleted ?? row.method === 'DELETE',
    resource: row.content ? orderResourceKeys(row.content) : undefined,
    compartments: row.compartments,
    custodian: row.custodian ?? undefined,
    method: row.method,
  };
}

/** resourceType, id and meta first, as FHIR JSON is conventionally written (jsonb reorders keys). */
export function orderResourceKeys<T extends Resource>(resource: T): T {
  const { resourceType, id, meta, ...rest } = resource as Resource & Record<string, unknown>;
  return { resourceType, ...(id !== undefined && { id }), ...(meta !== undefined && { meta }), ...rest } as T;
}

/** The content without the server-assigned parts of meta, for no-op detection. */
function withoutServerMeta(resource: Resource): Resource {
  const meta: Meta | undefined = resource.meta ? { ...resource.meta } : undefined;
  if (meta) {
    delete meta.versionId;
    delete meta.lastUpdated;
  }
  const copy = { ...resource } as Resource;
  if (meta && Object.keys(meta).length) {
    copy.meta = meta;
  } else {
    delete copy.meta;
  }
  return copy;
}

function accessInfo(row: StoredVersion): RowAccessInfo {
  return { resourceType: row.resourceType, id: row.id, compartments: row.compartments, custodian: row.custodian };
}


export class Repository {
  constructor(private readonly services: Services) {}

  /** Runs fn in the context's transaction, or in a new one that is flushed and committed. */
  async inTransaction<T>(ctx: RequestContext, fn: (txCtx: RequestContext, tx: WriteTx) => Promise<T>): Promise<T> {
    if (ctx.tx) {
      return fn(ctx, ctx.tx);
    }
    return runWriteTransaction(this.services.db, this.services.indexer, (tx) => fn({ ...ctx, tx }, tx));
  }

  private async query<R extends VersionRow>(ctx: RequestContext, q: Sql) {
    return ctx.tx ? ctx.tx.query<R>(q) : this.services.db.query<R>(q);
  }

  private visibility(ctx: RequestContext, resourceType: string): Sql {
    const filter = ctx.access.readFilter(resourceType);
    return filter ? sql`(${filter})` : sql`TRUE`;
  }

  /** The current row, whatever its state, or undefined; `visible` says whether the caller may see it. */
  async currentRow(
    ctx: RequestContext,
    resourceType: string,
    id: string,
    options: { forUpdate?: boolean } = {}
  ): Promise<(StoredVersion & { visible: boolean }) | undefined> {
    const lock = options.forUpdate ? sql` FOR UPDATE` : sql``;
    const result = await this.query<VersionRow & { visible: boolean }>(
      ctx,
      sql`SELECT ${RESOURCE_COLUMNS}, ${this.visibility(ctx, resourceType)} AS visible
          FROM resource r WHERE rid = ${ridOf(resourceType, id)}${lock}`.prepared('current_row')
    );
    const row = result.rows[0];
    return row ? { ...toStoredVersion(row), visible: row.visible } : undefined;
  }

  /** read: the current version, 404 when unknown or not visible, 410 when deleted. */
  async read(ctx: RequestContext, resourceType: string, id: string): Promise<StoredVersion> {
    const row = await this.currentRow(ctx, resourceType, id);
    if (!row || !row.visible) {
      throw errors.notFound(`Resource ${resourceType}/${id} is not known`);
    }
    if (row.deleted) {
      throw errors.gone(`Resource ${resourceType}/${id} was deleted (version ${row.versionId})`);
    }
    return row;
  }

  /** vread: a specific version, 404 when it does not exist, 410 when that version is a deletion. */
  async vread(ctx: RequestContext, resourceType: string, id: string, versionId: string): Promise<StoredVersion> {
    if (!/^[1-9][0-9]{0,8}$/.test(versionId)) {
      throw errors.notFound(`Version ${versionId} of ${resourceType}/${id} is not known`);
    }
    const result = await this.query<VersionRow>(
      ctx,
      sql`SELECT rid, resource_type, id, version_id, last_updated, method, content, compartments, custodian
          FROM resource_version r
          WHERE rid = ${ridOf(resourceType, id)} AND version_id = ${Number(versionId)}
            AND ${this.visibility(ctx, resourceType)}`.prepared('vread')
    );
    const row = result.rows[0];
    if (!row) {
      throw errors.notFound(`Version ${versionId} of ${resourceType}/${id} is not known`);
    }
    const version = toStoredVersion(row);
    if (version.deleted) {
      throw errors.gone(`Version ${versionId} of ${resourceType}/${id} is its deletion`);
    }
    return version;
  }

  /** create with a server-assigned id. */
  async create(ctx: RequestContext, input: Resource, options: WriteOptions = {}): Promise<WriteResult> {
    const id = options.id ?? mintId(input.resourceType);
    const resource = this.prepare(input, id, '1', new Date().toISOString());
    const warnings = await this.check(ctx, 'create', resource, undefined, { validate: !options.internal, access: !options.internal });
    return this.inTransaction(ctx, async (txCtx, tx) => {
      const row = this.toRow(txCtx, resource, 'POST', undefined, options.internal ? options.compartments : undefined);
      const event = this.event('create', 'POST', resource, undefined, options, row.compartments);
      await this.runHooks('beforeWrite', txCtx, tx, event);
      // A freshly minted id cannot collide, so the insert can wait for the next flush.
      tx.queueCreate(row);
      tx.queueIndex({ rid: row.rid, resourceType: resource.resourceType, resource, isNew: true });
      await this.runHooks('afterWrite', txCtx, tx, event);
      return { resource, created: true, changed: true, warnings };
    });
  }

  /** update (or create with a client-chosen id); the body's id must already match. */
  async update(
    ctx: RequestContext,
    resourceType: string,
    id: string,
    input: Resource,
    options: WriteOptions = {}
  ): Promise<WriteResult> {
    const interaction = options.interaction ?? 'update';
    const draft = this.prepare(input, id, '0', new Date().toISOString());
    // Access needs the stored row, so it is checked inside the transaction.
    const warnings = await this.check(ctx, interaction, draft, undefined, { validate: !options.internal, access: false });
    return this.inTransaction(ctx, async (txCtx, tx) => {
      const current = await this.currentRow(txCtx, resourceType, id, { forUpdate: true });
      if (current && !current.visible) {
        // The caller may not see the existing resource, so it may not replace it either; checked
        // before If-Match, whose 412 would tell them its current version.
        throw errors.forbidden(`Not permitted to ${interaction} ${resourceType}/${id}`);
      }
      if (options.ifMatch !== undefined && (!current || current.deleted || current.versionId !== options.ifMatch)) {
        throw errors.preconditionFailed(
          `If-Match version ${options.ifMatch} does not match the current version ${current && !current.deleted ? current.versionId : '(none)'} of ${resourceType}/${id}`
        );
      }
      if (!options.internal) {
        txCtx.access.assertWrite(interaction, draft, current && !current.deleted ? accessInfo(current) : undefined);
      }
      if (current?.resource && !current.deleted && deepEquals(withoutServerMeta(current.resource), withoutServerMeta(draft))) {
        return { resource: current.resource, created: false, changed: false, warnings };
      }
      const versionId = String(Number(current?.versionId ?? 0) + 1);
      const resource = this.prepare(input, id, versionId, new Date().toISOString());
      // An update keeps the custodian; re-creating a deleted resource makes the writer's organization its custodian.
      const method = interaction === 'patch' ? 'PATCH' : 'PUT';
      const row = this.toRow(txCtx, resource, method, current && !current.deleted ? current.custodian : undefined, options.internal ? options.compartments : undefined);
      const created = !current || current.deleted;
      const event = this.event(created ? 'create' : interaction, method, resource, current?.resource, options, row.compartments);
      await this.runHooks('beforeWrite', txCtx, tx, event);
      if (!current) {
        const inserted = await tx.send(
          sql`INSERT INTO resource (${RESOURCE_COLUMNS})
              VALUES (${row.rid}, ${row.resource_type}, ${row.id}, ${row.version_id}, ${row.last_updated}, false,
                      ${row.content}, ${row.compartments}, ${row.custodian}, ${row.method})
              ON CONFLICT (rid) DO NOTHING RETURNING rid`
        );
        if (inserted.rowCount === 0) {
          // Another request created it a moment ago: retrying the transaction makes this an update.
          throw new RetryableConflict(`${resourceType}/${id} was created concurrently`);
        }
      } else {
        tx.queueReplace(row);
      }
      tx.queueIndex({ rid: row.rid, resourceType, resource, isNew: !current });
      await this.runHooks('afterWrite', txCtx, tx, event);
      return { resource, created, changed: true, warnings };
    });
  }

  /** delete: a soft delete that keeps every version. Returns the deletion's version id, if one was written. */
  async delete(
    ctx: RequestContext,
    resourceType: string,
    id: string,
    options: WriteOptions = {}
  ): Promise<{ versionId?: string; compartments?: string[] }> {
    return this.inTransaction(ctx, async (txCtx, tx) => {
      const current = await this.currentRow(txCtx, resourceType, id, { forUpdate: true });
      if (current && !current.visible) {
        // Before If-Match: what the caller may not see answers as unknown, whatever the header.
        throw errors.notFound(`Resource ${resourceType}/${id} is not known`);
      }
      if (options.ifMatch !== undefined && (!current || current.deleted || current.versionId !== options.ifMatch)) {
        throw errors.preconditionFailed(`If-Match version ${options.ifMatch} does not match ${resourceType}/${id}`);
      }
      if (!current || current.deleted) {
        return {};
      }
      if (!options.internal) {
        txCtx.access.assertWrite('delete', undefined, accessInfo(current));
      }
      const versionId = String(Number(current.versionId) + 1);
      const lastUpdated = new Date().toISOString();
      const event: WriteEvent = {
        interaction: 'delete',
        method: 'DELETE',
        resourceType,
        id,
        versionId,
        lastUpdated,
        previous: current.resource,
        compartments: current.compartments,
        request: options.request,
        internal: options.internal,
      };
      await this.runHooks('beforeWrite', txCtx, tx, event);
      const row: ResourceRow = {
        rid: current.rid,
        resource_type: resourceType,
        id,
        version_id: Number(versionId),
        last_updated: lastUpdated,
        deleted: true,
        content: null,
        compartments: current.compartments,
        custodian: current.custodian ?? null,
        method: 'DELETE',
      };
      tx.queueReplace(row);
      tx.queueIndex({ rid: row.rid, resourceType, resource: undefined, isNew: false });
      await this.runHooks('afterWrite', txCtx, tx, event);
      return { versionId, compartments: current.compartments };
    });
  }

  /** Validation and access checks that need no database; returns the issues that do not block the write. */
  private async check(
    ctx: RequestContext,
    interaction: Interaction,
    resource: Resource,
    stored: RowAccessInfo | undefined,
    options: { validate: boolean; access: boolean }
  ): Promise<OperationOutcomeIssue[]> {
    let warnings: OperationOutcomeIssue[] = [];
    if (options.validate) {
      const issues = await this.services.validator.validate(resource, {
        mode: interaction === 'create' ? 'create' : 'update',
        scope: ctx.tx,
      });
      const failures = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
      if (failures.length) {
        throw errors.unprocessable(issues);
      }
      warnings = issues.filter((i) => i.severity === 'warning');
    }
    if (options.access) {
      ctx.access.assertWrite(interaction, resource, stored);
    }
    return warnings;
  }

  /** The content as stored: id and meta.versionId/lastUpdated assigned by the server. */
  private prepare(input: Resource, id: string, versionId: string, lastUpdated: string): Resource {
    const { meta, ...rest } = input as Resource;
    const cleanMeta: Meta = { ...(meta ?? {}), versionId, lastUpdated };
    return orderResourceKeys({ ...rest, id, meta: cleanMeta } as Resource);
  }

  private toRow(ctx: RequestContext, resource: Resource, method: string, keepCustodian?: string, compartments?: string[]): ResourceRow {
    return {
      rid: ridOf(resource.resourceType, resource.id as string),
      resource_type: resource.resourceType,
      id: resource.id as string,
      version_id: Number(resource.meta?.versionId),
      last_updated: resource.meta?.lastUpdated as string,
      deleted: false,
      content: resource,
      compartments: compartments ?? patientCompartments(resource, ctx.baseUrl),
      custodian: keepCustodian ?? ctx.principal.organization ?? null,
      method,
    };
  }

  private event(
    interaction: WriteEvent['interaction'],
    method: WriteEvent['method'],
    resource: Resource,
    previous: Resource | undefined,
    options: WriteOptions,
    compartments: string[]
  ): WriteEvent {
    return {
      interaction,
      method,
      resourceType: resource.resourceType,
      id: resource.id as string,
      versionId: resource.meta?.versionId as string,
      lastUpdated: resource.meta?.lastUpdated as string,
      resource,
      previous,
      compartments,
      request: options.request,
      internal: options.internal,
    };
  }

  private async runHooks(
    phase: 'beforeWrite' | 'afterWrite',
    ctx: RequestContext,
    tx: WriteTx,
    event: WriteEvent
  ): Promise<void> {
    for (const hook of this.services.writeHooks) {
      await hook[phase]?.(ctx, tx, event);
    }
  }
}
