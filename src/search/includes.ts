/**
 * _include and _revinclude (with :iterate and *): resources referenced by, or referencing,
 * the page's matches, fetched through the reference index and the caller's access filter.
 */
import type { RequestContext } from '../fhir/context';
import { issue } from '../fhir/outcome';
import { sql, type Sql } from '../store/sql';
import { STORED_COLUMNS, StoredResource } from '../store/stored-resource';
import type { IncludeRule, SearchQuery } from './parse';
import { paramsOf, referencesTo } from './registry';

/** Iterations of :iterate rules, beyond which inclusion stops. */
const MAX_ITERATIONS = 4;

interface Row {
  rid: string;
  stored: StoredResource;
}

function referenceKeys(rule: IncludeRule, sourceTypes: Set<string>): number[] {
  if (rule.param) return [rule.param.key];
  const types = rule.sourceType === '*' ? [...sourceTypes] : [rule.sourceType];
  return types.flatMap((t) => [...paramsOf(t).values()].filter((p) => p.kind === 'reference').map((p) => p.key));
}

async function fetchRows(ctx: RequestContext, condition: Sql, resourceType: string | undefined, limit: number): Promise<Row[]> {
  const access = ctx.access.readFilter(resourceType);
  const result = await (ctx.tx ?? ctx.services.db).query<{ rid: string }>(
    sql`SELECT r.rid, ${STORED_COLUMNS} FROM resource r
        WHERE NOT r.deleted AND ${condition}
          ${resourceType ? sql`AND r.resource_type = ${resourceType}` : sql``}
          ${access ? sql`AND (${access})` : sql``}
        LIMIT ${limit}`.jsonAsText()
  );
  return result.rows.map((row) => ({ rid: row.rid, stored: StoredResource.fromRow(row) }));
}

function applies(rule: IncludeRule, rows: Row[]): Row[] {
  return rule.sourceType === '*' ? rows : rows.filter((r) => r.stored.resourceType === rule.sourceType);
}

export interface Included {
  resources: StoredResource[];
  warnings: ReturnType<typeof issue>[];
}

export async function loadIncludes(ctx: RequestContext, query: SearchQuery, matches: Row[], max: number): Promise<Included> {
  const seen = new Set(matches.map((m) => m.rid));
  const included: Row[] = [];
  const warnings: ReturnType<typeof issue>[] = [];
  let budget = max;

  const add = (rows: Row[]): Row[] => {
    const fresh = rows.filter((r) => !seen.has(r.rid));
    fresh.forEach((r) => seen.add(r.rid));
    included.push(...fresh);
    budget -= fresh.length;
    return fresh;
  };

  const forward = async (rule: IncludeRule, sources: Row[]) => {
    const from = applies(rule, sources);
    if (from.length === 0 || budget <= 0) return [];
    const keys = referenceKeys(rule, new Set(from.map((r) => r.stored.resourceType)));
    if (keys.length === 0) return [];
    const condition = sql`r.rid IN (SELECT target_rid FROM sp_reference
                                    WHERE rid = ANY(${from.map((r) => r.rid)}::uuid[]) AND p = ANY(${keys}::int4[]))`;
    return add(await fetchRows(ctx, condition, rule.targetType, budget + 1));
  };

  const reverse = async (rule: IncludeRule, targets: Row[]) => {
    if (targets.length === 0 || budget <= 0) return [];
    // _revinclude=*: every resource that refers to a match through any reference parameter
    // that may point to the matches' types (so the (p, target_rid) index serves it too).
    const anySource = rule.sourceType === '*';
    const keys = anySource
      ? [...new Set(targets.map((t) => t.stored.resourceType))].flatMap((t) => referencesTo(t).map((p) => p.key))
      : referenceKeys(rule, new Set());
    const condition = sql`r.rid IN (SELECT rid FROM sp_reference
                                    WHERE p = ANY(${keys}::int4[]) AND target_rid = ANY(${targets.map((r) => r.rid)}::uuid[]))`;
    return add(await fetchRows(ctx, condition, anySource ? undefined : rule.sourceType, budget + 1));
  };

  for (const rule of query.include) await forward(rule, matches);
  for (const rule of query.revinclude) await reverse(rule, matches);

  const iterating = [...query.include.filter((r) => r.iterate), ...query.revinclude.filter((r) => r.iterate)];
  let frontier = included.slice();
  for (let i = 0; i < MAX_ITERATIONS && frontier.length && iterating.length; i++) {
    const next: Row[] = [];
    for (const rule of query.include.filter((r) => r.iterate)) next.push(...(await forward(rule, frontier)));
    for (const rule of query.revinclude.filter((r) => r.iterate)) next.push(...(await reverse(rule, frontier)));
    frontier = next;
  }
  if (budget < 0) {
    included.length = max;
    warnings.push(issue('warning', 'too-costly', `Only the first ${max} included resources are returned`));
  }
  return { resources: included.map((r) => r.stored), warnings };
}
