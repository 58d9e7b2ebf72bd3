/**
 * Turns a FhirRequest (from HTTP or a Bundle entry) into an interaction, checks that the
 * caller may perform it at all, runs it, and records it for the audit trail. HTTP and
 * batch/transaction share this one path, so they behave identically.
 */
import type { FhirRequest, FhirResponse, Interaction, RequestContext } from './context';
import type { AuditRecord } from './context';
import { hasRestEndpoint, isKnownResourceType } from './definitions';
import { errors, FhirError, toFhirError } from './outcome';
import { operationInput, type OperationLevel } from './operations/registry';
import { assertParamsText, decodePathSegment, ID_PATTERN } from './params';
import { read, vread } from './interactions/read';
import { create, remove, update } from './interactions/write';
import { patch } from './interactions/patch';
import { history } from './interactions/history';
import { capabilities } from './capability';
import { processBundle } from './bundle';
import { logger } from '../logger';
import { isRetryable } from '../store/database';

export type RouteKind = Interaction | 'batch' | 'transaction' | 'capabilities';

export interface Route {
  interaction: RouteKind;
  resourceType?: string;
  id?: string;
  versionId?: string;
  operation?: { name: string; level: OperationLevel };
  compartment?: { resourceType: string; id: string };
}

const COMPARTMENT_TYPES = new Set(['Patient', 'Encounter', 'RelatedPerson', 'Practitioner', 'Device']);

function methodNotAllowed(req: FhirRequest, allowed: string[]): never {
  throw errors.methodNotAllowed(`${req.method} is not allowed on ${req.path ? '/' + req.path : 'the base URL'}`, allowed);
}

function checkType(type: string): void {
  if (!isKnownResourceType(type)) {
    throw errors.notFound(`Unknown resource type "${type}"`);
  }
}

/** Parameters has no RESTful interactions; only its type-level operations ($validate) answer. */
function checkRestEndpoint(type: string): void {
  if (!hasRestEndpoint(type)) {
    throw errors.notFound(`${type} has no RESTful endpoint: it only carries the input and output of operations`);
  }
}

function checkId(id: string): void {
  // "." and ".." match the FHIR id pattern but are path segments no client can address.
  if (!ID_PATTERN.test(id) || /^\.+$/.test(id)) {
    throw errors.badRequest(`Invalid resource id "${id}": ids are 1-64 letters, digits, "-" or "."`);
  }
}

export function resolveRoute(ctx: RequestContext, req: FhirRequest): Route {
  // Every request (HTTP, POST _search form bodies, Bundle entries) passes here first: text that
  // cannot be a FHIR value is a malformed request (400 invalid) before any interaction sees it.
  const segments = req.path.split('/').filter(Boolean).map(decodePathSegment);
  assertParamsText(req.params);
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  const [first, second, third, fourth] = segments;
  if (segments.length > 4) {
    throw errors.notFound(`No such endpoint: /${req.path}`);
  }

  const operation = (name: string, level: OperationLevel, resourceType?: string): Route => {
    const op = ctx.services.operations.find(name.slice(1), level, resourceType);
    if (!op) {
      throw errors.notFound(`Operation ${name} is not supported at ${level} level${resourceType ? ' on ' + resourceType : ''}`);
    }
    if (method !== 'POST' && (method !== 'GET' || op.affectsState)) {
      methodNotAllowed(req, op.affectsState ? ['POST'] : ['GET', 'POST']);
    }
    return { interaction: 'operation', resourceType, operation: { name: op.name, level } };
  };

  if (segments.length === 0) {
    if (method === 'GET') return { interaction: 'search' };
    if (method === 'POST') {
      const type = (req.body as { type?: string } | undefined)?.type;
      return { interaction: type === 'transaction' ? 'transaction' : 'batch' };
    }
    methodNotAllowed(req, ['GET', 'POST']);
  }
  if (first === 'metadata') {
    if (segments.length !== 1) throw errors.notFound(`No such endpoint: /${req.path}`);
    if (method !== 'GET') methodNotAllowed(req, ['GET']);
    return { interaction: 'capabilities' };
  }
  if (first === '_history') {
    if (segments.length !== 1) throw errors.notFound(`No such endpoint: /${req.path}`);
    if (method !== 'GET') methodNotAllowed(req, ['GET']);
    return { interaction: 'history' };
  }
  if (first === '_search') {
    if (segments.length !== 1) throw errors.notFound(`No such endpoint: /${req.path}`);
    if (method !== 'POST' && method !== 'GET') methodNotAllowed(req, ['GET', 'POST']);
    return { interaction: 'search' };
  }
  if (first.startsWith('$')) {
    if (segments.length !== 1) throw errors.notFound(`No such endpoint: /${req.path}`);
    return operation(first, 'system');
  }

  const resourceType = first;
  checkType(resourceType);
  if (segments.length !== 2 || !second.startsWith('$')) checkRestEndpoint(resourceType);
  if (segments.length === 1) {
    switch (method) {
      case 'GET':
        return { interaction: 'search', resourceType };
      case 'POST':
        return { interaction: 'create', resourceType };
      case 'PUT':
        return { interaction: 'update', resourceType };
      case 'PATCH':
        return { interaction: 'patch', resourceType };
      case 'DELETE':
        return { interaction: 'delete', resourceType };
    }
  }
  if (second === '_history') {
    if (segments.length !== 2) throw errors.notFound(`No such endpoint: /${req.path}`);
    if (method !== 'GET') methodNotAllowed(req, ['GET']);
    return { interaction: 'history', resourceType };
  }
  if (second === '_search') {
    if (segments.length !== 2) throw errors.notFound(`No such endpoint: /${req.path}`);
    if (method !== 'POST' && method !== 'GET') methodNotAllowed(req, ['GET', 'POST']);
    return { interaction: 'search', resourceType };
  }
  if (second.startsWith('$')) {
    if (segments.length !== 2) throw errors.notFound(`No such endpoint: /${req.path}`);
    return operation(second, 'type', resourceType);
  }

  const id = second;
  checkId(id);
  if (segments.length === 2) {
    switch (method) {
      case 'GET':
        return { interaction: 'read', resourceType, id };
      case 'PUT':
        return { interaction: 'update', resourceType, id };
      case 'PATCH':
        return { interaction: 'patch', resourceType, id };
      case 'DELETE':
        return { interaction: 'delete', resourceType, id };
      default:
        methodNotAllowed(req, ['GET', 'PUT', 'PATCH', 'DELETE']);
    }
  }
  if (third === '_history') {
    if (method !== 'GET') methodNotAllowed(req, ['GET']);
    if (fourth === undefined) return { interaction: 'history', resourceType, id };
    return { interaction: 'vread', resourceType, id, versionId: fourth };
  }
  if (third.startsWith('$')) {
    if (segments.length !== 3) throw errors.notFound(`No such endpoint: /${req.path}`);
    return { ...operation(third, 'instance', resourceType), id };
  }
  if (segments.length === 3 && COMPARTMENT_TYPES.has(resourceType)) {
    if (method !== 'GET') methodNotAllowed(req, ['GET']);
    if (third !== '*') {
      checkType(third);
      checkRestEndpoint(third);
    }
    return {
      interaction: 'search',
      resourceType: third === '*' ? undefined : third,
      compartment: { resourceType, id },
    };
  }
  throw errors.notFound(`No such endpoint: /${req.path}`);
}

const CHANGES = new Set<RouteKind>(['update', 'patch', 'delete']);

async function dispatch(ctx: RequestContext, req: FhirRequest, route: Route): Promise<FhirResponse> {
  const { resourceType, id } = route;
  if (resourceType && CHANGES.has(route.interaction) && ctx.services.immutableTypes.has(resourceType)) {
    throw errors.methodNotAllowed(`${resourceType} resources cannot be changed or deleted`, ['GET', 'POST']);
  }
  // Nor by an operation on one of them that changes state ($meta-add, $meta-delete, $expunge):
  // that would be an update by another name. No method can call it there (an empty Allow).
  const op = route.operation && ctx.services.operations.find(route.operation.name, route.operation.level, resourceType);
  if (id && op?.affectsState && ctx.services.immutableTypes.has(resourceType!)) {
    throw errors.methodNotAllowed(`${resourceType} resources cannot be changed or deleted, so $${op.name} is not available on them`, []);
  }
  switch (route.interaction) {
    case 'capabilities':
      return capabilities(ctx, req);
    case 'read':
      return read(ctx, req, resourceType!, id!);
    case 'vread':
      return vread(ctx, req, resourceType!, id!, route.versionId!);
    case 'create':
      return create(ctx, req, resourceType!);
    case 'update':
      return update(ctx, req, resourceType!, id);
    case 'patch':
      return patch(ctx, req, resourceType!, id);
    case 'delete':
      return remove(ctx, req, resourceType!, id);
    case 'history':
      return history(ctx, req, resourceType, id);
    case 'search': {
      const bundle = await ctx.services.search.search(ctx, {
        resourceType,
        params: req.params,
        compartment: route.compartment,
        url: req.url,
      });
      return { status: 200, resource: bundle };
    }
    case 'batch':
    case 'transaction':
      return processBundle(ctx, req);
    case 'operation':
      return op!.handler(ctx, req, { resourceType, id }, operationInput(req));
  }
}

/**
 * Runs one request: route, coarse access check, interaction, audit record. Never throws, but
 * for a retryable database error inside a transaction Bundle (see below).
 */
export async function executeRequest(ctx: RequestContext, req: FhirRequest): Promise<FhirResponse> {
  let route: Route | undefined;
  let response: FhirResponse;
  try {
    route = resolveRoute(ctx, req);
    if (route.interaction !== 'capabilities' && route.interaction !== 'batch' && route.interaction !== 'transaction') {
      const type = route.compartment ? route.compartment.resourceType : route.resourceType;
      ctx.access.assertInteraction(route.interaction, route.resourceType ?? type ?? '*', route.operation?.name);
    }
    response = await dispatch(ctx, req, route);
  } catch (err) {
    // Inside a transaction Bundle, a deadlock or serialization failure belongs to the whole
    // database transaction, which runWriteTransaction retries; as an entry's 500 it would
    // fail the Bundle instead (concurrent transactions updating resources in other orders).
    if (ctx.tx && isRetryable(err)) throw err;
    const error = toFhirError(err);
    if (error.status >= 500) {
      logger.error('request failed', {
        requestId: ctx.requestId,
        error: err instanceof Error ? err.message : String(err),
        stack: err instanceof Error && !(err instanceof FhirError) ? err.stack : undefined,
      });
    }
    response = { status: error.status, resource: error.outcome, headers: error.headers };
  }
  ctx.audit.push(auditRecord(req, route, response));
  return response;
}

/** The audit trail's record of a request; exported for batch entries refused before they ran. */
export function auditRecord(req: FhirRequest, route: Route | undefined, response: FhirResponse): AuditRecord {
  const outcomeText =
    response.status >= 400 && response.resource?.resourceType === 'OperationOutcome'
      ? response.resource.issue?.map((i) => i.diagnostics).join('; ')
      : undefined;
  return {
    interaction: route?.interaction ?? (req.method === 'GET' ? 'read' : 'operation'),
    operation: route?.operation?.name,
    resourceType: route?.resourceType ?? route?.compartment?.resourceType,
    id: route?.id ?? idFromLocation(response.location),
    versionId: response.versionId,
    query: route?.interaction === 'search' ? new URLSearchParams(req.params).toString() : undefined,
    status: response.status,
    outcomeText,
    method: req.method,
    url: req.url,
    compartment: route?.compartment,
    response: response.resource,
    audited: response.audited,
  };
}

function idFromLocation(location: string | undefined): string | undefined {
  return location ? /\/([^/]+)\/_history\/[^/]+$/.exec(location)?.[1] : undefined;
}
