/**
 * The SearchEngine: type, system and compartment searches answered as searchset Bundles,
 * conditional-interaction matching, SQL conditions for granular scopes, and the search part
 * of the CapabilityStatement.
 */
import type { Bundle, BundleEntry, BundleLink, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import type { RequestContext } from '../fhir/context';
import { getResourceTypeList, isKnownResourceType, patientCompartmentParams } from '../fhir/definitions';
import { errors, outcome } from '../fhir/outcome';
import { storedEntry } from '../fhir/json-body';
import { keepsWhole, subsetResource } from '../fhir/summary';
import type { SearchCapability, SearchEngine, SearchRequest } from '../services';
import { sql, type Sql } from '../store/sql';
import type { StoredResource } from '../store/stored-resource';
import { filtersConditions } from './conditions';
import { loadIncludes } from './includes';
import { parseSearch, type SearchQuery } from './parse';
import { countMatches, pageTokens, runPage, whereClause } from './query';
import { paramsOf, referencesTo } from './registry';
import { expandValueSets } from './valuesets';

const SYSTEM_PARAMS = ['_id', '_lastUpdated', '_tag', '_profile', '_security', '_source'];

function compartmentTypes(): string[] {
  return ['Patient', ...getResourceTypeList().filter((t) => patientCompartmentParams(t).length > 0)];
}

/** The types a request searches, and the extra condition a compartment adds. */
function scope(request: SearchRequest): { types: string[]; extra: Sql[]; params: [string, string][] } {
  // A type-level search keeps _type, for parseSearch to report it as unsupported.
  const params = request.resourceType ? request.params : request.params.filter(([k]) => k !== '_type');
  // An empty _type (or an empty entry in it) is ignored, as any empty parameter of a search.
  const typeParam = request.params.filter(([k]) => k === '_type').flatMap(([, v]) => v.split(',')).filter(Boolean);
  const extra: Sql[] = [];
  let types: string[];
  if (request.resourceType) {
    types = [request.resourceType];
  } else if (typeParam.length) {
    for (const t of typeParam) {
      if (!isKnownResourceType(t)) throw errors.badRequest(`Unknown resource type "${t}" in _type`, '_type');
    }
    types = [...new Set(typeParam)];
  } else {
    // Over all types: those that have every parameter the search uses.
    const codes = params.map(([k]) => k.split(/[:.]/)[0]).filter((c) => !c.startsWith('_') || SYSTEM_PARAMS.includes(c));
    const candidates = request.compartment ? compartmentTypes() : [...getResourceTypeList()];
    const supporting = candidates.filter((t) => codes.every((c) => paramsOf(t).has(c)));
    // None at all: keep every type so that the unknown parameter is reported.
    types = supporting.length ? supporting : candidates;
  }
  if (request.compartment) {
    if (request.compartment.resourceType !== 'Patient') {
      throw errors.badRequest(`Compartment search is supported for the Patient compartment only, not ${request.compartment.resourceType}`);
    }
    extra.push(sql`r.compartments @> ARRAY[${request.compartment.id}]::text[]`);
  }
  return { types, extra, params };
}

export function linkUrl(request: Pick<SearchRequest, 'url' | 'params' | 'resourceType'>, query: SearchQuery, page?: string): string {
  const path = request.url.split('?')[0].replace(/\/_search$/, '');
  const params = new URLSearchParams(query.used);
  if (!request.resourceType && request.params.some(([k, v]) => k === '_type' && v.split(',').some(Boolean))) {
    params.set('_type', query.resourceTypes.join(','));
  }
  if (page) params.set('_page', page);
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export function entryOf(ctx: RequestContext, stored: StoredResource, mode: 'match' | 'include', query: SearchQuery): BundleEntry {
  const fullUrl = `${ctx.baseUrl}/${stored.resourceType}/${stored.id}`;
  if (keepsWhole(query.summary, query.elements)) return storedEntry(fullUrl, stored, { mode });
  return { fullUrl, resource: subsetResource(stored.resource, query.summary, query.elements), search: { mode } };
}

function outcomeEntry(warnings: OperationOutcomeIssue[]): BundleEntry[] {
  return warnings.length ? [{ resource: outcome(...warnings), search: { mode: 'outcome' } }] : [];
}

export class SqlSearchEngine implements SearchEngine {
  /** Conditions built for criteriaFilter do not apply access themselves: the caller combines them with its own rules. */
  private readonly criteriaContext: RequestContext;

  constructor(baseUrl: string) {
    this.criteriaContext = {
      baseUrl,
      access: { readFilter: () => undefined, assertInteraction: () => undefined, assertWrite: () => undefined },
    } as unknown as RequestContext;
  }

  private parse(ctx: RequestContext, types: string[], params: [string, string][], options: { strict?: boolean; typeInPath?: boolean; ignoreEmpty?: boolean }): SearchQuery {
    return parseSearch(types, params, {
      strict: options.strict ?? ctx.prefer.handling === 'strict',
      defaultCount: ctx.config.defaultPageSize,
      maxCount: ctx.config.maxPageSize,
      typeInPath: options.typeInPath,
      ignoreEmpty: options.ignoreEmpty,
    });
  }

  async search(ctx: RequestContext, request: SearchRequest): Promise<Bundle> {
    const { types, extra, params } = scope(request);
    const query = this.parse(ctx, types, params, { typeInPath: request.resourceType !== undefined, ignoreEmpty: true });
    await expandValueSets(ctx, query.filters);
    const where = whereClause(ctx, query, extra);
    const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset' };

    if (query.summary === 'count' || query.count === 0) {
      bundle.total = await countMatches(ctx, where, query.total === 'estimate');
      bundle.link = [{ relation: 'self', url: linkUrl(request, query) }];
      const warnings = outcomeEntry(query.warnings);
      if (warnings.length) bundle.entry = warnings;
      return bundle;
    }

    const page = await runPage(ctx, query, where);
    const included = await loadIncludes(ctx, query, page.rows, ctx.config.maxPageSize);
    const tokens = pageTokens(page);

    if (query.total === 'accurate' || query.total === 'estimate') {
      // Matches known without counting: this page's, and at least one on each side with a link.
      const known = page.rows.length + (page.hasNext ? 1 : 0) + (page.hasPrevious ? 1 : 0);
      bundle.total = await countMatches(ctx, where, query.total === 'estimate', known);
    } else if (query.total !== 'none' && !query.pageToken && !page.hasNext) {
      // Known without counting: everything fitted on the first page.
      bundle.total = page.rows.length;
    }
    const links: BundleLink[] = [{ relation: 'self', url: linkUrl(request, query, query.pageToken) }];
    if (query.pageToken) links.push({ relation: 'first', url: linkUrl(request, query) });
    if (tokens.previous) links.push({ relation: 'previous', url: linkUrl(request, query, tokens.previous) });
    if (tokens.next) links.push({ relation: 'next', url: linkUrl(request, query, tokens.next) });
    bundle.link = links;
    const entries = [
      ...page.rows.map((row) => entryOf(ctx, row.stored, 'match', query)),
      ...included.resources.map((stored) => entryOf(ctx, stored, 'include', query)),
      ...outcomeEntry([...query.warnings, ...included.warnings]),
    ];
    // FHIR JSON has no empty arrays (json.html): no matches, no entry element.
    if (entries.length) bundle.entry = entries;
    return bundle;
  }

  async match(ctx: RequestContext, resourceType: string, params: [string, string][], limit: number): Promise<Resource[]> {
    // Conditional interactions must not act on criteria they could not understand.
    const query = this.parse(ctx, [resourceType], params, { strict: true });
    if (query.filters.length === 0) {
      throw errors.badRequest('The conditional criteria contain no search parameter');
    }
    await expandValueSets(ctx, query.filters);
    const page = await runPage(ctx, { ...query, sort: [], pageToken: undefined }, whereClause(ctx, query), limit);
    return page.rows.map((r) => r.resource);
  }

  criteriaFilter(resourceType: string, params: [string, string][]): Sql {
    const query = parseSearch([resourceType], params, { strict: true, defaultCount: 1, maxCount: 1 });
    return sql.and(filtersConditions(this.criteriaContext, query.filters));
  }

  capability(resourceType: string | undefined): SearchCapability {
    if (!resourceType) {
      return {
        searchParam: SYSTEM_PARAMS.map((code) => {
          const p = paramsOf('Patient').get(code)!;
          return { name: code, type: p.kind as 'token', definition: p.definition.url };
        }),
        searchInclude: [],
        searchRevInclude: [],
      };
    }
    const params = [...paramsOf(resourceType).values()];
    const references = params.filter((p) => p.kind === 'reference');
    return {
      searchParam: params.map((p) => ({
        name: p.code,
        type: p.kind as 'token',
        ...(p.definition.url && { definition: p.definition.url }),
        ...(p.definition.description && { documentation: p.definition.description.split('\n')[0].slice(0, 200) }),
      })),
      searchInclude: references.length ? ['*', ...references.map((p) => `${resourceType}:${p.code}`)] : [],
      searchRevInclude: revIncludesOf(resourceType),
    };
  }
}

function revIncludesOf(resourceType: string): string[] {
  const sources = referencesTo(resourceType).map((p) => `${p.resourceType}:${p.code}`);
  return sources.length ? ['*', ...sources] : [];
}
