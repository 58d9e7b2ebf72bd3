/**
 * How a write answers: status, Location, ETag and Last-Modified, and a body chosen by
 * Prefer: return=minimal | representation | OperationOutcome.
 */
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
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

/**
 * The answer to a write. Under Prefer: return=OperationOutcome the body says what was done and,
 * as HAPI does, lists the warnings validation found in what was stored (a write is refused only
 * for errors).
 */
export function writeResponse(ctx: RequestContext, status: number, resource: Resource, message: string, warnings: OperationOutcomeIssue[] = []): FhirResponse {
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
    case 'OperationOutcome': {
      const outcome = informational(message);
      outcome.issue = [...(outcome.issue ?? []), ...warnings];
      return { ...response, resource: outcome };
    }
    default:
      return { ...response, resource };
  }
}
