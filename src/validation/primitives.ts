/**
 * The R4 primitive types: which JSON type carries each, and the format its lexical value must
 * have (the regexes of the R4 definitions, plus what a regex cannot say: calendar dates,
 * 32-bit integers, the 1 MB string limit).
 */

type JsonType = 'string' | 'number' | 'boolean';

interface PrimitiveRule {
  json: JsonType;
  regex?: RegExp;
  /** What the value must look like, for messages. */
  expected?: string;
}

const YEAR = '([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)';
const MONTH = '(0[1-9]|1[0-2])';
const DAY = '(0[1-9]|[1-2][0-9]|3[0-1])';
const TIME = '([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?';
const ZONE = '(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))';

const RULES: Record<string, PrimitiveRule> = {
  boolean: { json: 'boolean' },
  integer: { json: 'number' },
  positiveInt: { json: 'number' },
  unsignedInt: { json: 'number' },
  decimal: { json: 'number' },
  string: { json: 'string' },
  markdown: { json: 'string' },
  xhtml: { json: 'string' },
  uri: { json: 'string', regex: /^\S*$/, expected: 'a URI without whitespace' },
  url: { json: 'string', regex: /^\S*$/, expected: 'a URL without whitespace' },
  canonical: { json: 'string', regex: /^\S*$/, expected: 'a canonical URL without whitespace' },
  code: { json: 'string', regex: /^[^\s]+( [^\s]+)*$/, expected: 'a code: no leading, trailing or repeated whitespace' },
  id: { json: 'string', regex: /^[A-Za-z0-9\-.]{1,64}$/, expected: 'an id: 1-64 letters, digits, "-" or "."' },
  oid: { json: 'string', regex: /^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$/, expected: 'urn:oid: followed by an OID' },
  uuid: { json: 'string', regex: /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, expected: 'urn:uuid: followed by a lower-case UUID' },
  // Checked without its whitespace (R4's regex, with whitespace on both sides of each group, backtracks exponentially).
  base64Binary: { json: 'string', regex: /^[0-9a-zA-Z+/]*={0,2}$/, expected: 'base64 content' },
  date: { json: 'string', regex: new RegExp(`^${YEAR}(-${MONTH}(-${DAY})?)?$`), expected: 'a date: YYYY, YYYY-MM or YYYY-MM-DD' },
  dateTime: {
    json: 'string',
    regex: new RegExp(`^${YEAR}(-${MONTH}(-${DAY}(T${TIME}${ZONE})?)?)?$`),
    expected: 'a dateTime: YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss(.sss) with a time zone',
  },
  instant: { json: 'string', regex: new RegExp(`^${YEAR}-${MONTH}-${DAY}T${TIME}${ZONE}$`), expected: 'an instant: YYYY-MM-DDThh:mm:ss(.sss) with a time zone' },
  time: { json: 'string', regex: new RegExp(`^${TIME}$`), expected: 'a time: hh:mm:ss(.sss)' },
};

export function isPrimitiveType(code: string): boolean {
  return code in RULES;
}

/** Days of a month, for the calendar check a regex cannot make (2023-02-30). */
function validDay(value: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  if (!match) return true;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  return day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

// Control characters other than tab, CR and LF are not allowed in FHIR strings.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;
const MAX_STRING = 1024 * 1024;

/** Why a JSON value is not a valid value of the primitive type, or undefined when it is. */
export function primitiveProblem(type: string, value: unknown): string | undefined {
  const rule = RULES[type];
  if (!rule) return undefined;
  if (typeof value !== rule.json) {
    const got = Array.isArray(value) ? 'an array' : value === null ? 'null' : `a JSON ${typeof value}`;
    return `A ${type} must be a JSON ${rule.json}, not ${got}`;
  }
  if (rule.json === 'number') {
    const n = value as number;
    if (!Number.isFinite(n)) return `${n} is not a valid ${type}`;
    if (type === 'decimal') return undefined;
    if (!Number.isInteger(n)) return `${n} is not an integer`;
    if (n > 2147483647 || n < -2147483648) return `${n} is outside the range of a 32-bit ${type}`;
    if (type === 'positiveInt' && n < 1) return `A positiveInt must be 1 or more, not ${n}`;
    if (type === 'unsignedInt' && n < 0) return `An unsignedInt must be 0 or more, not ${n}`;
    return undefined;
  }
  if (rule.json === 'boolean') return undefined;
  const text = value as string;
  if (text.length === 0) return `A ${type} must not be empty (leave the element out instead)`;
  if (type !== 'base64Binary' && text.length > MAX_STRING) return `A ${type} must not be longer than 1 MB`;
  if (type !== 'xhtml' && CONTROL.test(text)) return `A ${type} must not contain control characters`;
  if (type === 'string' || type === 'markdown') {
    if (!text.trim()) return `A ${type} must contain non-whitespace content`;
    return undefined;
  }
  if (type === 'base64Binary') {
    const compact = text.replace(/\s+/g, '');
    return compact.length % 4 === 0 && rule.regex!.test(compact) ? undefined : `The value is not ${rule.expected}`;
  }
  if (rule.regex && !rule.regex.test(text)) return `"${abbreviate(text)}" is not ${rule.expected ?? 'a valid ' + type}`;
  if ((type === 'date' || type === 'dateTime' || type === 'instant') && !validDay(text)) {
    return `"${text}" is not a date of the calendar`;
  }
  return undefined;
}

export function abbreviate(text: string, max = 80): string {
  return text.length > max ? text.slice(0, max) + '...' : text;
}
