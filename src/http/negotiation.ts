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

/**
 * Values of the fhirVersion MIME parameter this server answers to: R4 (versioning.html, "FHIR
 * Version parameter": 4.0 names R4; 4.0.1 is its technical correction, which clients send too).
 */
const FHIR_VERSIONS = new Set(['4.0', '4.0.1']);

/** The fhirVersion parameter of a media type ("application/fhir+json; fhirVersion=4.0"), if any. */
export function fhirVersionOf(mediaType: string): string | undefined {
  for (const param of mediaType.split(';').slice(1)) {
    const [name, value] = param.split('=').map((s) => s.trim());
    if (name.toLowerCase() === 'fhirversion') return (value ?? '').replace(/^"|"$/g, '');
  }
  return undefined;
}

/** Whether a media type names no FHIR version or one this server serves. */
export function isServedFhirVersion(mediaType: string): boolean {
  const version = fhirVersionOf(mediaType);
  return version === undefined || FHIR_VERSIONS.has(version);
}

const WRONG_VERSION = 'this server serves FHIR R4 only (fhirVersion=4.0 or 4.0.1)';

/** The media type of the response, from _format (which wins) or Accept; 406 for XML or anything else. */
export function responseMediaType(format: string | undefined, accept: string | undefined): ResponseMediaType {
  if (format !== undefined) {
    // A + left unencoded in the query (_format=application/fhir+json, as clients and browsers
    // commonly send it) arrives as a space; no media type contains one, so it is read as +.
    const type = format.split(';')[0].trim().toLowerCase().replace(/ /g, '+');
    if (!isServedFhirVersion(format)) {
      throw errors.notAcceptable(`_format asks for fhirVersion=${fhirVersionOf(format)}; ${WRONG_VERSION}`);
    }
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
  const all = accept
    .split(',')
    .map((part) => {
      const [type, ...params] = part.trim().split(';');
      const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      return { type: type.trim().toLowerCase(), q: q ? Number(q.slice(2)) : 1, served: isServedFhirVersion(part) };
    })
    .filter((r) => r.q > 0);
  // A range for another FHIR version is one this server cannot satisfy (R4 would be a substitute).
  const ranges = all.filter((r) => r.served).sort((a, b) => b.q - a.q);
  if (ranges.length === 0 && all.length > 0) {
    const version = fhirVersionOf(accept.split(',').find((part) => !isServedFhirVersion(part)) ?? '');
    throw errors.notAcceptable(`Accept asks for fhirVersion=${version}; ${WRONG_VERSION}`);
  }
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
