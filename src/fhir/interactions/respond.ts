/**
 * How a write answers: status, Location, ETag and Last-Modified, and a body chosen by
 * Prefer: return=minimal | representation | OperationOutcome.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { FhirResponse, RequestContext } from '../context';
import { informational } from '../outcome';

export function versionLocation(ctx: RequestContext, resource: Resource): string {
  return `${ctx.baseUrl}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`;
}

export function resourceResponse(status: number, resource: Resource): FhirResponse {
  return {
    status,
    resource,
    versionId: resource.meta?.versionId,
    lastModified: resource.meta?.lastUpdated,
    audited: { resource },
  };
}

export function writeResponse(ctx: RequestContext, status: number, resource: Resource, message: string): FhirResponse {
  const response: FhirResponse = {
    status,
    location: versionLocation(ctx, resource),
    versionId: resource.meta?.versionId,
    lastModified: resource.meta?.lastUpdated,
    audited: { resource },
  };
  switch (ctx.prefer.return) {
    case 'minimal':
      return response;
    case 'OperationOutcome':
      return { ...response, resource: informational(message) };
    default:
      return { ...response, resource };
  }
}
