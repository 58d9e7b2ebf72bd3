/**
 * Turns parsed filters into SQL conditions over the resource alias `r`. Most filters are a
 * set of rids from one search index table (`SELECT rid FROM sp_x WHERE ...`), uncorrelated,
 * so the planner can start from the most selective index; the sets of a search are
 * intersected before any resource row is read (filtersConditions). Chains and _has select
 * their resources through the caller's access filter too: a resource the caller may not see
 * never makes another one match.
 */
import type { RequestContext } from '../fhir/context';
import { errors } from '../fhir/outcome';
import { ridOf } from '../store/rid';
import { sql, type Sql } from '../store/sql';
import type { AnyFilter, Filter, HasFilter } from './parse';
import { referenceTarget } from '../fhir/references';
import { paramKey, type ParamInfo, type ParamKind } from './registry';
import { escapeLike, normalizeText } from './text';
import {
  parseDateValue,
  parseNumberValue,
  parseQuantityValue,
  parseTokenValue,
  splitUnescaped,
  unescapeValue,
  type DateValue,
  type NumberValue,
  type TokenQuery,
} from './values';

export const TABLE: Record<Exclude<ParamKind, 'special'>, string> = {
  string: 'sp_string',
  token: 'sp_token',
  date: 'sp_date',
  number: 'sp_number',
  quantity: 'sp_quantity',
  uri: 'sp_uri',
  reference: 'sp_reference',
  composite: 'sp_composite',
};

/** A filter as a set of matching rids (`SELECT rid ...`), or as a condition on the resource row `r`. */
type Matches = { rids: Sql } | { condition: Sql };

const keysOf = (params: ParamInfo[]) => params.map((p) => p.key);
const name = (filter: Filter) => `${filter.params[0].code}${filter.modifier ? ':' + filter.modifier : ''}`;

/** Resources of a type that the caller may see (for chains, _has and includes). */
export function visibleOfType(ctx: RequestContext, resourceType: string, condition: Sql): Sql {
  const access = ctx.access.readFilter(resourceType);
  return sql`SELECT r.rid FROM resource r
             WHERE r.resource_type = ${resourceType} AND NOT r.deleted AND ${condition}${access ? sql` AND (${access})` : sql``}`;
}

export function dateCondition(lo: Sql, hi: Sql, q: DateValue): Sql {
  switch (q.prefix) {
    case 'eq':
      // lo <= hi, so lo <= q.hi is implied; stated, it bounds the (p, lo, hi) index scan on
      // both sides (a birth date is one day of the index, not every date since it).
      return sql`(${lo} >= ${q.lo}::timestamptz AND ${lo} <= ${q.hi}::timestamptz AND ${hi} <= ${q.hi}::timestamptz)`;
    case 'ne':
      return sql`(${lo} < ${q.lo}::timestamptz OR ${hi} > ${q.hi}::timestamptz)`;
    case 'gt':
      return sql`${hi} > ${q.hi}::timestamptz`;
    case 'lt':
      return sql`${lo} < ${q.lo}::timestamptz`;
    // ge and le: gt (lt) or eq. The leading bound is implied by both branches; it is there so
    // that one range scan of the (p, hi) or (p, lo, hi) index finds every candidate.
    case 'ge':
      return sql`(${hi} >= ${q.lo}::timestamptz AND (${hi} > ${q.hi}::timestamptz OR (${lo} >= ${q.lo}::timestamptz AND ${hi} <= ${q.hi}::timestamptz)))`;
    case 'le':
      return sql`(${lo} <= ${q.hi}::timestamptz AND (${lo} < ${q.lo}::timestamptz OR (${lo} >= ${q.lo}::timestamptz AND ${hi} <= ${q.hi}::timestamptz)))`;
    case 'sa':
      return sql`${lo} > ${q.hi}::timestamptz`;
    case 'eb':
      return sql`${hi} < ${q.lo}::timestamptz`;
    case 'ap': {
      // Approximately: overlapping the value widened by 10% of its distance from now (at least a day).
      const distance = Math.abs(Date.now() - Date.parse(q.lo));
      const margin = Math.max(86_400_000, distance * 0.1);
      const wideLo = new Date(Date.parse(q.lo) - margin).toISOString();
      const wideHi = new Date(Date.parse(q.hi) + margin).toISOString();
      return sql`(${lo} <= ${wideHi}::timestamptz AND ${hi} >= ${wideLo}::timestamptz)`;
    }
  }
}

export function numberCondition(column: Sql, q: NumberValue): Sql {
  const v = q.text;
  switch (q.prefix) {
    case 'eq':
      return sql`(${column} >= ${q.lo}::numeric AND ${column} < ${q.hi}::numeric)`;
    case 'ne':
      return sql`(${column} < ${q.lo}::numeric OR ${column} >= ${q.hi}::numeric)`;
    case 'gt':
    case 'sa':
      return sql`${column} > ${v}::numeric`;
    case 'lt':
    case 'eb':
      return sql`${column} < ${v}::numeric`;
    case 'ge':
      return sql`${column} >= ${v}::numeric`;
    case 'le':
      return sql`${column} <= ${v}::numeric`;
    case 'ap': {
      const margin = Math.abs(q.value) * 0.1;
      return sql`${column} BETWEEN ${String(q.value - margin)}::numeric AND ${String(q.value + margin)}::numeric`;
    }
  }
}

export function tokenCondition(system: Sql, code: Sql, q: TokenQuery): Sql {
  const parts: Sql[] = [];
  if (q.system === null) parts.push(sql`${system} IS NULL`);
  else if (q.system !== undefined) parts.push(sql`${system} = ${q.system}`);
  if (q.code !== undefined) parts.push(sql`${code} = ${q.code}`);
  if (parts.length === 0) throw errors.badRequest('A token value needs a system or a code');
  return sql.and(parts);
}

function stringCondition(filter: Filter, value: string): Sql {
  if (filter.modifier === 'exact') return sql`exact = ${value}`;
  const norm = escapeLike(normalizeText(value));
  return filter.modifier === 'contains' ? sql`norm LIKE ${'%' + norm + '%'}` : sql`norm LIKE ${norm + '%'}`;
}

function quantityCondition(value: string, filterName: string): Sql {
  const q = parseQuantityValue(value, filterName);
  const parts = [numberCondition(sql`value`, q)];
  // With a system the code is a coded unit (UCUM mg); without one it may also be the unit as written.
  if (q.system) parts.push(sql`system = ${q.system}`);
  if (q.code) parts.push(q.system ? sql`code = ${q.code}` : sql`(code = ${q.code} OR unit = ${q.code})`);
  return sql.and(parts);
}

function uriCondition(filter: Filter, value: string): Sql {
  if (filter.modifier === 'below') return sql`value LIKE ${escapeLike(value) + '%'}`;
  if (filter.modifier === 'above') {
    // Every prefix of the URL at a "/" boundary, and the URL itself.
    const prefixes: string[] = [];
    const parts = value.split('/');
    for (let i = 3; i <= parts.length; i++) prefixes.push(parts.slice(0, i).join('/'));
    return sql`value = ANY(${prefixes.length ? prefixes : [value]}::text[])`;
  }
  return sql`value = ${value}`;
}

const ID = /^[A-Za-z0-9\-.]{1,64}$/;

function referenceCondition(ctx: RequestContext, filter: Filter, value: string): Sql {
  const param = filter.params[0];
  const typeModifier = filter.modifier && filter.modifier !== 'identifier' ? filter.modifier : undefined;
  const target = referenceTarget(value, ctx.baseUrl);
  if (target?.local && target.id) {
    if (typeModifier && target.type !== typeModifier) throw errors.badRequest(`${value} is not a ${typeModifier}`, name(filter));
    return sql`target_rid = ${ridOf(target.type, target.id)}::uuid`;
  }
  if (ID.test(value)) {
    const types = typeModifier ? [typeModifier] : param.targets;
    return sql`target_rid = ANY(${types.map((t) => ridOf(t, value))}::uuid[])`;
  }
  return sql`url = ${value.split('|')[0]}`;
}

function compositeCondition(filter: Filter, value: string): Sql {
  const param = filter.params[0];
  const shape = param.composite!.shape;
  const parts = splitUnescaped(value, '$', true);
  const expected = shape.split('+').length;
  if (parts.length !== expected) {
    throw errors.badRequest(`${param.code} takes ${expected} components separated by $, got "${value}"`, name(filter));
  }
  const conditions: Sql[] = [];
  const [first, second, third] = parts;
  if (shape === 'reference+token') {
    const ref = referenceTarget(unescapeValue(first));
    if (!ref?.id) throw errors.badRequest(`The first component of ${param.code} must be a Type/id reference`, name(filter));
    conditions.push(sql`ref_rid = ${ridOf(ref.type, ref.id)}::uuid`);
    conditions.push(tokenCondition(sql`t1_system`, sql`t1_code`, parseTokenValue(second)));
    return sql.and(conditions);
  }
  conditions.push(tokenCondition(sql`t1_system`, sql`t1_code`, parseTokenValue(first)));
  switch (shape) {
    case 'token+token':
      conditions.push(tokenCondition(sql`t2_system`, sql`t2_code`, parseTokenValue(second)));
      break;
    case 'token+quantity': {
      const q = parseQuantityValue(second, name(filter));
      conditions.push(numberCondition(sql`num1`, q));
      if (q.system) conditions.push(sql`t2_system = ${q.system}`);
      if (q.code) conditions.push(sql`t2_code = ${q.code}`);
      break;
    }
    case 'token+number+number':
      conditions.push(numberCondition(sql`num1`, parseNumberValue(second, name(filter))));
      conditions.push(numberCondition(sql`num2`, parseNumberValue(third, name(filter))));
      break;
    case 'token+date':
      conditions.push(dateCondition(sql`lo`, sql`hi`, parseDateValue(second, name(filter))));
      break;
    case 'token+string':
      conditions.push(sql`str LIKE ${escapeLike(normalizeText(unescapeValue(second))) + '%'}`);
      break;
  }
  return sql.and(conditions);
}

/** The condition one value of a filter puts on its index table's columns. */
function valueCondition(ctx: RequestContext, filter: Filter, value: string): Sql {
  switch (filter.params[0].kind) {
    case 'string':
      return stringCondition(filter, unescapeValue(value));
    case 'token': {
      if (filter.modifier === 'text') return sql`display LIKE ${escapeLike(normalizeText(unescapeValue(value))) + '%'}`;
      return tokenCondition(sql`system`, sql`code`, parseTokenValue(value));
    }
    case 'date':
      return dateCondition(sql`lo`, sql`hi`, parseDateValue(value, name(filter)));
    case 'number':
      return numberCondition(sql`value`, parseNumberValue(value, name(filter)));
    case 'quantity':
      return quantityCondition(value, name(filter));
    case 'uri':
      return uriCondition(filter, unescapeValue(value));
    case 'reference':
      return referenceCondition(ctx, filter, unescapeValue(value));
    case 'composite':
      return compositeCondition(filter, value);
    default:
      throw errors.badRequest(`${filter.params[0].code} cannot be searched`, name(filter));
  }
}

/** Token rows whose system|code is one of the expanded codes (see valuesets.ts). */
function valueSetCondition(filter: Filter): Sql {
  if (!filter.codes) {
    throw errors.badRequest(`${name(filter)} needs a value set expansion, which is not available here`, name(filter));
  }
  if (filter.codes.length === 0) return sql`FALSE`;
  const systems = filter.codes.map((c) => c.system);
  const codes = filter.codes.map((c) => c.code);
  return sql`(system, code) IN (SELECT s, c FROM unnest(${systems}::text[], ${codes}::text[]) AS v(s, c))`;
}

function rowParamCondition(filter: Filter): Sql {
  const code = filter.params[0].code;
  if (filter.modifier === 'missing') {
    return filter.values[0] === 'true' ? sql`FALSE` : sql`TRUE`;
  }
  if (code === '_id') {
    const ids = filter.values;
    const rids = filter.params.flatMap((p) => ids.map((id) => ridOf(p.resourceType, id)));
    const matches = sql`r.rid = ANY(${rids}::uuid[])`;
    return filter.modifier === 'not' ? sql`NOT ${matches}` : matches;
  }
  // _lastUpdated: the row's instant, a range of one millisecond.
  return sql.or(filter.values.map((v) => dateCondition(sql`r.last_updated`, sql`r.last_updated`, parseDateValue(v, '_lastUpdated'))));
}

function paramCondition(ctx: RequestContext, filter: Filter): Matches {
  const { params } = filter;
  const kind = params[0].kind as Exclude<ParamKind, 'special'>;
  if (params[0].code === '_id' || params[0].code === '_lastUpdated') {
    return { condition: rowParamCondition(filter) };
  }
  if (filter.chain) {
    // One semi-join over the matching targets of every type, so the reference index is probed once.
    const targets = sql.join(
      filter.chain.map(({ targetType, filter: inner }) => visibleOfType(ctx, targetType, filterCondition(ctx, inner))),
      ' UNION ALL '
    );
    return { rids: sql`SELECT rid FROM sp_reference WHERE p = ANY(${keysOf(params)}::int4[]) AND target_rid IN (${targets})` };
  }
  let table = TABLE[kind];
  let keys = keysOf(params);
  if (filter.modifier === 'missing') {
    const present = sql`SELECT rid FROM ${sql.raw(table)} WHERE p = ANY(${keys}::int4[])`;
    return filter.values[0] === 'true' ? { condition: sql`NOT r.rid IN (${present})` } : { rids: present };
  }
  let conditions: Sql[];
  if (filter.modifier === 'in' || filter.modifier === 'not-in') {
    conditions = [valueSetCondition(filter)];
  } else if (filter.modifier === 'identifier' || filter.modifier === 'of-type') {
    // Stored as tokens under a derived key (see extract.ts).
    table = 'sp_token';
    keys = params.map((p) => paramKey(p.resourceType, `${p.code}:${filter.modifier}`));
    conditions = filter.values.map((v) => {
      if (filter.modifier === 'identifier') return tokenCondition(sql`system`, sql`code`, parseTokenValue(v));
      const [system, code, value] = splitUnescaped(v, '|');
      if (!code || value === undefined) throw errors.badRequest(`:of-type takes system|code|value, got "${v}"`, name(filter));
      return sql.and([sql`system = ${system}`, sql`code = ${code + '|' + value}`]);
    });
  } else {
    conditions = filter.values.map((v) => valueCondition(ctx, filter, v));
  }
  const matching = sql`SELECT rid FROM ${sql.raw(table)} WHERE p = ANY(${keys}::int4[]) AND ${sql.or(conditions)}`;
  return filter.modifier === 'not' || filter.modifier === 'not-in' ? { condition: sql`NOT r.rid IN (${matching})` } : { rids: matching };
}

function hasCondition(ctx: RequestContext, filter: HasFilter): Matches {
  const { sourceType, reference, filter: inner } = filter.has;
  const sources = visibleOfType(ctx, sourceType, filterCondition(ctx, inner));
  return { rids: sql`SELECT target_rid AS rid FROM sp_reference WHERE p = ${reference.key} AND rid IN (${sources})` };
}

function filterMatches(ctx: RequestContext, filter: AnyFilter): Matches {
  return 'has' in filter ? hasCondition(ctx, filter) : paramCondition(ctx, filter);
}

function filterCondition(ctx: RequestContext, filter: AnyFilter): Sql {
  const matches = filterMatches(ctx, filter);
  return 'rids' in matches ? sql`r.rid IN (${matches.rids})` : matches.condition;
}

/**
 * The conditions of all the filters of a search (ANDed). The rid sets of the filters are
 * intersected among themselves before the resource rows are joined: written as one
 * `r.rid IN (...)` each, every semi-join's left side is the resource row, so PostgreSQL must
 * fetch each candidate resource (a heap page apiece) before it can test the other filters.
 * Nested on the first set's rid instead, the other sets are probed in the index-only rid
 * indexes, and only the resources that match them all are fetched: for
 * Observation?patient&code&date, 5 rows instead of the patient's 130 observations.
 */
export function filtersConditions(ctx: RequestContext, filters: AnyFilter[]): Sql[] {
  const sets: Sql[] = [];
  const conditions: Sql[] = [];
  for (const filter of filters) {
    const matches = filterMatches(ctx, filter);
    if ('rids' in matches) sets.push(matches.rids);
    else conditions.push(matches.condition);
  }
  if (sets.length === 1) {
    conditions.unshift(sql`r.rid IN (${sets[0]})`);
  } else if (sets.length > 1) {
    const [first, ...rest] = sets;
    conditions.unshift(sql`r.rid IN (SELECT m.rid FROM (${first}) m WHERE ${sql.and(rest.map((rids) => sql`m.rid IN (${rids})`))})`);
  }
  return conditions;
}
