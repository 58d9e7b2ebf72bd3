/**
 * Reads request bodies as raw bytes (with the configured size limit) and parses them by
 * Content-Type, so every malformed or unsupported body gets a precise OperationOutcome.
 */
import type { Request } from 'express';
import { errors } from '../fhir/outcome';

const JSON_TYPES = new Set([
  'application/fhir+json',
  'application/json',
  'application/json-patch+json',
  'application/json+fhir',
  'text/json',
]);

export interface ParsedBody {
  body?: unknown;
  contentType?: string;
  /** Form fields of an application/x-www-form-urlencoded body (POST _search, operations). */
  form?: [string, string][];
}

export function mediaTypeOf(header: string | undefined): string | undefined {
  return header?.split(';')[0].trim().toLowerCase() || undefined;
}

export function parseBody(req: Request): ParsedBody {
  const raw = req.body as Buffer | undefined;
  const contentType = mediaTypeOf(req.headers['content-type']);
  if (!Buffer.isBuffer(raw) || raw.length === 0) {
    return { contentType };
  }
  if (contentType === 'application/x-www-form-urlencoded') {
    return { contentType, form: [...new URLSearchParams(raw.toString('utf8')).entries()] };
  }
  if (contentType && (JSON_TYPES.has(contentType) || contentType.endsWith('+json'))) {
    const text = raw.toString('utf8');
    try {
      return { contentType, body: JSON.parse(text) };
    } catch (err) {
      throw errors.structure(`The body is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (!contentType) {
    throw errors.unsupportedMediaType('A request body needs a Content-Type, such as application/fhir+json');
  }
  if (contentType.includes('xml')) {
    throw errors.unsupportedMediaType('XML is not supported by this server; send application/fhir+json');
  }
  throw errors.unsupportedMediaType(`Unsupported Content-Type "${contentType}"; send application/fhir+json`);
}
