/**
 * Writes a FhirResponse to HTTP: status, FHIR headers (ETag, Last-Modified, Location),
 * the negotiated media type and _pretty.
 */
import type { Response } from 'express';
import type { FhirResponse } from '../fhir/context';
import { jsonBody } from '../fhir/json-body';
import type { ResponseMediaType } from './negotiation';

export interface RenderOptions {
  mediaType: ResponseMediaType;
  pretty: boolean;
  head: boolean;
}

export function renderResponse(res: Response, response: FhirResponse, options: RenderOptions): void {
  res.status(response.status);
  if (response.versionId) {
    res.setHeader('ETag', `W/"${response.versionId}"`);
  }
  if (response.lastModified) {
    res.setHeader('Last-Modified', new Date(response.lastModified).toUTCString());
  }
  if (response.location) {
    res.setHeader('Location', response.location);
    if (response.status === 201 || response.status === 200) {
      res.setHeader('Content-Location', response.location);
    }
  }
  for (const [name, value] of Object.entries(response.headers ?? {})) {
    res.setHeader(name, value);
  }
  if (response.resource === undefined || response.status === 204 || response.status === 304) {
    res.end();
    return;
  }
  const body = jsonBody(response.resource, options.pretty);
  res.setHeader('Content-Type', `${options.mediaType}; charset=utf-8`);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(options.head ? undefined : body);
}
