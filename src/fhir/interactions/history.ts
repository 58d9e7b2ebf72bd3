/**
 * history at instance, type and system level: a Bundle of type history, newest first,
 * each entry with the request that made the version and the response it got.
 */
import type { Bundle, BundleEntry, BundleLink } from '@medplum/fhirtypes';
import type { FhirRequest, FhirResponse, RequestContext } from '../context';
import { errors } from '../outcome';
import { intParam, paramValue, parseInstantRange } from '../params';
import { decodeCursor, encodeCursor, readHistory, type HistoryCursor, type HistoryVersion } from '../../store/history';

function entryOf(ctx: RequestContext, version: HistoryVersion): BundleEntry {
  const path = `${version.resourceType}/${version.id}`;
  const method = (version.method ?? 'PUT') as 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  // The status the write answered (bundle.html, entry.response.status): 201 for a version that
  // created the resource, also a PUT that re-created it after a deletion.
  const status = method === 'DELETE' ? '204 No Content' : method === 'POST' || version.created ? '201 Created' : '200 OK';
  return {
    fullUrl: `${ctx.baseUrl}/${path}`,
    ...(version.resource && { resource: version.resource }),
    request: { method, url: method === 'POST' ? version.resourceType : path },
    response: { status, etag: `W/"${version.versionId}"`, lastModified: version.lastUpdated },
  };
}

/**
 * The parameters history understands (http.html, history: _count, _since, _at; _cursor is the
 * server's paging token). Others are ignored, and under Prefer: handling=strict refused, as
 * for search (search.html 3.1.1.4): ignoring Patient/_history?_id=x silently would answer
 * with every Patient's versions to a client that believes it filtered them.
 */
const HISTORY_PARAMS = new Set(['_count', '_since', '_at', '_cursor', '_format', '_pretty']);

function pageUrl(ctx: RequestContext, req: FhirRequest, cursor?: HistoryCursor): string {
  const params = new URLSearchParams(req.params.filter(([k]) => k !== '_cursor'));
  if (cursor) {
    params.set('_cursor', encodeCursor(cursor));
  }
  const query = params.toString();
  return `${ctx.baseUrl}/${req.path}${query ? '?' + query : ''}`;
}

export async function history(
  ctx: RequestContext,
  req: FhirRequest,
  resourceType?: string,
  id?: string
): Promise<FhirResponse> {
  const unsupported = [...new Set(req.params.map(([name]) => name).filter((name) => !HISTORY_PARAMS.has(name)))];
  if (unsupported.length > 0 && ctx.prefer.handling === 'strict') {
    throw errors.badRequest(
      `history does not support ${unsupported.join(', ')} (only _count, _since and _at); Prefer: handling=strict refuses what it would ignore`,
      unsupported
    );
  }
  const count = Math.min(intParam(req, '_count') ?? ctx.config.defaultPageSize, ctx.config.maxPageSize);
  const sinceText = paramValue(req, '_since');
  const atText = paramValue(req, '_at');
  const cursorText = paramValue(req, '_cursor');
  const cursor = cursorText ? decodeCursor(cursorText) : undefined;
  if (id !== undefined) {
    // 404 for an unknown resource, rather than an empty history.
    const row = await ctx.services.repo.currentRow(ctx, resourceType as string, id);
    if (!row || !row.visible) {
      throw errors.notFound(`Resource ${resourceType}/${id} is not known`);
    }
  }
  const page = await readHistory(ctx, {
    resourceType,
    id,
    since: sinceText ? parseInstantRange(sinceText, '_since').start : undefined,
    at: atText ? parseInstantRange(atText, '_at') : undefined,
    count,
    cursor,
  });

  const links: BundleLink[] = [{ relation: 'self', url: req.url }];
  const { versions } = page;
  if (cursor) {
    links.push({ relation: 'first', url: pageUrl(ctx, req) });
  }
  const first = versions[0];
  const last = versions[versions.length - 1];
  const olderExist = cursor?.direction === 'prev' ? true : page.hasMore;
  const newerExist = cursor?.direction === 'prev' ? page.hasMore : cursor !== undefined;
  if (last && olderExist) {
    links.push({
      relation: 'next',
      url: pageUrl(ctx, req, { lastUpdated: last.lastUpdated, rid: last.rid, versionId: Number(last.versionId), direction: 'next' }),
    });
  }
  if (first && newerExist) {
    links.push({
      relation: 'previous',
      url: pageUrl(ctx, req, { lastUpdated: first.lastUpdated, rid: first.rid, versionId: Number(first.versionId), direction: 'prev' }),
    });
  }
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'history',
    link: links,
    // FHIR JSON has no empty arrays (json.html): no versions, no entry element.
    ...(versions.length > 0 && { entry: versions.map((v) => entryOf(ctx, v)) }),
  };
  if (id !== undefined && !cursor && !page.hasMore && !sinceText && !atText) {
    bundle.total = versions.length;
  }
  return { status: 200, resource: bundle };
}
