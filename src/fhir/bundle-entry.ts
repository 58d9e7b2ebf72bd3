/**
 * The entries of a batch or transaction Bundle as requests, and their results as response
 * entries: the parts of Bundle handling that do not depend on how the entries are run.
 */
import type { Bundle, BundleEntry, BundleEntryResponse, OperationOutcome } from '@medplum/fhirtypes';
import type { FhirRequest, FhirResponse, HttpMethod, RequestContext } from './context';
import { STATUS_CODES } from 'node:http';
import { errors } from './outcome';

export const ORDER: Record<string, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };

export function bundleBody(req: FhirRequest): Bundle {
  const bundle = req.body as Bundle | undefined;
  if (!bundle || typeof bundle !== 'object' || bundle.resourceType !== 'Bundle') {
    throw errors.badRequest('POST to the base URL needs a Bundle of type batch or transaction');
  }
  if (bundle.type !== 'batch' && bundle.type !== 'transaction') {
    throw errors.badRequest(`Bundle.type must be batch or transaction, got ${bundle.type ?? 'none'}`, 'Bundle.type');
  }
  if (bundle.entry !== undefined && !Array.isArray(bundle.entry)) {
    throw errors.structure('Bundle.entry must be an array of entries', 'Bundle.entry');
  }
  assertUniqueFullUrls(bundle);
  return bundle;
}

/**
 * bdl-7: "FullUrl must be unique in a bundle, or else entries with the same fullUrl must
 * have different meta.versionId". In a transaction, fullUrls are what references between
 * entries resolve to, so there they must be unique outright (two entries claiming one
 * urn:uuid would make every reference to it ambiguous).
 */
function assertUniqueFullUrls(bundle: Bundle): void {
  const seen = new Map<string, number>();
  for (const [index, entry] of (bundle.entry ?? []).entries()) {
    const fullUrl = isObject(entry) ? entry.fullUrl : undefined;
    if (typeof fullUrl !== 'string') continue;
    const version = bundle.type === 'transaction' ? '' : (entry.resource?.meta?.versionId ?? '');
    const key = `${fullUrl} ${version}`;
    const first = seen.get(key);
    if (first !== undefined) {
      throw errors.badRequest(
        `Bundle.entry[${first}] and Bundle.entry[${index}] have the same fullUrl ${fullUrl}: fullUrls must be unique in a Bundle (bdl-7)`,
        `Bundle.entry[${index}].fullUrl`
      );
    }
    seen.set(key, index);
  }
}

const isObject = (value: unknown): boolean => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The JSON types of what an entry's processing reads (the body is parsed JSON, not checked
 * against the Bundle's definition), so that a malformed entry is a 400 naming it rather
 * than a TypeError and a 500.
 */
function assertEntryShape(entry: unknown, index: number): asserts entry is BundleEntry {
  const where = `Bundle.entry[${index}]`;
  if (!isObject(entry)) {
    throw errors.structure(`${where} must be an object`, where);
  }
  const { request, resource, fullUrl } = entry as Record<string, unknown>;
  if (request !== undefined && !isObject(request)) {
    throw errors.structure(`${where}.request must be an object`, `${where}.request`);
  }
  for (const name of ['method', 'url', 'ifMatch', 'ifNoneMatch', 'ifNoneExist', 'ifModifiedSince']) {
    const value = (request as Record<string, unknown> | undefined)?.[name];
    if (value !== undefined && typeof value !== 'string') {
      throw errors.structure(`${where}.request.${name} must be a string`, `${where}.request.${name}`);
    }
  }
  if (resource !== undefined && !isObject(resource)) {
    throw errors.structure(`${where}.resource must be a resource (a JSON object)`, `${where}.resource`);
  }
  if (fullUrl !== undefined && typeof fullUrl !== 'string') {
    throw errors.structure(`${where}.fullUrl must be a string`, `${where}.fullUrl`);
  }
}

/** The entry as a FhirRequest; the URL may be relative or start with our base URL. */
export function entryRequest(ctx: RequestContext, entry: BundleEntry, index: number): FhirRequest {
  assertEntryShape(entry, index);
  const request = entry.request;
  const where = `Bundle.entry[${index}].request`;
  if (!request?.method || !request.url) {
    throw errors.badRequest(`${where} needs a method and a url`, where);
  }
  const method = request.method.toUpperCase() as HttpMethod;
  if (!(method in ORDER)) {
    throw errors.badRequest(`${where}.method ${request.method} is not supported`, `${where}.method`);
  }
  let url = request.url;
  if (url.startsWith(ctx.baseUrl + '/')) {
    url = url.slice(ctx.baseUrl.length + 1);
  } else if (/^[a-z]+:/i.test(url)) {
    throw errors.badRequest(`${where}.url must be relative to this server: ${url}`, `${where}.url`);
  }
  url = url.replace(/^\//, '');
  const q = url.indexOf('?');
  // Without trailing slashes, as in HTTP ("Patient/" is Patient), so that a POST to it is
  // recognised as a create when identities are settled.
  const path = (q >= 0 ? url.slice(0, q) : url).replace(/\/+$/, '');
  const params = q >= 0 ? [...new URLSearchParams(url.slice(q + 1)).entries()] : [];
  let body: unknown = entry.resource;
  let contentType: string | undefined;
  if (method === 'PATCH' && entry.resource?.resourceType === 'Binary') {
    // JSON Patch travels in a Binary, base64-encoded.
    const binary = entry.resource as { contentType?: string; data?: string };
    try {
      body = JSON.parse(Buffer.from(binary.data ?? '', 'base64').toString('utf8'));
    } catch {
      throw errors.badRequest(`Bundle.entry[${index}].resource: the Binary does not hold a JSON Patch`);
    }
    contentType = 'application/json-patch+json';
  }
  return {
    method,
    path,
    params,
    body,
    contentType,
    ifMatch: request.ifMatch,
    ifNoneMatch: request.ifNoneMatch,
    ifNoneExist: request.ifNoneExist,
    ifModifiedSince: request.ifModifiedSince,
    url: `${ctx.baseUrl}/${url}`,
    entry: index,
  };
}

export function entryResponse(response: FhirResponse, method: string, prefer: RequestContext['prefer']): BundleEntry {
  const result: BundleEntryResponse = {
    status: `${response.status} ${STATUS_CODES[response.status] ?? ''}`.trim(),
  };
  if (response.location) result.location = response.location;
  if (response.versionId) result.etag = `W/"${response.versionId}"`;
  if (response.lastModified) result.lastModified = response.lastModified;
  const isOutcome = response.resource?.resourceType === 'OperationOutcome';
  if (response.status >= 400 || (isOutcome && response.resource)) {
    result.outcome = response.resource as OperationOutcome;
    return { response: result };
  }
  if (response.outcome && prefer.return === 'OperationOutcome') {
    result.outcome = response.outcome;
  }
  // Prefer: return chooses the body of writes, which always answer with a Location; what
  // anything else answers (a read, a search or an operation, also by POST) is its result and
  // always included. A HEAD answers what a GET would, without the body.
  const includeResource = method !== 'HEAD' && (prefer.return === 'representation' || !response.location);
  return { ...(includeResource && response.resource && { resource: response.resource }), response: result };
}
