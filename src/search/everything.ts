/**
 * Patient/[id]/$everything: the patient, every resource in their compartment, and the
 * resources those reference (practitioners, organizations, medications, ...), in pages, with
 * start/end (care dates), _since, _type and _count. Access rules apply to every resource returned.
 */
import type { Bundle, BundleLink } from '@medplum/fhirtypes';
import type { FhirRequest, FhirResponse, RequestContext } from '../fhir/context';
import { getResourceTypeList, isKnownResourceType, patientCompartmentParams } from '../fhir/definitions';
import { errors } from '../fhir/outcome';
import type { Operation, OperationTarget } from '../fhir/operations/registry';
import { intParam, paramValue, parseInstantRange } from '../fhir/params';
import { ridOf } from '../store/rid';
import { sql, type Sql } from '../store/sql';
import { entryOf } from './engine';
import { loadIncludes } from './includes';
import type { SearchQuery } from './parse';
import { pageTokens, runPage, whereClause } from './query';
import { paramsOf } from './registry';

/**
 * The patient's record: every type of their compartment except AuditEvent and Provenance, the
 * logs of accesses to and writes of the record rather than part of it (one Provenance per
 * version would double the answer); they are read through search (Patient/[id]/Provenance).
 */
const TRAILS = new Set(['AuditEvent', 'Provenance']);
function recordTypes(): string[] {
  return ['Patient', ...getResourceTypeList().filter((t) => !TRAILS.has(t) && patientCompartmentParams(t).length > 0)];
}

/**
 * start/end: care dates. A resource is in range when its type's `date` parameter (the clinical
 * date: Observation.effective, Encounter.period, ...) overlaps [start, end]; resources without
 * such a date (the Patient, Medications, most Conditions) cannot be placed and are kept.
 */
function careDateCondition(types: string[], start: string | undefined, end: string | undefined): Sql | undefined {
  if (start === undefined && end === undefined) return undefined;
  const keys = types.map((t) => paramsOf(t).get('date')).filter((p) => p?.kind === 'date').map((p) => p!.key);
  const bounds: Sql[] = [];
  if (start !== undefined) bounds.push(sql`hi >= ${parseInstantRange(start, 'start').start}::timestamptz`);
  if (end !== undefined) bounds.push(sql`lo <= ${parseInstantRange(end, 'end').end}::timestamptz`);
  return sql`(NOT EXISTS (SELECT 1 FROM sp_date WHERE rid = r.rid AND p = ANY(${keys}::int4[]))
              OR EXISTS (SELECT 1 FROM sp_date WHERE rid = r.rid AND p = ANY(${keys}::int4[]) AND ${sql.and(bounds)}))`;
}

async function everything(ctx: RequestContext, req: FhirRequest, target: OperationTarget): Promise<FhirResponse> {
  const id = target.id as string;
  await ctx.services.repo.read(ctx, 'Patient', id);
  const typeParam = paramValue(req, '_type');
  const types = typeParam ? typeParam.split(',') : recordTypes();
  for (const t of types) {
    if (!isKnownResourceType(t)) throw errors.badRequest(`Unknown resource type "${t}" in _type`, '_type');
  }
  const since = paramValue(req, '_since');
  const count = Math.min(intParam(req, '_count') ?? ctx.config.defaultPageSize, ctx.config.maxPageSize);
  const query: SearchQuery = {
    resourceTypes: types,
    filters: [],
    sort: [],
    count,
    include: [{ sourceType: '*', iterate: false }],
    revinclude: [],
    pageToken: paramValue(req, '_page'),
    used: [],
    warnings: [],
  };
  const extra = [sql`(r.compartments @> ARRAY[${id}]::text[] OR r.rid = ${ridOf('Patient', id)}::uuid)`];
  if (since) extra.push(sql`r.last_updated >= ${parseInstantRange(since, '_since').start}::timestamptz`);
  const careDates = careDateCondition(types, paramValue(req, 'start'), paramValue(req, 'end'));
  if (careDates) extra.push(careDates);
  const page = await runPage(ctx, query, whereClause(ctx, query, extra));
  const included = await loadIncludes(ctx, query, page.rows, ctx.config.maxPageSize);
  const tokens = pageTokens(page);

  const path = `${ctx.baseUrl}/Patient/${id}/$everything`;
  const url = (token?: string) => {
    const params = new URLSearchParams(req.params.filter(([k]) => k !== '_page' && k !== '_format' && k !== '_pretty'));
    if (token) params.set('_page', token);
    const text = params.toString();
    return text ? `${path}?${text}` : path;
  };
  const links: BundleLink[] = [{ relation: 'self', url: url(query.pageToken) }];
  if (query.pageToken) links.push({ relation: 'first', url: url() });
  if (tokens.previous) links.push({ relation: 'previous', url: url(tokens.previous) });
  if (tokens.next) links.push({ relation: 'next', url: url(tokens.next) });
  const entries = [
    ...page.rows.map((row) => entryOf(ctx, row.stored, 'match', query)),
    ...included.resources
      .filter((r) => !types.length || typeParam === undefined || types.includes(r.resourceType))
      .map((r) => entryOf(ctx, r, 'include', query)),
  ];
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    ...(!query.pageToken && !page.hasNext && { total: page.rows.length }),
    link: links,
    // FHIR JSON has no empty arrays (json.html): no entries, no entry element.
    ...(entries.length > 0 && { entry: entries }),
  };
  return { status: 200, resource: bundle, audited: { patients: [id] } };
}

export const everythingOperation: Operation = {
  name: 'everything',
  definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything',
  instance: true,
  resourceTypes: ['Patient'],
  affectsState: false,
  handler: everything,
};
