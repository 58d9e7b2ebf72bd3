/**
 * read and vread, with _summary/_elements and the conditional-read headers
 * (If-None-Match, If-Modified-Since) that let clients revalidate cached copies.
 */
import type { FhirRequest, FhirResponse, RequestContext } from '../context';
import { paramValue } from '../params';
import { parseElements, parseSummary, subsetResource } from '../summary';
import { resourceResponse } from './respond';
import type { StoredVersion } from '../../store/repository';

/**
 * Whether If-None-Match matches the version: "*" or a list of entity tags, compared weakly
 * (RFC 9110 13.1.2), so W/"3" and "3" both name version 3.
 */
function noneMatch(header: string, versionId: string): boolean {
  if (header.trim() === '*') {
    return true;
  }
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === `"${versionId}"`);
}

function respond(req: FhirRequest, version: StoredVersion): FhirResponse {
  const resource = version.resource!;
  const notModified: FhirResponse = { status: 304, versionId: version.versionId, lastModified: version.lastUpdated };
  if (req.ifNoneMatch !== undefined) {
    // With If-None-Match, If-Modified-Since is ignored (RFC 9110 13.1.3): the entity tag is
    // exact, the date only has second precision.
    if (noneMatch(req.ifNoneMatch, version.versionId)) {
      return notModified;
    }
  } else if (req.ifModifiedSince) {
    const since = Date.parse(req.ifModifiedSince);
    // Last-Modified has second precision; compare at that precision.
    if (!Number.isNaN(since) && Math.floor(Date.parse(version.lastUpdated) / 1000) <= Math.floor(since / 1000)) {
      return notModified;
    }
  }
  const summary = parseSummary(paramValue(req, '_summary'));
  const elements = parseElements(paramValue(req, '_elements'));
  return resourceResponse(200, subsetResource(resource, summary, elements));
}

export async function read(ctx: RequestContext, req: FhirRequest, resourceType: string, id: string) {
  return respond(req, await ctx.services.repo.read(ctx, resourceType, id));
}

export async function vread(ctx: RequestContext, req: FhirRequest, resourceType: string, id: string, vid: string) {
  return respond(req, await ctx.services.repo.vread(ctx, resourceType, id, vid));
}
