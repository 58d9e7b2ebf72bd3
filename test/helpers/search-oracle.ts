/**
 * An in-memory evaluation of FHIR searches over a set of resources, to check the server
 * against (test/http/search-correctness.test.ts). Written independently of src/search.
 *
 * Where @medplum/core's matchesSearchRequest follows the FHIR R4 spec, it decides: token
 * (code, system|code, |code, system|, :not), reference (Type/id) and :missing. Where it does
 * not, this file implements the spec instead, and says why:
 *  - string: medplum matches case-insensitive *substrings* without removing accents; R4's
 *    default is a case- and accent-insensitive *prefix* match, :contains a substring, :exact
 *    exact equality.
 *  - date: medplum's eq is "overlaps"; R4's eq is "the search range contains the value's
 *    range", and ge/le are "gt (lt) or eq" (search.html#prefix). Values keep their precision
 *    as a range (2021-03 is all of March) and time zones.
 *  - number, quantity, composite, token :text, _id, _lastUpdated, chains and _has: medplum's
 *    matcher does not support them.
 * Data and queries avoid the spots where medplum's token matcher departs from the spec (it is
 * case-insensitive, and matches displays as if they were codes): codes never differ only by
 * case, and no token query uses a display text.
 */
import { evalFhirPathTyped, getSearchParameter, matchesSearchRequest, parseFhirPath, parseSearchRequest, toTypedValue } from '@medplum/core';
import type { TypedValue } from '@medplum/core';
import type { Resource, SearchParameter } from '@medplum/fhirtypes';

type Json = Record<string, any>;

export class SearchOracle {
  private readonly byReference = new Map<string, Resource>();
  /** Values of (resource, parameter), computed once: chains and _has revisit them often. */
  private readonly values = new Map<Resource, Map<string, TypedValue[]>>();
  private readonly parsed = new Map<string, ReturnType<typeof parseFhirPath>>();

  constructor(readonly resources: Resource[]) {
    for (const r of resources) this.byReference.set(`${r.resourceType}/${r.id}`, r);
  }

  /** The resources of a type matching every parameter (repetition is AND). */
  search(resourceType: string, params: [string, string][]): Resource[] {
    return this.resources.filter((r) => r.resourceType === resourceType && params.every(([name, value]) => this.matches(r, name, value)));
  }

  matches(resource: Resource, name: string, value: string): boolean {
    if (name.startsWith('_has:')) {
      const [, sourceType, referenceCode, ...rest] = name.split(':');
      const target = `${resource.resourceType}/${resource.id}`;
      return this.resources.some(
        (s) =>
          s.resourceType === sourceType &&
          this.references(s, referenceCode).includes(target) &&
          this.matches(s, rest.join(':'), value)
      );
    }
    const dot = name.indexOf('.');
    if (dot > 0) {
      const [code, typeModifier] = name.slice(0, dot).split(':');
      return this.references(resource, code).some((ref) => {
        const target = this.byReference.get(ref);
        return !!target && (!typeModifier || target.resourceType === typeModifier) && this.matches(target, name.slice(dot + 1), value);
      });
    }
    const [code, modifier] = name.split(':');
    if (code === '_id') return value.split(',').includes(resource.id as string);
    if (code === '_lastUpdated') {
      const instant = Date.parse(resource.meta?.lastUpdated as string);
      return value.split(',').some((v) => compareDate([instant, instant], v));
    }
    const param = getSearchParameter(resource.resourceType, code) as SearchParameter;
    if (!param) throw new Error(`oracle: no parameter ${resource.resourceType}.${code}`);
    const values = this.valuesOf(resource, param);
    if (modifier === 'missing' || param.type === 'token' && modifier !== 'text' || param.type === 'reference') {
      const request = parseSearchRequest(`${resource.resourceType}?${new URLSearchParams([[name, value]])}`);
      return matchesSearchRequest(resource, request);
    }
    const alternatives = value.split(',');
    switch (param.type) {
      case 'string':
        return alternatives.some((q) => values.flatMap((v) => strings(v.value)).some((s) => stringMatch(s, q, modifier)));
      case 'token': // :text
        return alternatives.some((q) => values.flatMap((v) => texts(v.value)).some((s) => normalize(s).startsWith(normalize(q))));
      case 'date':
        return alternatives.some((q) => values.flatMap((v) => ranges(v.value)).some((range) => compareDate(range, q)));
      case 'number':
        return alternatives.some((q) => values.some((v) => typeof v.value === 'number' && compareNumber(v.value, q)));
      case 'quantity':
        return alternatives.some((q) => values.some((v) => quantityMatch(v.value, q)));
      case 'composite':
        return alternatives.some((q) => this.compositeMatch(resource, code, q));
      default:
        throw new Error(`oracle: ${param.type} not supported`);
    }
  }

  /** Observation code-value-quantity, the composite the correctness suite uses. */
  private compositeMatch(resource: Resource, code: string, q: string): boolean {
    if (code !== 'code-value-quantity') throw new Error(`oracle: composite ${code} not supported`);
    const [token, quantity] = q.split('$');
    return this.matches(resource, 'code', token) && this.matches(resource, 'value-quantity', quantity);
  }

  private valuesOf(resource: Resource, param: SearchParameter): TypedValue[] {
    let byCode = this.values.get(resource);
    if (!byCode) this.values.set(resource, (byCode = new Map()));
    let values = byCode.get(param.code as string);
    if (!values) {
      let atom = this.parsed.get(param.expression as string);
      if (!atom) this.parsed.set(param.expression as string, (atom = parseFhirPath(param.expression as string)));
      values = evalFhirPathTyped(atom, [toTypedValue(resource)]);
      byCode.set(param.code as string, values);
    }
    return values;
  }

  /** The relative references (Type/id) a reference parameter of a resource holds. */
  references(resource: Resource, code: string): string[] {
    const param = getSearchParameter(resource.resourceType, code);
    if (!param) return [];
    return this.valuesOf(resource, param)
      .map((v) => (typeof v.value === 'string' ? v.value : v.value?.reference))
      .filter((r): r is string => typeof r === 'string');
  }

  /**
   * The value a resource sorts by (FHIR search: ascending by its lowest value, descending by
   * its highest), or undefined when it has none (those sort last).
   */
  sortValue(resource: Resource, code: string, descending: boolean): string | number | undefined {
    if (code === '_id') return resource.id;
    if (code === '_lastUpdated') return Date.parse(resource.meta?.lastUpdated as string);
    const param = getSearchParameter(resource.resourceType, code) as SearchParameter;
    const values = this.valuesOf(resource, param);
    let keys: (string | number)[];
    switch (param.type) {
      case 'string':
        keys = values.flatMap((v) => strings(v.value)).map(normalize);
        break;
      case 'date':
        keys = values.flatMap((v) => ranges(v.value)).map(([lo, hi]) => (descending ? hi : lo));
        break;
      case 'token':
        keys = values.flatMap((v) => codes(v.value));
        break;
      case 'number':
        keys = values.map((v) => v.value).filter((v) => typeof v === 'number');
        break;
      case 'quantity':
        keys = values.map((v) => v.value?.value).filter((v) => typeof v === 'number');
        break;
      default:
        throw new Error(`oracle: cannot sort by ${param.type}`);
    }
    if (keys.length === 0) return undefined;
    return keys.reduce((a, b) => ((descending ? b > a : b < a) ? b : a));
  }
}

// ---- values ---------------------------------------------------------------------------

export function normalize(text: string): string {
  return text.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}

function strings(value: any): string[] {
  if (typeof value === 'string') return [value];
  if (!value || typeof value !== 'object') return [];
  const name = value as Json;
  return [name.text, name.family, ...(name.given ?? []), ...(name.prefix ?? []), ...(name.suffix ?? []), ...(name.line ?? []), name.city, name.district, name.state, name.postalCode, name.country].filter(
    (s) => typeof s === 'string'
  );
}

function stringMatch(value: string, q: string, modifier: string | undefined): boolean {
  if (modifier === 'exact') return value === q;
  if (modifier === 'contains') return normalize(value).includes(normalize(q));
  return normalize(value).startsWith(normalize(q));
}

function texts(value: any): string[] {
  if (!value || typeof value !== 'object') return [];
  return [value.text, value.display, ...(value.coding ?? []).map((c: Json) => c.display)].filter((s) => typeof s === 'string');
}

function codes(value: any): string[] {
  if (typeof value === 'string' || typeof value === 'boolean') return [String(value)];
  if (!value || typeof value !== 'object') return [];
  if (value.coding) return value.coding.map((c: Json) => c.code).filter(Boolean);
  return [value.code ?? value.value].filter(Boolean);
}

/** [start, end] in epoch milliseconds of a date, dateTime, instant or Period, by its precision. */
export function ranges(value: any): [number, number][] {
  if (typeof value === 'string') {
    const range = dateRange(value);
    return range ? [range] : [];
  }
  if (value && typeof value === 'object' && ('start' in value || 'end' in value)) {
    return [[value.start ? dateRange(value.start)![0] : -Infinity, value.end ? dateRange(value.end)![1] : Infinity]];
  }
  return [];
}

function dateRange(text: string): [number, number] | undefined {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const zone = tz ?? 'Z';
  const start = Date.parse(`${y}-${mo ?? '01'}-${d ?? '01'}T${h ?? '00'}:${mi ?? '00'}:${s ?? '00'}${frac ? frac.slice(0, 4) : ''}${zone}`);
  const end = new Date(start);
  if (!mo) end.setUTCFullYear(end.getUTCFullYear() + 1);
  else if (!d) end.setUTCMonth(end.getUTCMonth() + 1);
  else if (!h) end.setUTCDate(end.getUTCDate() + 1);
  else if (!s) end.setUTCMinutes(end.getUTCMinutes() + 1);
  else if (!frac) end.setUTCSeconds(end.getUTCSeconds() + 1);
  else end.setUTCMilliseconds(end.getUTCMilliseconds() + 1);
  return [start, end.getTime() - 1];
}

function splitPrefix(q: string): [string, string] {
  const prefix = q.slice(0, 2);
  return ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'].includes(prefix) && /^[0-9+-]/.test(q.slice(2)) ? [prefix, q.slice(2)] : ['eq', q];
}

function compareDate([lo, hi]: [number, number], q: string): boolean {
  const [prefix, text] = splitPrefix(q);
  const [qlo, qhi] = dateRange(text)!;
  const eq = lo >= qlo && hi <= qhi;
  switch (prefix) {
    case 'eq':
      return eq;
    case 'ne':
      return !eq;
    case 'gt':
      return hi > qhi;
    case 'lt':
      return lo < qlo;
    case 'ge':
      return hi > qhi || eq;
    case 'le':
      return lo < qlo || eq;
    case 'sa':
      return lo > qhi;
    case 'eb':
      return hi < qlo;
    default:
      throw new Error(`oracle: prefix ${prefix} not supported`);
  }
}

/** A number search value stands for the interval of its precision: 5.4 is [5.35, 5.45). */
function compareNumber(value: number, q: string): boolean {
  const [prefix, text] = splitPrefix(q);
  const n = Number(text);
  const decimals = (text.split('.')[1] ?? '').length;
  const half = 0.5 * Math.pow(10, -decimals);
  const eq = value >= n - half && value < n + half;
  switch (prefix) {
    case 'eq':
      return eq;
    case 'ne':
      return !eq;
    case 'gt':
      return value > n;
    case 'lt':
      return value < n;
    case 'ge':
      return value >= n;
    case 'le':
      return value <= n;
    default:
      throw new Error(`oracle: prefix ${prefix} not supported`);
  }
}

function quantityMatch(value: any, q: string): boolean {
  if (!value || typeof value.value !== 'number') return false;
  const [number, system, code] = q.split('|');
  if (!compareNumber(value.value, number)) return false;
  if (system && value.system !== system) return false;
  if (code) return system ? value.code === code : value.code === code || value.unit === code;
  return true;
}
