/**
 * Parses search parameters into a query the SQL builder can run: filters (AND of OR-lists),
 * chains, _has, sort, paging, includes and result shaping. Unknown parameters become
 * warnings (or a 400 under Prefer: handling=strict); malformed values and unsupported
 * modifiers are always a 400.
 */
import type { OperationOutcomeIssue } from '@medplum/fhirtypes';
import { isKnownResourceType } from '../fhir/definitions';
import { errors, issue } from '../fhir/outcome';
import { parseElements, parseSummary, type SummaryMode } from '../fhir/summary';
import { paramsOf, type ParamInfo } from './registry';
import { splitUnescaped } from './values';

export interface Filter {
  /** The parameter on each resource type in scope (several for a system search). */
  params: ParamInfo[];
  modifier?: string;
  /** OR-ed values, split on unescaped commas (other escapes kept for the value parsers). */
  values: string[];
  /** A chained search: the filter applies to the referenced resources of these types. */
  chain?: { targetType: string; filter: Filter | HasFilter }[];
  /** :in and :not-in: the codes of the value sets named by the values, once expanded (valuesets.ts). */
  codes?: { system: string; code: string }[];
}

/** _has:Type:reference:...: resources referenced by Type resources that match the inner filter. */
export interface HasFilter {
  has: { sourceType: string; reference: ParamInfo; filter: Filter | HasFilter };
}

export type AnyFilter = Filter | HasFilter;

export interface SortRule {
  params: ParamInfo[];
  descending: boolean;
}

export interface IncludeRule {
  /** Source type, reference parameter (undefined for *), optional target type. */
  sourceType: string;
  param?: ParamInfo;
  targetType?: string;
  iterate: boolean;
}

export interface SearchQuery {
  resourceTypes: string[];
  filters: AnyFilter[];
  sort: SortRule[];
  count: number;
  total?: 'none' | 'estimate' | 'accurate';
  summary?: SummaryMode;
  elements?: string[];
  include: IncludeRule[];
  revinclude: IncludeRule[];
  pageToken?: string;
  /** The parameters the query used, for the self link. */
  used: [string, string][];
  warnings: OperationOutcomeIssue[];
}

const RESULT_PARAMS = new Set(['_count', '_sort', '_total', '_summary', '_elements', '_include', '_revinclude', '_page', '_format', '_pretty', '_type', '_contained', '_containedType']);
const UNSUPPORTED = new Set(['_text', '_content', '_list', '_query', '_filter']);

const MODIFIERS: Record<string, Set<string>> = {
  string: new Set(['exact', 'contains', 'missing']),
  token: new Set(['text', 'not', 'of-type', 'in', 'not-in', 'missing']),
  reference: new Set(['identifier', 'missing']),
  date: new Set(['missing']),
  number: new Set(['missing']),
  quantity: new Set(['missing']),
  uri: new Set(['above', 'below', 'missing']),
  composite: new Set(['missing']),
};

interface Context {
  strict: boolean;
  warnings: OperationOutcomeIssue[];
  maxCount: number;
}

function unknown(ctx: Context, name: string, why: string): undefined {
  if (ctx.strict) {
    throw errors.badRequest(`Unknown search parameter "${name}": ${why}`, name);
  }
  ctx.warnings.push(issue('warning', 'not-supported', `The search parameter "${name}" was ignored: ${why}`, name));
  return undefined;
}

function paramFor(types: string[], code: string): ParamInfo[] | undefined {
  const params = types.map((t) => paramsOf(t).get(code));
  return params.every((p): p is ParamInfo => p !== undefined) ? params : undefined;
}

/** Parses "code[:modifier][.chain...]" for these types. */
function parseFilter(ctx: Context, types: string[], name: string, rawValue: string): AnyFilter | undefined {
  if (name.startsWith('_has:')) {
    if (types.length !== 1) throw errors.badRequest('_has needs a single resource type', name);
    return parseHas(ctx, types[0], name, rawValue);
  }
  const dot = name.indexOf('.');
  const head = dot >= 0 ? name.slice(0, dot) : name;
  const rest = dot >= 0 ? name.slice(dot + 1) : undefined;
  const [code, modifier] = head.split(':', 2) as [string, string | undefined];
  const params = paramFor(types, code);
  if (!params) {
    return unknown(ctx, name, `${code} is not a search parameter of ${types.join(', ')}`);
  }
  const kind = params[0].kind;
  if (params.some((p) => p.kind !== kind)) {
    throw errors.badRequest(`${code} has different types on ${types.join(', ')}`, name);
  }
  if (rest !== undefined) {
    if (kind !== 'reference') throw errors.badRequest(`Only reference parameters can be chained: ${name}`, name);
    if (types.length !== 1) throw errors.badRequest('Chained parameters need a single resource type', name);
    const targets = modifier ? [modifier] : params[0].targets;
    if (modifier && !params[0].targets.includes(modifier)) {
      throw errors.badRequest(`${code} cannot refer to ${modifier}`, name);
    }
    const chain: Filter['chain'] = [];
    for (const target of targets) {
      const innerCode = rest.split(/[.:]/)[0];
      if (!innerCode.startsWith('_has') && !paramsOf(target).has(innerCode)) continue;
      const inner = parseFilter({ ...ctx, strict: true, warnings: [] }, [target], rest, rawValue);
      if (inner) chain.push({ targetType: target, filter: inner });
    }
    if (chain.length === 0) {
      return unknown(ctx, name, `no resource type ${code} refers to has a parameter ${rest}`);
    }
    return { params, values: [], chain };
  }
  if (modifier !== undefined) {
    const allowed = MODIFIERS[kind] ?? new Set();
    const isTypeModifier = kind === 'reference' && isKnownResourceType(modifier);
    if (!allowed.has(modifier) && !isTypeModifier) {
      // Spec: a server rejects a search with a modifier it does not support.
      throw errors.badRequest(`The modifier :${modifier} is not supported on ${code} (a ${kind} parameter)`, name);
    }
    if (isTypeModifier && !params[0].targets.includes(modifier)) {
      throw errors.badRequest(`${code} cannot refer to ${modifier}`, name);
    }
  }
  if (modifier === 'missing' && rawValue !== 'true' && rawValue !== 'false') {
    throw errors.badRequest(`:missing takes true or false, got "${rawValue}"`, name);
  }
  // The values of a parameter are OR-ed; each keeps its other escapes for its own parser.
  const values = splitUnescaped(rawValue, ',', true).filter((v) => v !== '');
  if (values.length === 0) {
    throw errors.badRequest(`The search parameter ${name} has no value`, name);
  }
  return { params, modifier, values };
}

/** _has:Observation:patient:code=1234 (and nested _has). */
function parseHas(ctx: Context, targetType: string, name: string, rawValue: string): AnyFilter | undefined {
  const parts = name.split(':');
  // _has, sourceType, referenceParam, rest...
  const [, sourceType, referenceCode, ...rest] = parts;
  if (!sourceType || !referenceCode || rest.length === 0) {
    throw errors.badRequest(`Malformed _has parameter "${name}": expected _has:Type:reference:parameter`, name);
  }
  if (!isKnownResourceType(sourceType)) throw errors.badRequest(`Unknown resource type ${sourceType} in ${name}`, name);
  const reference = paramsOf(sourceType).get(referenceCode);
  if (!reference || reference.kind !== 'reference') {
    throw errors.badRequest(`${referenceCode} is not a reference parameter of ${sourceType}`, name);
  }
  if (!reference.targets.includes(targetType)) {
    throw errors.badRequest(`${sourceType}.${referenceCode} cannot refer to ${targetType}`, name);
  }
  const innerName = rest.join(':');
  const innerCode = innerName.split(/[.:]/)[0];
  if (innerCode !== '_has' && !paramsOf(sourceType).has(innerCode)) {
    // As for a chain: an unknown parameter at the end is ignored with a warning, or a 400 under handling=strict.
    return unknown(ctx, name, `${innerCode} is not a search parameter of ${sourceType}`);
  }
  // The same context: an unknown parameter further in (a nested _has, a chain) is reported like
  // this one, and makes the whole _has ignored.
  const inner = parseFilter(ctx, [sourceType], innerName, rawValue);
  return inner ? { has: { sourceType, reference, filter: inner } } : undefined;
}

function parseSort(types: string[], raw: string): SortRule[] {
  return raw
    .split(',')
    .filter(Boolean)
    .map((key) => {
      const descending = key.startsWith('-');
      const code = descending ? key.slice(1) : key;
      const params = paramFor(types, code);
      if (!params || ['composite', 'special'].includes(params[0].kind)) {
        throw errors.badRequest(`Cannot sort by "${code}": not a sortable search parameter of ${types.join(', ')}`, '_sort');
      }
      return { params, descending };
    });
}

function parseInclude(raw: string, name: string, iterate: boolean): IncludeRule {
  if (raw === '*') {
    return { sourceType: '*', iterate };
  }
  const [sourceType, code, targetType] = raw.split(':');
  if (!sourceType || !isKnownResourceType(sourceType)) {
    throw errors.badRequest(`${name}=${raw}: expected Type:parameter[:targetType]`, name);
  }
  if (code === '*') {
    return { sourceType, iterate };
  }
  const param = code ? paramsOf(sourceType).get(code) : undefined;
  if (!param || param.kind !== 'reference') {
    throw errors.badRequest(`${name}=${raw}: ${code} is not a reference parameter of ${sourceType}`, name);
  }
  if (targetType && !param.targets.includes(targetType)) {
    throw errors.badRequest(`${name}=${raw}: ${sourceType}.${code} cannot refer to ${targetType}`, name);
  }
  return { sourceType, param, targetType, iterate };
}

/**
 * Bounds on one search's size. Each parameter, value and sort key becomes SQL of its own, so
 * without them a single request (20,000 repeated parameters, 3,000 sort keys) runs for
 * minutes or fails inside PostgreSQL; and the audit trail records a search once per patient
 * it names (BALP), so the values in all bound the AuditEvents one request can cause. Real
 * clients stay far below them.
 */
export const SEARCH_LIMITS = { parameters: 100, values: 1000, sortKeys: 10 };

function assertSearchSize(params: [string, string][]): void {
  if (params.length > SEARCH_LIMITS.parameters) {
    throw errors.tooCostly(`A search takes at most ${SEARCH_LIMITS.parameters} parameters; this one has ${params.length}`);
  }
  let values = 0;
  let sortKeys = 0;
  for (const [name, value] of params) {
    // Counted on the raw text: an escaped comma (\,) only makes the count larger, never smaller.
    const count = value.split(',').length;
    values += count;
    if (name === '_sort') sortKeys += count;
  }
  if (values > SEARCH_LIMITS.values) {
    throw errors.tooCostly(`A search takes at most ${SEARCH_LIMITS.values} comma-separated values in all its parameters; this one has ${values}`);
  }
  if (sortKeys > SEARCH_LIMITS.sortKeys) {
    throw errors.tooCostly(`_sort takes at most ${SEARCH_LIMITS.sortKeys} keys; this search has ${sortKeys}`, '_sort');
  }
}

export function parseSearch(
  resourceTypes: string[],
  params: [string, string][],
  options: {
    strict: boolean;
    defaultCount: number;
    maxCount: number;
    /** A type-level search ([type]?...): the URL fixes the type, so _type is not supported there. */
    typeInPath?: boolean;
    /**
     * A search ignores parameters with an empty value (search.html: "Empty parameters are not
     * an error - they are just ignored by the server"). Criteria that act on data (conditional
     * interactions, scope filters) leave this off: ignoring a criterion there would widen what
     * they touch, so an empty value stays a 400.
     */
    ignoreEmpty?: boolean;
  }
): SearchQuery {
  assertSearchSize(params);
  const ctx: Context = { strict: options.strict, warnings: [], maxCount: options.maxCount };
  const query: SearchQuery = {
    resourceTypes,
    filters: [],
    sort: [],
    count: options.defaultCount,
    include: [],
    revinclude: [],
    used: [],
    warnings: ctx.warnings,
  };
  for (const [name, value] of params) {
    if (options.ignoreEmpty && /^,*$/.test(value)) continue;
    const base = name.split(':')[0];
    if (RESULT_PARAMS.has(base)) {
      // Only _include and _revinclude take a modifier (:iterate, or R3's :recurse); any other
      // would be silently dropped (R3's _sort:desc would sort ascending), so it is refused.
      const includeModifier = base === '_include' || base === '_revinclude' ? /^(:iterate|:recurse)?$/ : /^$/;
      if (!includeModifier.test(name.slice(base.length))) {
        throw errors.badRequest(`The modifier :${name.slice(base.length + 1)} is not supported on ${base}`, name);
      }
      switch (base) {
        case '_count': {
          if (!/^\d{1,9}$/.test(value)) throw errors.badRequest(`_count must be a non-negative integer, got "${value}"`, '_count');
          query.count = Math.min(Number(value), options.maxCount);
          // The self link shows the page size used: capped at the maximum, and once if repeated.
          query.used = query.used.filter(([k]) => k !== '_count');
          query.used.push(['_count', String(query.count)]);
          continue;
        }
        case '_sort':
          // A repeated _sort adds keys after the earlier ones.
          query.sort.push(...parseSort(resourceTypes, value));
          break;
        case '_total':
          if (!['none', 'estimate', 'accurate'].includes(value)) throw errors.badRequest(`_total must be none, estimate or accurate`, '_total');
          query.total = value as SearchQuery['total'];
          break;
        case '_summary':
          query.summary = parseSummary(value);
          break;
        case '_elements':
          query.elements = parseElements(value);
          break;
        case '_include':
        case '_revinclude': {
          const iterate = name.endsWith(':iterate') || name.endsWith(':recurse');
          const list = base === '_include' ? query.include : query.revinclude;
          list.push(parseInclude(value, name, iterate));
          break;
        }
        case '_page':
          query.pageToken = value;
          continue; // never part of the self link's criteria
        case '_contained':
        case '_containedType':
          // Only the defaults (no contained resources searched, containers returned) are supported;
          // anything else is ignored like an unknown parameter, so it is not in the self link either.
          if (value !== (base === '_contained' ? 'false' : 'container')) {
            unknown(ctx, name, 'searching contained resources is not supported');
            continue;
          }
          break;
        case '_type':
          // search.html 3.1.1.4: an unsupported parameter is an error under handling=strict,
          // else ignored with a warning and left out of the self link, which shows what was used.
          if (options.typeInPath) {
            unknown(ctx, name, `_type applies to system and compartment searches; this search is on ${resourceTypes[0]}, the type in the URL`);
            continue;
          }
          break;
        default:
          break;
      }
      if (base !== '_format' && base !== '_pretty') query.used.push([name, value]);
      continue;
    }
    if (UNSUPPORTED.has(base)) {
      unknown(ctx, name, `${base} is not supported by this server`);
      continue;
    }
    const filter = parseFilter(ctx, resourceTypes, name, value);
    if (filter) {
      query.filters.push(filter);
      query.used.push([name, value]);
    }
  }
  return query;
}
