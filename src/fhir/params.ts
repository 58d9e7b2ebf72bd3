/**
 * Small helpers over a request's ordered query parameters, and the FHIR id and
 * instant formats they must match.
 */
import type { FhirRequest } from './context';
import { errors } from './outcome';

export const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

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
 * A FHIR date/dateTime/instant parameter as the range [start, end] of instants it covers
 * (a date of day precision covers the whole day, in UTC when no offset is given).
 */
export function parseInstantRange(value: string, name: string): { start: string; end: string } {
  const match =
    /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(value);
  if (!match) {
    throw errors.badRequest(`${name} must be a FHIR date or instant, got "${value}"`, name);
  }
  const [, y, mo, d, h, mi, s, frac, tz] = match;
  const calendar = new Date(Date.UTC(Number(y), Number(mo ?? 1) - 1, Number(d ?? 1)));
  if (calendar.getUTCMonth() !== Number(mo ?? 1) - 1 || calendar.getUTCDate() !== Number(d ?? 1) || Number(h ?? 0) > 23 || Number(mi ?? 0) > 59 || Number(s ?? 0) > 59) {
    throw errors.badRequest(`${name} is not a valid date: "${value}"`, name);
  }
  const zone = tz ?? 'Z';
  const startText = `${y}-${mo ?? '01'}-${d ?? '01'}T${h ?? '00'}:${mi ?? '00'}:${s ?? '00'}${frac ?? ''}${zone}`;
  const start = new Date(startText);
  if (Number.isNaN(start.getTime())) {
    throw errors.badRequest(`${name} is not a valid date: "${value}"`, name);
  }
  const end = new Date(start);
  if (!mo) end.setUTCFullYear(end.getUTCFullYear() + 1);
  else if (!d) end.setUTCMonth(end.getUTCMonth() + 1);
  else if (!h) end.setUTCDate(end.getUTCDate() + 1);
  else if (!s) end.setUTCMinutes(end.getUTCMinutes() + 1);
  else if (!frac) end.setUTCSeconds(end.getUTCSeconds() + 1);
  else end.setUTCMilliseconds(end.getUTCMilliseconds() + 1);
  end.setUTCMilliseconds(end.getUTCMilliseconds() - 1);
  return { start: start.toISOString(), end: end.toISOString() };
}
