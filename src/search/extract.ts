/**
 * Extracts a resource's search values into index rows: one FHIRPath evaluation per
 * parameter (expressions parsed once, see registry.ts), then each value converted by its
 * FHIR datatype to the columns of its table.
 */
import { toTypedValue } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import type { CompiledExpression, Typed } from '../fhir/fhirpath';
import { instantRange } from '../fhir/params';
import { referenceValue, type ReferenceValue } from '../fhir/references';
import { indexedParamsOf, paramKey, type ParamInfo } from './registry';
import { normalizeText } from './text';

type Json = Record<string, any>;

export interface IndexRows {
  token: [string, number, string | null, string | null, string | null][];
  string: [string, number, string, string][];
  date: [string, number, string, string][];
  number: [string, number, number][];
  quantity: [string, number, number, string | null, string | null, string | null][];
  uri: [string, number, string][];
  reference: [string, number, string | null, string | null, string | null, string | null][];
  composite: (string | number | null)[][];
}

export function emptyRows(): IndexRows {
  return { token: [], string: [], date: [], number: [], quantity: [], uri: [], reference: [], composite: [] };
}

/** Keeps index keys well under PostgreSQL's btree entry limit. */
const MAX_TEXT = 1000;
const clip = (s: string) => (s.length > MAX_TEXT ? s.slice(0, MAX_TEXT) : s);

function evaluate(expression: CompiledExpression, input: Typed[], root: Typed): Typed[] {
  const context = { variables: { '%resource': root, '%context': root, '%rootResource': root } };
  try {
    return expression.eval(context, input).filter((v) => v.value !== undefined && v.value !== null);
  } catch {
    // An expression that cannot be evaluated on this content yields no values (as in HAPI).
    return [];
  }
}

// ---- values by datatype --------------------------------------------------------------

export interface TokenValue {
  system: string | null;
  code: string | null;
  display: string | null;
}

function tokens(v: Typed): TokenValue[] {
  const value = v.value;
  switch (v.type) {
    case 'Coding':
      return [{ system: value.system ?? null, code: value.code ?? null, display: value.display ?? null }];
    case 'CodeableConcept': {
      const result: TokenValue[] = (value.coding ?? []).map((c: Json) => ({
        system: c.system ?? null,
        code: c.code ?? null,
        display: c.display ?? null,
      }));
      if (value.text) result.push({ system: null, code: null, display: value.text });
      return result;
    }
    case 'Identifier': {
      const result: TokenValue[] = [{ system: value.system ?? null, code: value.value ?? null, display: null }];
      if (value.type?.text) result.push({ system: null, code: null, display: value.type.text });
      return result;
    }
    case 'ContactPoint':
      return [{ system: value.system ?? null, code: value.value ?? null, display: null }];
    case 'boolean':
      return [{ system: null, code: String(value), display: null }];
    case 'Quantity':
    case 'Age':
    case 'Duration':
    case 'Count':
    case 'Distance':
      return [{ system: value.system ?? null, code: value.code ?? value.unit ?? null, display: null }];
    case 'Reference':
      return value.identifier ? [{ system: value.identifier.system ?? null, code: value.identifier.value ?? null, display: null }] : [];
    default:
      return typeof value === 'string' || typeof value === 'number' ? [{ system: null, code: String(value), display: null }] : [];
  }
}

function strings(v: Typed): string[] {
  const value = v.value;
  if (typeof value === 'string') return [value];
  if (!value || typeof value !== 'object') return [];
  switch (v.type) {
    case 'HumanName':
      return [value.text, value.family, ...(value.given ?? []), ...(value.prefix ?? []), ...(value.suffix ?? [])].filter(Boolean);
    case 'Address':
      return [value.text, ...(value.line ?? []), value.city, value.district, value.state, value.postalCode, value.country].filter(Boolean);
    case 'CodeableConcept':
      return [value.text, ...(value.coding ?? []).map((c: Json) => c.display)].filter(Boolean);
    case 'Coding':
      return [value.display].filter(Boolean);
    case 'Attachment':
      return [value.title].filter(Boolean);
    default:
      return [];
  }
}

const NEG_INFINITY = '-infinity';
const POS_INFINITY = 'infinity';

function dates(v: Typed): [string, string][] {
  const value = v.value;
  if (typeof value === 'string') {
    const range = instantRange(value);
    return range ? [[range[0].toISOString(), range[1].toISOString()]] : [];
  }
  if (!value || typeof value !== 'object') return [];
  if (v.type === 'Period' || ('start' in value || 'end' in value) && v.type !== 'Timing') {
    const lo = value.start ? instantRange(value.start)?.[0].toISOString() : NEG_INFINITY;
    const hi = value.end ? instantRange(value.end)?.[1].toISOString() : POS_INFINITY;
    return lo && hi ? [[lo, hi]] : [];
  }
  if (v.type === 'Timing') {
    const result: [string, string][] = [];
    for (const event of value.event ?? []) result.push(...dates({ type: 'dateTime', value: event }));
    const bounds = value.repeat?.boundsPeriod;
    if (bounds) result.push(...dates({ type: 'Period', value: bounds }));
    return result;
  }
  return [];
}

function numbers(v: Typed): number[] {
  if (typeof v.value === 'number') return [v.value];
  if (v.value && typeof v.value.value === 'number') return [v.value.value];
  return [];
}

function quantities(v: Typed): [number, string | null, string | null, string | null][] {
  const q = v.value;
  if (q && typeof q === 'object' && typeof q.value === 'number') {
    return [[q.value, q.system ?? null, q.code ?? q.currency ?? null, q.unit ?? null]];
  }
  if (v.type === 'Range' && q) {
    return [q.low, q.high].filter((x) => x && typeof x.value === 'number').map((x) => [x.value, x.system ?? null, x.code ?? null, x.unit ?? null]);
  }
  return typeof q === 'number' ? [[q, null, null, null]] : [];
}

function references(v: Typed, baseUrl: string): ReferenceValue[] {
  const value = v.value;
  if (typeof value === 'string') {
    const parsed = referenceValue(value, baseUrl, MAX_TEXT);
    return parsed ? [parsed] : [];
  }
  if (value?.reference) {
    const parsed = referenceValue(value.reference, baseUrl, MAX_TEXT);
    return parsed ? [parsed] : [];
  }
  return [];
}

// ---- rows ----------------------------------------------------------------------------

function addToken(rows: IndexRows, rid: string, key: number, t: TokenValue): void {
  if (t.code === null && t.system === null && t.display === null) return;
  rows.token.push([
    rid,
    key,
    t.system === null ? null : clip(t.system),
    t.code === null ? null : clip(t.code),
    t.display ? clip(normalizeText(t.display)) : null,
  ]);
}

function addValues(rows: IndexRows, rid: string, param: ParamInfo, values: Typed[], baseUrl: string): void {
  const { key } = param;
  for (const v of values) {
    switch (param.kind) {
      case 'token':
        for (const t of tokens(v)) addToken(rows, rid, key, t);
        if (v.type === 'Identifier' && v.value.type?.coding && v.value.value) {
          // :of-type matches identifier type and value together; stored under a derived key.
          for (const c of v.value.type.coding) {
            addToken(rows, rid, paramKey(param.resourceType, `${param.code}:of-type`), {
              system: c.system ?? null,
              code: `${c.code}|${v.value.value}`,
              display: null,
            });
          }
        }
        break;
      case 'string':
        for (const s of strings(v)) rows.string.push([rid, key, clip(normalizeText(s)), clip(s)]);
        break;
      case 'date':
        for (const [lo, hi] of dates(v)) rows.date.push([rid, key, lo, hi]);
        break;
      case 'number':
        for (const n of numbers(v)) rows.number.push([rid, key, n]);
        break;
      case 'quantity':
        for (const q of quantities(v)) rows.quantity.push([rid, key, ...q]);
        break;
      case 'uri':
        if (typeof v.value === 'string') rows.uri.push([rid, key, clip(v.value)]);
        break;
      case 'reference':
        for (const r of references(v, baseUrl)) rows.reference.push([rid, key, r.targetRid, r.targetType, r.targetId, r.url]);
        if (v.type === 'Reference' && v.value.identifier) {
          // :identifier matches Reference.identifier; stored as a token under a derived key.
          for (const t of tokens(v)) addToken(rows, rid, paramKey(param.resourceType, `${param.code}:identifier`), t);
        }
        break;
      case 'composite':
        addComposite(rows, rid, param, v, baseUrl);
        break;
    }
  }
}

function componentValues(param: ParamInfo, index: number, element: Typed, root: Typed): Typed[] {
  return evaluate(param.composite!.components[index].expression, [element], root);
}

function addComposite(rows: IndexRows, rid: string, param: ParamInfo, element: Typed, baseUrl: string): void {
  const { shape } = param.composite!;
  const root = element;
  const first = componentValues(param, 0, element, root);
  const second = componentValues(param, 1, element, root);
  const base = (): (string | number | null)[] => [rid, param.key, null, null, null, null, null, null, null, null, null, null];
  // Columns: rid, p, ref_rid, t1_system, t1_code, t2_system, t2_code, num1, num2, lo, hi, str
  if (shape === 'reference+token') {
    for (const r of first.flatMap((v) => references(v, baseUrl))) {
      for (const t of second.flatMap(tokens)) {
        const row = base();
        row[2] = r.targetRid;
        row[3] = t.system;
        row[4] = t.code;
        rows.composite.push(row);
      }
    }
    return;
  }
  for (const t of first.flatMap(tokens).filter((x) => x.code !== null)) {
    const withToken = (): (string | number | null)[] => {
      const row = base();
      row[3] = t.system;
      row[4] = t.code;
      return row;
    };
    switch (shape) {
      case 'token+token':
        for (const t2 of second.flatMap(tokens).filter((x) => x.code !== null)) {
          const row = withToken();
          row[5] = t2.system;
          row[6] = t2.code;
          rows.composite.push(row);
        }
        break;
      case 'token+quantity':
        for (const [value, system, code] of second.flatMap(quantities)) {
          const row = withToken();
          row[5] = system;
          row[6] = code;
          row[7] = value;
          rows.composite.push(row);
        }
        break;
      case 'token+number+number': {
        const third = componentValues(param, 2, element, root);
        const n1 = second.flatMap(numbers);
        const n2 = third.flatMap(numbers);
        for (const a of n1.length ? n1 : [null]) {
          for (const b of n2.length ? n2 : [null]) {
            const row = withToken();
            row[7] = a;
            row[8] = b;
            rows.composite.push(row);
          }
        }
        break;
      }
      case 'token+date':
        for (const [lo, hi] of second.flatMap(dates)) {
          const row = withToken();
          row[9] = lo;
          row[10] = hi;
          rows.composite.push(row);
        }
        break;
      case 'token+string':
        for (const s of second.flatMap(strings)) {
          const row = withToken();
          row[11] = clip(normalizeText(s));
          rows.composite.push(row);
        }
        break;
    }
  }
}

/**
 * The names under which an element may appear at the top of the resource: every key, without
 * the `_` of a primitive's extension, and each of its prefixes that ends before a capital
 * (`value` and `effective` of `valueQuantity` and `effectiveDateTime`, choice elements). A
 * superset of the element names present, so that a parameter is skipped only when none of its
 * elements can be there.
 */
function presentElements(resource: Resource): Set<string> {
  const present = new Set<string>();
  for (const key of Object.keys(resource)) {
    const name = key.startsWith('_') ? key.slice(1) : key;
    present.add(name);
    for (let i = 1; i < name.length; i++) {
      const c = name.charCodeAt(i);
      if (c >= 65 && c <= 90) present.add(name.slice(0, i));
    }
  }
  return present;
}

/**
 * All index rows of one resource. A parameter whose elements are all absent is not evaluated
 * (most of a type's parameters, for a typical resource: an Observation has 40); `everyParam`
 * evaluates them all regardless, as the reference for tests.
 */
export function extractRows(resource: Resource, rid: string, baseUrl: string, into: IndexRows = emptyRows(), everyParam = false): IndexRows {
  const root = toTypedValue(resource) as Typed;
  const present = everyParam ? undefined : presentElements(resource);
  for (const param of indexedParamsOf(resource.resourceType)) {
    if (present && param.roots && !param.roots.some((name) => present.has(name))) continue;
    addValues(into, rid, param, evaluate(param.expression as CompiledExpression, [root], root), baseUrl);
  }
  return into;
}

