/**
 * create, update and delete, plain and conditional (If-None-Exist, PUT/DELETE with search
 * criteria). Conditional forms hold a transaction-scoped advisory lock on their criteria, so
 * two identical conditional creates racing each other cannot both create.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { FhirRequest, FhirResponse, RequestContext } from '../context';
import { errors, informational } from '../outcome';
import { assertParamsText, ID_PATTERN } from '../params';
import { sql } from '../../store/sql';
import { writeResponse } from './respond';

/** Parameters that shape responses, never search criteria. */
const RESPONSE_PARAMS = new Set(['_format', '_pretty', '_summary', '_elements']);

/** The request body as a resource of the expected type, 400 otherwise. */
export function resourceBody(req: FhirRequest, resourceType: string): Resource {
  const body = req.body as Resource | undefined;
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw errors.badRequest(`The request body must be a ${resourceType} resource`);
  }
  if (body.resourceType !== resourceType) {
    throw errors.badRequest(
      `The resourceType of the body (${body.resourceType ?? 'missing'}) does not match the URL (${resourceType})`,
      'resourceType'
    );
  }
  return body;
}

/** The version id named by an If-Match header: W/"3" or "3". */
export function parseIfMatch(value: string | undefined): string | undefined {
  if (value === undefined) {
    return undefined;
  }
  const match = /^(?:W\/)?"([^"]+)"$/.exec(value.trim()) ?? /^([0-9]+)$/.exec(value.trim());
  if (!match) {
    throw errors.badRequest(`If-Match must be an ETag such as W/"3", got ${value}`);
  }
  return match[1];
}

export function criteriaParams(query: string): [string, string][] {
  const text = query.includes('?') ? query.slice(query.indexOf('?') + 1) : query;
  const params = [...new URLSearchParams(text).entries()];
  // Criteria from If-None-Exist or a conditional reference never passed the router's check.
  assertParamsText(params);
  return params.filter(([name]) => !RESPONSE_PARAMS.has(name));
}

export async function lockCriteria(ctx: RequestContext, resourceType: string, params: [string, string][]): Promise<void> {
  const key = resourceType + '?' + params.map(([k, v]) => `${k}=${v}`).sort().join('&');
  await ctx.tx!.query(sql`SELECT pg_advisory_xact_lock(hashtextextended(${key}, 0))`);
}

async function matchOne(
  ctx: RequestContext,
  resourceType: string,
  params: [string, string][],
  what: string
): Promise<Resource | undefined> {
  if (params.length === 0) {
    throw errors.badRequest(`${what} needs search criteria`);
  }
  await lockCriteria(ctx, resourceType, params);
  const matches = await ctx.services.search.match(ctx, resourceType, params, 2);
  if (matches.length > 1) {
    throw errors.multipleMatches(`${what}: more than one ${resourceType} matches the criteria`);
  }
  return matches[0];
}

export async function create(ctx: RequestContext, req: FhirRequest, resourceType: string): Promise<FhirResponse> {
  const resource = resourceBody(req, resourceType);
  const { repo } = ctx.services;
  if (req.ifNoneExist === undefined || req.assignedId) {
    // In a transaction, If-None-Exist was already settled when the id was assigned.
    const result = await repo.create(ctx, resource, { request: req, id: req.assignedId });
    return writeResponse(ctx, 201, result.resource, `Created ${resourceType}/${result.resource.id}`, result.warnings);
  }
  const criteria = criteriaParams(req.ifNoneExist);
  return repo.inTransaction(ctx, async (txCtx) => {
    const existing = await matchOne(txCtx, resourceType, criteria, 'Conditional create');
    if (existing) {
      return { ...writeResponse(txCtx, 200, existing, `${resourceType}/${existing.id} already matches`) };
    }
    const result = await repo.create(txCtx, resource, { request: req });
    return writeResponse(txCtx, 201, result.resource, `Created ${resourceType}/${result.resource.id}`, result.warnings);
  });
}

export async function update(
  ctx: RequestContext,
  req: FhirRequest,
  resourceType: string,
  id: string | undefined
): Promise<FhirResponse> {
  const resource = resourceBody(req, resourceType);
  const { repo } = ctx.services;
  const ifMatch = parseIfMatch(req.ifMatch);
  if (id !== undefined) {
    if (!resource.id) {
      throw errors.badRequest('The resource in the body must have an id for an update', 'id');
    }
    if (resource.id !== id) {
      throw errors.badRequest(`The id in the body (${resource.id}) does not match the URL (${id})`, 'id');
    }
    const result = await repo.update(ctx, resourceType, id, resource, { ifMatch, request: req });
    return writeResponse(ctx, result.created ? 201 : 200, result.resource, result.changed ? 'Updated' : 'No change', result.warnings);
  }
  const criteria = criteriaParams(new URLSearchParams(req.params).toString());
  return repo.inTransaction(ctx, async (txCtx) => {
    const existing = await matchOne(txCtx, resourceType, criteria, 'Conditional update');
    const targetId = await conditionalUpdateTarget(txCtx, resourceType, resource, existing);
    if (targetId === undefined) {
      if (ifMatch !== undefined) {
        // If-Match names a version of an existing resource; creating one would ignore it
        // (RFC 9110 13.1.1: false when there is no current representation). As for PUT [type]/[id].
        throw errors.preconditionFailed(`If-Match version ${ifMatch} given, but no ${resourceType} matches the criteria`);
      }
      const result = await repo.create(txCtx, resource, { request: req });
      return writeResponse(txCtx, 201, result.resource, 'Created', result.warnings);
    }
    const result = await repo.update(txCtx, resourceType, targetId, { ...resource, id: targetId }, { ifMatch, request: req });
    return writeResponse(txCtx, result.created ? 201 : 200, result.resource, 'Updated', result.warnings);
  });
}

/**
 * The id a conditional update writes, given the one resource its criteria matched, if any
 * (http.html, conditional update): the match's id; with no match the body's id (update as
 * create), or undefined when the server is to assign one. Shared with transactions.
 */
export async function conditionalUpdateTarget(
  ctx: RequestContext,
  resourceType: string,
  resource: Resource,
  existing: Resource | undefined
): Promise<string | undefined> {
  if (existing) {
    if (resource.id && resource.id !== existing.id) {
      throw errors.badRequest(`The id in the body (${resource.id}) is not the id of the matching resource`, 'id');
    }
    return existing.id as string;
  }
  if (!resource.id) {
    return undefined;
  }
  if (!ID_PATTERN.test(resource.id)) {
    throw errors.badRequest(`Invalid resource id "${resource.id}"`, 'id');
  }
  // No match, but the body names a live resource: it does not meet the criteria, and
  // overwriting it would update what the client's criteria excluded (R5 http.html states it:
  // "No matches, id provided and already exist: ... 409 Conflict"). A deleted one is
  // re-created, as by any update as create.
  const current = await ctx.services.repo.currentRow(ctx, resourceType, resource.id);
  if (current && current.visible && !current.deleted) {
    throw errors.conflict(`${resourceType}/${resource.id} exists but does not match the criteria of the conditional update`);
  }
  return resource.id;
}

export async function remove(
  ctx: RequestContext,
  req: FhirRequest,
  resourceType: string,
  id: string | undefined
): Promise<FhirResponse> {
  const { repo } = ctx.services;
  const ifMatch = parseIfMatch(req.ifMatch);
  let message: string;
  const patients = new Set<string>();
  if (id !== undefined) {
    const { versionId, compartments } = await repo.delete(ctx, resourceType, id, { ifMatch, request: req });
    compartments?.forEach((p) => patients.add(p));
    message = versionId ? `Deleted ${resourceType}/${id}` : `${resourceType}/${id} was already deleted or never existed`;
  } else {
    const criteria = criteriaParams(new URLSearchParams(req.params).toString());
    if (criteria.length === 0) {
      throw errors.badRequest('Conditional delete needs search criteria');
    }
    const limit = ctx.config.maxPageSize;
    const count = await repo.inTransaction(ctx, async (txCtx) => {
      await lockCriteria(txCtx, resourceType, criteria);
      const matches = await ctx.services.search.match(txCtx, resourceType, criteria, limit + 1);
      if (matches.length > limit) {
        throw errors.preconditionFailed(`Conditional delete matches more than ${limit} resources; narrow the criteria`);
      }
      for (const match of matches) {
        // If-Match holds for every match: a version other than the one named is 412, and nothing is deleted.
        const { compartments } = await repo.delete(txCtx, resourceType, match.id as string, { ifMatch, request: req });
        compartments?.forEach((p) => patients.add(p));
      }
      return matches.length;
    });
    message = `Deleted ${count} ${resourceType} resource(s) matching the criteria`;
  }
  const audited = { patients: [...patients] };
  if (ctx.prefer.return === 'OperationOutcome' || ctx.prefer.return === 'representation') {
    return { status: 200, resource: informational(message), audited };
  }
  return { status: 204, outcome: informational(message), audited };
}

