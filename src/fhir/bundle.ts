/**
 * batch and transaction Bundles (POST to the base URL).
 *
 * A transaction runs in one database transaction: all entries commit or none. Entries run in
 * the order the spec prescribes (DELETE, POST, PUT/PATCH, GET/HEAD) and answer in the order
 * they came. Before anything runs, every entry's identity is settled (urn:uuid fullUrls,
 * conditional creates and updates, conditional references), so references can be rewritten
 * everywhere, including to entries that come later.
 *
 * A batch runs each entry on its own, each with its own outcome.
 */
import type { Bundle, BundleEntry, Resource } from '@medplum/fhirtypes';
import type { AuditRecord, FhirRequest, FhirResponse, RequestContext } from './context';
import { errors, FhirError, informational, issue, outcome, toFhirError } from './outcome';
import { auditRecord, executeRequest, resolveRoute, type Route } from './router';
import { systemContext } from './system-context';
import { conditionalUpdateTarget, criteriaParams, lockCriteria } from './interactions/write';
import { mintId } from '../store/rid';
import { bundleBody, entryRequest, entryResponse, ORDER } from './bundle-entry';
import { conditionalKey, rewriteReferences } from './bundle-references';

export async function processBundle(ctx: RequestContext, req: FhirRequest): Promise<FhirResponse> {
  const bundle = bundleBody(req);
  if (req.provenance) {
    throw errors.badRequest(
      'X-Provenance applies to a single create, update, patch or delete; in a transaction, add a Provenance entry that targets the entry it is about'
    );
  }
  return bundle.type === 'transaction' ? transaction(ctx, bundle) : batch(ctx, bundle);
}

async function batch(ctx: RequestContext, bundle: Bundle): Promise<FhirResponse> {
  const entries: BundleEntry[] = [];
  const fullUrls = new Set((bundle.entry ?? []).map((e) => e?.fullUrl).filter((u): u is string => typeof u === 'string'));
  const none = new Map<string, string>();
  for (const [index, entry] of (bundle.entry ?? []).entries()) {
    let response: FhirResponse;
    let request: FhirRequest | undefined;
    try {
      request = entryRequest(ctx, entry, index);
      if (request.path === '' && request.method === 'POST') {
        throw errors.badRequest(`Bundle.entry[${index}]: a Bundle cannot be nested in a batch`);
      }
      if (hasReferences(request.body)) {
        request.body = await rewriteReferences(ctx, request.body, none, index, { batchFullUrls: fullUrls });
      }
      response = await executeRequest(ctx, request);
      entries.push(entryResponse(response, request.method, ctx.prefer));
    } catch (err) {
      const error = toFhirError(err);
      response = { status: error.status, resource: error.outcome };
      // executeRequest audits what it runs; an entry refused before that (malformed, or a
      // reference that cannot be resolved) leaves its AuditEvent too.
      ctx.audit.push(entryRecord(ctx, request, index, response));
      entries.push(entryResponse(response, 'POST', ctx.prefer));
    }
  }
  return { status: 200, resource: responseBundle('batch-response', entries) };
}

/** A body whose references are rewritten: a resource, or a JSON Patch (an array of operations). */
function hasReferences(body: unknown): body is Resource | unknown[] {
  return Array.isArray(body) || Boolean((body as Resource | undefined)?.resourceType);
}

/**
 * The audit record of an entry answered without running it: a batch entry refused before it
 * ran (one too malformed to be a request counts as part of the batch), or a conditional
 * create of a transaction settled ahead (executeRequest audits everything it runs).
 */
function entryRecord(ctx: RequestContext, request: FhirRequest | undefined, index: number, response: FhirResponse): AuditRecord {
  if (!request) {
    return auditRecord({ method: 'POST', path: '', params: [], url: ctx.baseUrl, entry: index }, { interaction: 'batch' }, response);
  }
  let route: Route | undefined;
  try {
    route = resolveRoute(ctx, request);
  } catch {
    route = undefined;
  }
  return auditRecord(request, route, response);
}

interface Planned {
  index: number;
  request: FhirRequest;
  entry: BundleEntry;
  /** Set when a conditional create matched an existing resource: answer 200 and write nothing. */
  existing?: Resource;
  /**
   * Set on a conditional create whose criteria repeat those of an earlier one (`first`): by
   * the time it runs, the first has created (or matched) the resource, so it matches that:
   * 200 with the first's result, nothing written (as HAPI collapses them; two creates would
   * leave two resources that the same criteria match).
   */
  sameAs?: Planned;
  /** The search criteria of a conditional update. */
  criteria?: string;
}

/** The last issue of a failed transaction's OperationOutcome: which entry failed. */
function failedAt(p: Planned): ReturnType<typeof issue> {
  return issue('error', 'processing', `Transaction failed at Bundle.entry[${p.index}] (${p.request.method} ${p.entry.request?.url}); nothing was written`, `Bundle.entry[${p.index}]`);
}

/**
 * Runs what is settled for entry p before anything runs (its identity, its references): a
 * client error names the entry like the failure of an entry that runs. Anything else (a
 * retryable conflict, a bug) passes unchanged.
 */
async function atEntry<T>(p: Planned, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const error = toFhirError(err);
    if (error.status >= 500) throw err;
    throw new FhirError(error.status, outcome(...(error.outcome.issue ?? []), failedAt(p)), error.headers);
  }
}

/**
 * The issues of a failed transaction entry, as issues about the Bundle: the OperationOutcome
 * answers the Bundle, so an expression into the entry's resource (`Patient.identifier[0].value`)
 * becomes `Bundle.entry[i].resource.identifier[0].value`, as $validate of the Bundle reports
 * it. Only for entries that carry the resource written (POST, PUT); a PATCH's issues are
 * about the patched result, which is not in the Bundle, and keep their own expressions.
 * (A batch entry's outcome is the entry's own, and stays relative to its resource.)
 */
function onBundle(issues: ReturnType<typeof issue>[], p: Planned): ReturnType<typeof issue>[] {
  const type = p.entry.resource?.resourceType;
  if (!type || (p.request.method !== 'POST' && p.request.method !== 'PUT')) return issues;
  const prefix = `Bundle.entry[${p.index}].resource`;
  const rebase = (expression: string) =>
    expression === type ? prefix : expression.startsWith(`${type}.`) ? prefix + expression.slice(type.length) : expression;
  return issues.map((i) => (i.expression ? { ...i, expression: i.expression.map(rebase) } : i));
}

async function transaction(ctx: RequestContext, bundle: Bundle): Promise<FhirResponse> {
  const entries = bundle.entry ?? [];
  const audit: AuditRecord[] = [];
  let carriers = new Map<Planned, Planned>();
  const responses = await ctx.services.repo.inTransaction(ctx, async (txCtx) => {
    audit.length = 0; // a retried transaction starts its audit trail afresh
    const entryCtx: RequestContext = { ...txCtx, audit };
    const planned: Planned[] = entries.map((entry, index) => ({ index, entry, request: entryRequest(ctx, entry, index) }));
    for (const p of planned) {
      if (p.request.path === '' && p.request.method === 'POST') {
        throw errors.badRequest(`Bundle.entry[${p.index}]: a Bundle cannot be nested in a transaction`);
      }
    }
    const ids = await settleIdentities(entryCtx, planned);
    await assertDistinctIdentities(entryCtx, planned);
    carriers = provenanceCarriers(planned);
    for (const p of planned) {
      const body = p.request.body;
      if (hasReferences(body)) {
        p.request.body = await atEntry(p, () => rewriteReferences(entryCtx, body, ids, p.index, { fullUrl: p.entry.fullUrl }));
      }
    }
    for (const [carrier, target] of carriers) {
      target.request.provenance = { resource: carrier.request.body, source: `Bundle.entry[${carrier.index}]`, id: carrier.request.assignedId };
    }
    const ordered = planned
      .filter((p) => !carriers.has(p))
      .sort((a, b) => ORDER[a.request.method] - ORDER[b.request.method] || a.index - b.index);
    const results: BundleEntry[] = new Array(entries.length);
    const answered = new Map<Planned, FhirResponse>();
    for (const p of ordered) {
      // A conditional create settled ahead answers with what it matched: the existing
      // resource, or what the first of its repeats wrote (it runs earlier: same step, lower index).
      const matched = p.sameAs ? answered.get(p.sameAs)?.audited?.resource : p.existing;
      const response: FhirResponse = matched
        ? {
            status: 200,
            location: `${ctx.baseUrl}/${matched.resourceType}/${matched.id}/_history/${matched.meta?.versionId}`,
            versionId: matched.meta?.versionId,
            lastModified: matched.meta?.lastUpdated,
            resource: matched,
            audited: { resource: matched },
          }
        : await executeRequest(entryCtx, p.request);
      if (matched) audit.push(entryRecord(entryCtx, p.request, p.index, response));
      if (response.status >= 400) {
        const failure = onBundle((response.resource as { issue?: ReturnType<typeof issue>[] } | undefined)?.issue ?? [], p);
        throw new FhirError(
          response.status,
          outcome(
            ...failure,
            failedAt(p)
          )
        );
      }
      results[p.index] = entryResponse(response, p.request.method, ctx.prefer);
      answered.set(p, response);
    }
    return results;
  });
  for (const [carrier] of carriers) {
    const response = await carrierResponse(ctx, carrier);
    responses[carrier.index] = entryResponse(response, 'POST', ctx.prefer);
    audit.push({
      interaction: 'create',
      resourceType: 'Provenance',
      id: carrier.request.assignedId,
      versionId: response.versionId,
      status: response.status,
      method: 'POST',
      url: carrier.request.url,
    });
  }
  ctx.audit.push(...audit);
  return { status: 200, resource: responseBundle('transaction-response', responses) };
}

/** FHIR JSON has no empty arrays (json.html): a Bundle of no entries has no entry element. */
function responseBundle(type: 'batch-response' | 'transaction-response', entries: BundleEntry[]): Bundle {
  return { resourceType: 'Bundle', type, ...(entries.length > 0 && { entry: entries }) };
}

/**
 * Provenance entries about another entry of the Bundle (`target` is that entry's fullUrl):
 * each carries the client's record of that write (agents, reason, the author's signature),
 * so it is not created on its own but handed to the entry it targets, and becomes the
 * Provenance the server records for that write (see src/provenance).
 */
function provenanceCarriers(planned: Planned[]): Map<Planned, Planned> {
  const byFullUrl = new Map(planned.filter((p) => p.entry.fullUrl).map((p) => [p.entry.fullUrl as string, p]));
  const carriers = new Map<Planned, Planned>();
  for (const p of planned) {
    const body = p.request.body as { resourceType?: string; target?: { reference?: string }[] } | undefined;
    if (p.request.method !== 'POST' || p.request.path !== 'Provenance' || body?.resourceType !== 'Provenance') continue;
    const targets = (Array.isArray(body.target) ? body.target : []).map((t) => byFullUrl.get(t?.reference ?? ''));
    const inBundle = targets.filter((t): t is Planned => t !== undefined && t !== p);
    if (inBundle.length === 0) continue;
    if (targets.length !== 1 || p.request.ifNoneExist) {
      throw errors.badRequest(`Bundle.entry[${p.index}]: a Provenance entry about another entry must have exactly one target and no ifNoneExist`, `Bundle.entry[${p.index}].resource.target`);
    }
    const target = inBundle[0];
    if (!['POST', 'PUT', 'PATCH', 'DELETE'].includes(target.request.method) || target.request.provenance || [...carriers.values()].includes(target)) {
      throw errors.badRequest(`Bundle.entry[${p.index}]: its target Bundle.entry[${target.index}] must be a write with no other Provenance entry`, `Bundle.entry[${p.index}].resource.target`);
    }
    carriers.set(p, target);
  }
  return carriers;
}

/** After commit: the Provenance a carrier became, or why there is none (its target wrote no new version). */
async function carrierResponse(ctx: RequestContext, carrier: Planned): Promise<FhirResponse> {
  const id = carrier.request.assignedId as string;
  const stored = await ctx.services.repo.currentRow(systemContext(ctx.services), 'Provenance', id);
  if (!stored) {
    return { status: 200, resource: informational(`Bundle.entry[${carrier.index}]: its target wrote no new version, so no Provenance was recorded`) };
  }
  return { status: 201, location: `${ctx.baseUrl}/Provenance/${id}/_history/${stored.versionId}`, versionId: stored.versionId, lastModified: stored.lastUpdated };
}

/**
 * Decides the id of every entry that creates or updates a resource, so that references to
 * it can be rewritten before anything runs. POSTs get a fresh id (or, for a conditional
 * create that matches, the existing one); conditional PUTs take the matching resource's id.
 */
async function settleIdentities(ctx: RequestContext, planned: Planned[]): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  const conditionalCreates = new Map<string, Planned>();
  for (const p of planned) {
    await atEntry(p, () => settleIdentity(ctx, p, ids, conditionalCreates));
  }
  return ids;
}

/** settleIdentities for one entry: its id, and what references to it (fullUrl, criteria) mean. */
async function settleIdentity(ctx: RequestContext, p: Planned, ids: Map<string, string>, conditionalCreates: Map<string, Planned>): Promise<void> {
  const { request, entry } = p;
  const resource = request.body as Resource | undefined;
  const type = request.path.split('/')[0];
  let reference: string | undefined;
  /** The entry's own criteria in canonical form (conditional create or update). */
  let key: string | undefined;
  if (request.method === 'POST' && resource?.resourceType && !request.path.includes('/') && !type.startsWith('$')) {
    key = request.ifNoneExist ? conditionalKey(type, request.ifNoneExist) : undefined;
    p.sameAs = key === undefined ? undefined : conditionalCreates.get(key);
    if (p.sameAs) {
      p.existing = p.sameAs.existing;
    } else if (key !== undefined && request.ifNoneExist) {
      conditionalCreates.set(key, p);
      const criteria = criteriaParams(request.ifNoneExist);
      await lockCriteria(ctx, type, criteria);
      const matches = await ctx.services.search.match(ctx, type, criteria, 2);
      if (matches.length > 1) {
        throw errors.multipleMatches(`Bundle.entry[${p.index}]: conditional create matches more than one ${type}`);
      }
      p.existing = matches[0];
    }
    const id = p.sameAs?.request.assignedId ?? p.existing?.id ?? mintId(type);
    // A fixed id, so the rewritten references and the created resource agree.
    request.body = { ...resource, id };
    request.path = type;
    request.assignedId = id;
    reference = `${type}/${id}`;
  } else if (request.method === 'PUT' && resource?.resourceType) {
    if (request.path.includes('/')) {
      reference = request.path;
    } else if (request.params.length) {
      p.criteria = new URLSearchParams(request.params).toString();
      const criteria = criteriaParams(p.criteria);
      await lockCriteria(ctx, type, criteria);
      const matches = await ctx.services.search.match(ctx, type, criteria, 2);
      if (matches.length > 1) {
        throw errors.multipleMatches(`Bundle.entry[${p.index}]: conditional update matches more than one ${type}`);
      }
      // Two conditional updates with the same criteria and no match write one new resource
      // (the overlap check then refuses them), not two that the criteria would both match.
      key = conditionalKey(type, p.criteria);
      const earlier = matches[0] ? undefined : ids.get(key)?.split('/')[1];
      const id = earlier ?? (await conditionalUpdateTarget(ctx, type, resource, matches[0])) ?? mintId(type);
      request.path = `${type}/${id}`;
      request.params = [];
      request.body = { ...resource, id };
      reference = request.path;
    }
  } else if (request.method === 'PATCH' && request.path.includes('/')) {
    // A patched resource keeps its identity: references to the entry's fullUrl name it.
    reference = request.path;
  }
  if (reference && entry.fullUrl) {
    ids.set(entry.fullUrl, reference);
  }
  // A conditional reference written exactly like this entry's own criteria means this entry.
  if (reference && key) {
    ids.set(key, reference);
  }
}

/**
 * FHIR R4 http.html, transaction processing rules: "If any resource identities (including
 * resolved identities from conditional update/delete) overlap in steps 1-3, then the
 * transaction SHALL fail." Steps 1-3 are the DELETE, POST and PUT/PATCH entries; two of them
 * writing one resource would make the outcome depend on the processing order. Runs after
 * settleIdentities (POST ids and conditional PUTs are settled) and before anything is
 * written; conditional DELETEs and PATCHes are resolved here against the same snapshot.
 */
async function assertDistinctIdentities(ctx: RequestContext, planned: Planned[]): Promise<void> {
  const writers = new Map<string, number>();
  for (const p of planned) {
    for (const identity of await writeIdentities(ctx, p)) {
      const first = writers.get(identity);
      if (first !== undefined) {
        throw errors.badRequest(
          `Bundle.entry[${first}] and Bundle.entry[${p.index}] both write ${identity}: the entries of a transaction must not overlap (FHIR R4 http.html, transaction processing rules); nothing was written`,
          `Bundle.entry[${p.index}]`
        );
      }
      writers.set(identity, p.index);
    }
  }
}

/** "Type/id" of every resource an entry would write (create, update, patch or delete). */
async function writeIdentities(ctx: RequestContext, p: Planned): Promise<string[]> {
  if (p.sameAs) return []; // writes nothing: the first of its conditional creates does
  let route: Route;
  try {
    route = resolveRoute(ctx, p.request);
  } catch {
    return []; // a malformed entry is refused when it runs, with its index
  }
  const { interaction, resourceType: type, id } = route;
  if (!type) return [];
  if (interaction === 'create') {
    // settleIdentities fixed the id (or the conditional create's match) of every create.
    return p.request.assignedId ? [`${type}/${p.request.assignedId}`] : [];
  }
  if (interaction !== 'update' && interaction !== 'patch' && interaction !== 'delete') return [];
  if (id) return [`${type}/${id}`];
  if (interaction === 'update') return [];
  // Conditional delete (every match) and conditional patch (the one match).
  let criteria: [string, string][];
  try {
    criteria = criteriaParams(new URLSearchParams(p.request.params).toString());
  } catch {
    return []; // reported when the entry runs
  }
  if (criteria.length === 0) return [];
  const limit = interaction === 'delete' ? ctx.config.maxPageSize + 1 : 2;
  let matches: Resource[];
  try {
    matches = await ctx.services.search.match(ctx, type, criteria, limit);
  } catch (err) {
    // Criteria the search cannot understand are refused when the entry runs, with its index.
    if (toFhirError(err).status < 500) return [];
    throw err;
  }
  return matches.map((m) => `${type}/${m.id}`);
}
