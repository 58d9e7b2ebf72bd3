/**
 * patch: JSON Patch (application/json-patch+json) or FHIRPath Patch (a Parameters body),
 * applied to the current version under its row lock and stored through update, so the
 * result is validated and versioned like any update.
 */
import type { Parameters, Resource } from '@medplum/fhirtypes';
import jsonpatch, { type Operation as JsonPatchOperation } from 'fast-json-patch';
import type { FhirRequest, FhirResponse, RequestContext } from '../context';
import { applyFhirPathPatch } from '../fhirpath-patch';
import { errors, FhirError, issue } from '../outcome';
import { criteriaParams, parseIfMatch } from './write';
import { writeResponse } from './respond';

function applyJsonPatch(resource: Resource, body: unknown): Resource {
  if (!Array.isArray(body)) {
    throw errors.badRequest('A JSON Patch body must be an array of operations');
  }
  try {
    const problem = jsonpatch.validate(body as JsonPatchOperation[], resource);
    if (problem) {
      if (problem.name === 'TEST_OPERATION_FAILED') {
        throw errors.unprocessable([issue('error', 'processing', `JSON Patch test failed at ${problem.operation?.path}`)]);
      }
      throw errors.badRequest(`Invalid JSON Patch: ${problem.message.split('\n')[0]} (${problem.name})`);
    }
    return jsonpatch.applyPatch(structuredClone(resource), body as JsonPatchOperation[], false, false).newDocument;
  } catch (err) {
    if (err instanceof FhirError) throw err;
    // fast-json-patch throws plain errors for some patches it cannot apply: a move into the
    // moved value's own child, or a path through __proto__ (refused against prototype pollution).
    throw errors.badRequest(`Invalid JSON Patch: ${(err as Error).message.split('\n')[0]}`);
  }
}

export function applyPatch(resource: Resource, req: FhirRequest): Resource {
  if (req.contentType === 'application/json-patch+json') {
    return applyJsonPatch(resource, req.body);
  }
  const body = req.body as Parameters | undefined;
  if (body?.resourceType === 'Parameters') {
    return applyFhirPathPatch(resource, body);
  }
  if (Array.isArray(req.body)) {
    return applyJsonPatch(resource, req.body);
  }
  throw errors.unsupportedMediaType(
    'PATCH needs a JSON Patch (application/json-patch+json) or a FHIRPath Patch Parameters resource'
  );
}

export async function patch(
  ctx: RequestContext,
  req: FhirRequest,
  resourceType: string,
  id: string | undefined
): Promise<FhirResponse> {
  const { repo, search } = ctx.services;
  const ifMatch = parseIfMatch(req.ifMatch);
  return repo.inTransaction(ctx, async (txCtx) => {
    let targetId = id;
    if (targetId === undefined) {
      const criteria = criteriaParams(new URLSearchParams(req.params).toString());
      if (criteria.length === 0) {
        throw errors.badRequest('Conditional patch needs search criteria');
      }
      const matches = await search.match(txCtx, resourceType, criteria, 2);
      if (matches.length === 0) throw errors.notFound(`No ${resourceType} matches the criteria`);
      if (matches.length > 1) throw errors.multipleMatches(`More than one ${resourceType} matches the criteria`);
      targetId = matches[0].id as string;
    }
    const current = await repo.currentRow(txCtx, resourceType, targetId, { forUpdate: true });
    if (!current || !current.visible) throw errors.notFound(`Resource ${resourceType}/${targetId} is not known`);
    if (current.deleted) throw errors.gone(`Resource ${resourceType}/${targetId} was deleted`);
    if (ifMatch !== undefined && ifMatch !== current.versionId) {
      throw errors.preconditionFailed(`If-Match version ${ifMatch} does not match the current version ${current.versionId}`);
    }
    const patched = applyPatch(current.resource as Resource, req);
    if (patched.resourceType !== resourceType || patched.id !== targetId) {
      throw errors.badRequest('A patch may not change the resourceType or id');
    }
    const result = await repo.update(txCtx, resourceType, targetId, patched, {
      ifMatch: current.versionId,
      interaction: 'patch',
      request: req,
    });
    return writeResponse(txCtx, 200, result.resource, result.changed ? 'Patched' : 'No change', result.warnings);
  });
}
