/**
 * Search values: comparison prefixes, dates as ranges, numbers with their precision,
 * quantities, tokens and references, each parsed strictly (a malformed value is a 400).
 */
import { errors } from '../fhir/outcome';
import { instantRange, requestDate } from '../fhir/params';

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';
const PREFIXES = new Set<Prefix>(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);

export function splitPrefix(value: string): { prefix: Prefix; rest: string } {
  const head = value.slice(0, 2) as Prefix;
  if (PREFIXES.has(head) && value.length > 2 && !/^[a-z]/.test(value.slice(2))) {
    return { prefix: head, rest: value.slice(2) };
  }
  return { prefix: 'eq', rest: value };
}

export interface DateValue {
  prefix: Prefix;
  lo: string;
  hi: string;
}

export function parseDateValue(value: string, name: string): DateValue {
  const { prefix, rest } = splitPrefix(value);
  const range = instantRange(requestDate(rest));
  if (!range) {
    throw errors.badRequest(
      `Invalid date "${value}" for ${name}: expected a FHIR date or dateTime such as 2020-01-31 or 2020-01-31T10:00:00Z, optionally with a prefix such as ge`,
      name
    );
  }
  return { prefix, lo: range[0].toISOString(), hi: range[1].toISOString() };
}

export interface NumberValue {
  prefix: Prefix;
  value: number;
  /** The value as given, for exact comparisons in SQL (numeric). */
  text: string;
  /**
   * The implicit range of the value given its precision: 100 means [99.5, 100.5). Decimal
   * strings for SQL numeric, computed exactly: in binary floating point 0.4 - 0.05 is
   * 0.35000000000000003, which would leave a stored 0.35 out of 0.4's range.
   */
  lo: string;
  hi: string;
}

export function parseNumberValue(text: string, name: string): NumberValue {
  const { prefix, rest } = splitPrefix(text);
  const match = /^([+-]?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(rest);
  if (!match) {
    throw errors.badRequest(`Invalid number "${text}" for ${name}`, name);
  }
  const [, sign, whole, fraction = '', exp = '0'] = match;
  // In units of a tenth of the last significant place, the value is digits * 10 and half
  // of that place is 5: the bounds are integers, written with an exponent numeric reads.
  const digits = BigInt(whole + fraction) * (sign === '-' ? -10n : 10n);
  const scale = Number(exp) - fraction.length - 1;
  return { prefix, value: Number(rest), text: rest, lo: `${digits - 5n}e${scale}`, hi: `${digits + 5n}e${scale}` };
}

export interface QuantityValue extends NumberValue {
  system?: string;
  code?: string;
}

export function parseQuantityValue(text: string, name: string): QuantityValue {
  const parts = splitUnescaped(text, '|');
  if (parts.length > 3) {
    // Anything after the code would be dropped unseen: 5|s|c|x would search for 5|s|c.
    throw errors.badRequest(`Invalid quantity "${text}" for ${name}: expected number|system|code, with a | in a code escaped as \\|`, name);
  }
  const [number, system, code] = parts;
  const parsed = parseNumberValue(number, name);
  return { ...parsed, system: system || undefined, code: code || undefined };
}

/**
 * A value with no separators of its own (string, uri, reference) with its escapes removed:
 * "\\" "\|" "\$" "\," stand for the character (search.html, Escaping Search Parameters).
 */
export function unescapeValue(text: string): string {
  return text.replace(/\\([\\|$,])/g, '$1');
}

/**
 * Splits on a separator not escaped by a backslash, unescaping each part. With keepEscapes,
 * only the separator's own escape is removed: the values of a parameter (split on ",") and the
 * parts of a composite value ("a\|b$5") are parsed further, and an escaped | must still read
 * as part of a code there.
 */
export function splitUnescaped(text: string, separator: '|' | '$' | ',', keepEscapes = false): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && i + 1 < text.length) {
      const next = text[++i];
      current += keepEscapes && next !== separator ? c + next : next;
    } else if (c === separator) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

export interface TokenQuery {
  /** undefined: any system; null: no system ("|code"). */
  system?: string | null;
  code?: string;
}

export function parseTokenValue(text: string): TokenQuery {
  const parts = splitUnescaped(text, '|');
  if (parts.length === 1) return { code: parts[0] };
  const [system, code] = parts;
  return { system: system === '' ? null : system, code: code === '' ? undefined : code };
}
