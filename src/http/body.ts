/**
 * Reads request bodies as raw bytes (with the configured size limit) and parses them by
 * Content-Type, so every malformed or unsupported body gets a precise OperationOutcome.
 */
import type { Request } from 'express';
import { errors } from '../fhir/outcome';
import { fhirVersionOf, isServedFhirVersion } from './negotiation';

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

export const FORM_TYPE = 'application/x-www-form-urlencoded';

/**
 * The body by its Content-Type. `formOnly` is for POST [type]/_search and POST /_search, whose
 * parameters travel as a form (FHIR R4 http.html 3.1.0.8, search.html 3.1.1.2: "Content-Type:
 * application/x-www-form-urlencoded"): any other body would be ignored, and the search answer
 * unfiltered matches, so it is 415. An empty body is fine.
 */
export function parseBody(req: Request, formOnly = false): ParsedBody {
  const raw = req.body as Buffer | undefined;
  const contentType = mediaTypeOf(req.headers['content-type']);
  if (!Buffer.isBuffer(raw) || raw.length === 0) {
    return { contentType };
  }
  const header = String(req.headers['content-type'] ?? '');
  if (!isServedFhirVersion(header)) {
    // A body of another FHIR version would be read, and stored, as R4.
    throw errors.unsupportedMediaType(`The body is fhirVersion=${fhirVersionOf(header)}; this server accepts FHIR R4 only (fhirVersion=4.0 or 4.0.1)`);
  }
  if (contentType === FORM_TYPE) {
    return { contentType, form: [...new URLSearchParams(raw.toString('utf8')).entries()] };
  }
  if (formOnly) {
    throw errors.unsupportedMediaType(
      `POST _search takes its parameters as ${FORM_TYPE}, not ${contentType ?? 'a body without Content-Type'}; send them as a form or in the URL`
    );
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
