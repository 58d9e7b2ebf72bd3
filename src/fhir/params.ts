/**
 * Small helpers over a request's ordered query parameters, and the FHIR id and
 * instant formats they must match.
 */
import type { FhirRequest } from './context';
import { errors } from './outcome';

export const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * Refuses request text holding U+0000 (sent as %00). FHIR R4 datatypes.html (string) says
 * strings "SHOULD not contain Unicode character points below 32" other than tab, CR and LF, and
 * PostgreSQL text cannot hold U+0000 at all: it would surface as a database error (500) in a
 * search, a conditional write or the audit record, where a malformed request deserves 400. The value itself is not echoed: the message goes into the audit trail, which is
 * PostgreSQL text too.
 */
export function assertNoNul(text: string, where: string): void {
  if (text.includes('\u0000')) {
    throw errors.badRequest(`${where} contains a NUL character (%00), which no FHIR value can hold`);
  }
}

/** Every name and value of a request's parameters, checked with assertNoNul. */
export function assertParamsText(params: readonly [string, string][]): void {
  for (const [name, value] of params) {
    assertNoNul(name, 'A parameter name');
    assertNoNul(value, `The value of parameter ${name}`);
  }
}

/**
 * Text percent-encoded as RFC 3986 §2.1 says a URL carries it, decoded as UTF-8; 400 when it
 * is not valid percent-encoding of UTF-8 (a lone %C3, %ZZ), rather than the URIError
 * decodeURIComponent throws.
 */
function decodeUrlPart(text: string, where: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw errors.badRequest(`${where} is not valid percent-encoded UTF-8 (RFC 3986)`);
  }
}

/** One percent-encoded path segment, decoded; 400 when malformed or holding a NUL. */
export function decodePathSegment(segment: string): string {
  const decoded = decodeUrlPart(segment, 'The URL path');
  assertNoNul(decoded, 'The URL path');
  return decoded;
}

/**
 * The query string of a request URL must be valid percent-encoding of UTF-8 too:
 * URLSearchParams would pass a lone %C3 on as U+FFFD, and a search would then quietly look
 * for a character the client never sent.
 */
export function assertQueryEncoding(url: string): void {
  const q = url.indexOf('?');
  if (q < 0) return;
  for (const part of url.slice(q + 1).split('&')) decodeUrlPart(part.replace(/\+/g, ' '), 'The query string');
}

/** The last value of a parameter (the one that wins when a client repeats it), if present. */
export function paramValue(req: Pick<FhirRequest, 'params'>, name: string): string | undefined {
  let value: string | undefined;
  for (const [key, v] of req.params) {
    if (key === name) {
      value = v;
    }
  }
  return value;
}

/** Parses a non-negative integer parameter, 400 when it is not one. */
export function intParam(req: Pick<FhirRequest, 'params'>, name: string): number | undefined {
  const raw = paramValue(req, name);
  if (raw === undefined) {
    return undefined;
  }
  if (!/^\d{1,9}$/.test(raw)) {
    throw errors.badRequest(`${name} must be a non-negative integer, got "${raw}"`, name);
  }
  return Number(raw);
}

/**
 * The range [start, end] of instants a FHIR date, dateTime or instant covers, by its
 * precision (2021 is the whole year, 2021-03-04 the whole day, in UTC when no offset is
 * given), or undefined when the text is not one. Search indexes and search values use it too.
 */
export function instantRange(text: string): [Date, Date] | undefined {
  const match = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(text);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = match;
  const month = Number(mo ?? 1);
  const daysInMonth = new Date(Date.UTC(Number(y), month, 0)).getUTCDate();
  if (month < 1 || month > 12 || Number(d ?? 1) < 1 || Number(d ?? 1) > daysInMonth || Number(h ?? 0) > 23 || Number(mi ?? 0) > 59 || Number(s ?? 0) > 59) {
    return undefined;
  }
  // Milliseconds are the finest precision kept.
  const start = new Date(`${y}-${mo ?? '01'}-${d ?? '01'}T${h ?? '00'}:${mi ?? '00'}:${s ?? '00'}${frac ? frac.slice(0, 4) : ''}${tz ?? 'Z'}`);
  if (Number.isNaN(start.getTime())) return undefined;
  const end = new Date(start);
  if (!mo) end.setUTCFullYear(end.getUTCFullYear() + 1);
  else if (!d) end.setUTCMonth(end.getUTCMonth() + 1);
  else if (!h) end.setUTCDate(end.getUTCDate() + 1);
  else if (!s) end.setUTCMinutes(end.getUTCMinutes() + 1);
  else if (!frac) end.setUTCSeconds(end.getUTCSeconds() + 1);
  else end.setUTCMilliseconds(end.getUTCMilliseconds() + 1);
  end.setUTCMilliseconds(end.getUTCMilliseconds() - 1);
  return [start, end];
}

/**
 * A date in a request parameter as the client meant it: a "+" of a time zone arrives as a
 * space when the client did not percent-encode it (2020-01-01T10:00:00+08:00 sent as is).
 */
export function requestDate(text: string): string {
  return text.replace(' ', '+');
}

/** A date/dateTime/instant request parameter as the ISO instants it covers; 400 when it is not one. */
export function parseInstantRange(value: string, name: string): { start: string; end: string } {
  const range = instantRange(requestDate(value));
  if (!range) {
    throw errors.badRequest(`${name} must be a valid FHIR date or instant, got "${value}"`, name);
  }
  return { start: range[0].toISOString(), end: range[1].toISOString() };
}
