/**
 * Reads request bodies as raw bytes (with the configured size limit) and parses them by
 * Content-Type, so every malformed or unsupported body gets a precise OperationOutcome.
 */
import type { Request } from 'express';
import { errors } from '../fhir/outcome';
import { assertQueryEncoding } from '../fhir/params';
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
  assertUtf8Charset(header);
  const text = utf8Text(raw);
  if (contentType === FORM_TYPE) {
    // Percent-encoded like a query string, and held to the same rule (valid UTF-8).
    assertQueryEncoding('?' + text);
    return { contentType, form: [...new URLSearchParams(text).entries()] };
  }
  if (formOnly) {
    throw errors.unsupportedMediaType(
      `POST _search takes its parameters as ${FORM_TYPE}, not ${contentType ?? 'a body without Content-Type'}; send them as a form or in the URL`
    );
  }
  if (contentType && (JSON_TYPES.has(contentType) || contentType.endsWith('+json'))) {
    let body: unknown;
    try {
      // A byte order mark is allowed before JSON text (RFC 8259 §8.1: parsers MAY ignore it).
      body = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    } catch (err) {
      throw errors.structure(`The body is not valid JSON: ${(err as Error).message}`);
    }
    // Only a \u escape can put U+0000 or a lone surrogate into parsed JSON: most bodies skip the walk.
    if (text.includes('\\u')) assertStorableJson(body);
    return { contentType, body };
  }
  if (!contentType) {
    throw errors.unsupportedMediaType('A request body needs a Content-Type, such as application/fhir+json');
  }
  if (contentType.includes('xml')) {
    throw errors.unsupportedMediaType('XML is not supported by this server; send application/fhir+json');
  }
  throw errors.unsupportedMediaType(`Unsupported Content-Type "${contentType}"; send application/fhir+json`);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The body as text. FHIR bodies are UTF-8 (R4 http.html 3.1.0.1.5); Buffer#toString would turn
 * invalid bytes (a Latin-1 "ü") into U+FFFD and the record would be stored altered. The strict
 * decoder runs only when the lenient one produced a U+FFFD, which a valid body rarely holds.
 */
function utf8Text(raw: Buffer): string {
  const text = raw.toString('utf8');
  if (text.includes('\uFFFD')) {
    try {
      UTF8.decode(raw);
    } catch {
      throw errors.badRequest('The body is not valid UTF-8; FHIR request bodies are UTF-8');
    }
  }
  return text;
}

/** A charset parameter other than UTF-8 names an encoding this server would misread: 415. */
function assertUtf8Charset(header: string): void {
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(header)?.[1].toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw errors.unsupportedMediaType(`The body is charset=${charset}; FHIR request bodies are UTF-8 (charset=utf-8)`);
  }
}

/**
 * Refuses JSON holding U+0000 or a lone surrogate (escaped as \u0000, \ud800), in a value or a
 * key. Neither is valid FHIR string content (R4 datatypes.html: string), PostgreSQL's jsonb
 * cannot hold either, and a lone surrogate has no canonical form for a Provenance signature:
 * they would fail the write, or the audit record that repeats an unknown key, with a 500.
 */
export function assertStorableJson(root: unknown): void {
  // Iterative, as JSON.parse is: a deeply nested body must not overflow the call stack here.
  // Each node links to its parent, so the path is built only for the message.
  type Node = { value: unknown; key?: string | number; parent?: Node };
  const stack: Node[] = [{ value: root }];
  for (let node = stack.pop(); node; node = stack.pop()) {
    const { value } = node;
    if (typeof value === 'string') {
      if (!isStorable(value)) throw notStorable(`The JSON string at ${pathOf(node)}`);
    } else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) stack.push({ value: value[i], key: i, parent: node });
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        const child = { value: item, key, parent: node };
        if (!isStorable(key)) throw notStorable(`The name of the JSON member at ${pathOf(child)}`);
        stack.push(child);
      }
    }
  }

  function pathOf(node: Node): string {
    let path = '';
    for (let n: Node | undefined = node; n?.parent; n = n.parent) {
      path = (typeof n.key === 'number' ? `[${n.key}]` : `.${n.key}`) + path;
    }
    // JSON.stringify escapes both characters, so the message itself can be stored (audit trail).
    return JSON.stringify(path.replace(/^\./, '') || '(root)');
  }
}

/** String.prototype.isWellFormed (Node 20+; not yet in the ES2023 lib this project compiles against). */
const isWellFormed = (text: string) => (text as unknown as { isWellFormed(): boolean }).isWellFormed();

const isStorable = (text: string) => !text.includes('\u0000') && isWellFormed(text);

function notStorable(where: string) {
  return errors.badRequest(`${where} holds a NUL character (\\u0000) or an unpaired surrogate (\\ud800-\\udfff), which no FHIR string can hold`);
}
