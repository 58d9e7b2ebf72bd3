/**
 * Content negotiation: which representation the client wants (_format or Accept), what it
 * sent (Content-Type), and its Prefer header.
 */
import type { Prefer } from '../fhir/context';
import { errors } from '../fhir/outcome';

export type ResponseMediaType = 'application/fhir+json' | 'application/json';

const JSON_FORMATS: Record<string, ResponseMediaType> = {
  json: 'application/fhir+json',
  'application/fhir+json': 'application/fhir+json',
  'application/json+fhir': 'application/fhir+json',
  'application/json': 'application/json',
  'text/json': 'application/json',
};

const XML_FORMATS = new Set(['xml', 'application/fhir+xml', 'application/xml+fhir', 'application/xml', 'text/xml']);

/** The media type of the response, from _format (which wins) or Accept; 406 for XML or anything else. */
export function responseMediaType(format: string | undefined, accept: string | undefined): ResponseMediaType {
  if (format !== undefined) {
    const type = format.split(';')[0].trim().toLowerCase();
    if (JSON_FORMATS[type]) {
      return JSON_FORMATS[type];
    }
    if (XML_FORMATS.has(type)) {
      throw errors.notAcceptable('XML is not supported by this server; use _format=json');
    }
    throw errors.notAcceptable(`Unsupported _format "${format}"; use json or application/fhir+json`);
  }
  if (!accept) {
    return 'application/fhir+json';
  }
  const ranges = accept
    .split(',')
    .map((part) => {
      const [type, ...params] = part.trim().split(';');
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return { type: type.trim().toLowerCase(), q: q ? Number(q.slice(2)) : 1 };
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q);
  for (const range of ranges) {
    if (JSON_FORMATS[range.type]) {
      return JSON_FORMATS[range.type];
    }
    if (range.type === '*/*' || range.type === 'application/*' || range.type === 'text/html' || range.type === 'text/*') {
      return 'application/fhir+json';
    }
  }
  if (ranges.some((r) => XML_FORMATS.has(r.type))) {
    throw errors.notAcceptable('XML is not supported by this server; ask for application/fhir+json');
  }
  throw errors.notAcceptable(`None of the media types in Accept (${accept}) is supported; use application/fhir+json`);
}

export function parsePrefer(header: string | undefined): Prefer {
  const prefer: Prefer = {};
  if (!header) {
    return prefer;
  }
  for (const part of header.split(/[,;]/)) {
    const [key, value] = part.split('=').map((s) => s?.trim().replace(/^"|"$/g, ''));
    if (key === 'return' && (value === 'minimal' || value === 'representation' || value === 'OperationOutcome')) {
      prefer.return = value;
    } else if (key === 'handling' && (value === 'strict' || value === 'lenient')) {
      prefer.handling = value;
    }
  }
  return prefer;
}
