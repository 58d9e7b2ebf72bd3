/**
 * References between the entries of a transaction: fullUrls (urn:uuid:, urn:oid:, absolute
 * URLs) of entries and conditional references (Type?criteria) become Type/id.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { RequestContext } from './context';
import { errors } from './outcome';
import { criteriaParams } from './interactions/write';
import { isLinkCandidate, rewriteLinks, type Link } from './bundle-links';

/** "Type?criteria" in a canonical form (parameters sorted), to compare conditional references. */
export function conditionalKey(type: string, criteria: string): string {
  const params = criteriaParams(criteria).sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1));
  return `${type}?${new URLSearchParams(params).toString()}`;
}

const RELATIVE = /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/;
const RESTFUL = /^(https?:\/\/.+)\/[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/;

/** The service base of a RESTful fullUrl (http://example.org/fhir/Patient/1: http://example.org/fhir). */
function restfulBase(fullUrl: string | undefined): string | undefined {
  return fullUrl === undefined ? undefined : RESTFUL.exec(fullUrl)?.[1];
}

function plainCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plainCopy);
  if (value === null || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) copy[key] = plainCopy(child);
  return copy;
}

/**
 * Replaces references to other entries' fullUrls, and conditional references, by Type/id,
 * in a resource or in the operations of a JSON Patch (whose values are elements).
 *
 * In a batch (`batchFullUrls` given: the fullUrls of its entries) nothing is settled ahead:
 * entries "SHALL NOT" depend on each other (http.html#transaction), so a reference to
 * another entry fails this entry; a conditional reference is resolved against what is
 * stored, as in a transaction, rather than stored as a reference that names no resource.
 */
export async function rewriteReferences<T extends Resource | unknown[]>(
  ctx: RequestContext,
  resource: T,
  ids: Map<string, string>,
  index: number,
  options: { batchFullUrls?: Set<string>; fullUrl?: string } = {}
): Promise<T> {
  const { batchFullUrls } = options;
  // bundle.html#references: a relative reference is relative to the service base of the
  // fullUrl of the entry that holds it when that is a RESTful URL, else to this server's; it
  // names the entry with that absolute fullUrl, if any.
  const base = batchFullUrls ? undefined : (restfulBase(options.fullUrl) ?? ctx.baseUrl);
  const pending: { holder: Record<string, unknown>; reference: string }[] = [];
  const links: Link[] = [];
  const linked = ids.size > 0;
  // A copy (the entry as sent stays intact) made while finding the references: the resource
  // is parsed JSON, so a plain recursive copy is exact, and several times faster than
  // structuredClone, which showed in profiles of transaction Bundles.
  const copyOf = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(copyOf);
    if (value === null || typeof value !== 'object') return value;
    // A Bundle stored as a resource (a document, a collection) resolves its references among
    // its own entries (bundle.html#references): they are not the transaction's to rewrite.
    if ((value as { resourceType?: unknown }).resourceType === 'Bundle') return plainCopy(value);
    const copy: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      copy[key] = copyOf(child);
      // Links to entries in uri elements and the narrative (bundle-links.ts).
      if (linked && typeof child === 'string' && key !== 'reference' && isLinkCandidate(key, child, ids)) links.push({ holder: copy, key });
    }
    if (typeof copy.reference === 'string') pending.push({ holder: copy, reference: copy.reference });
    return copy;
  };
  const copy = copyOf(resource) as T;
  for (const { holder, reference } of pending) {
    const mapped = ids.get(reference) ?? (base !== undefined && RELATIVE.test(reference) ? ids.get(`${base}/${reference}`) : undefined);
    if (mapped) {
      holder.reference = mapped;
    } else if (batchFullUrls?.has(reference)) {
      throw errors.badRequest(
        `Bundle.entry[${index}]: reference ${reference} is to another entry of the batch; the entries of a batch cannot depend on each other (use a transaction)`
      );
    } else if (!batchFullUrls && (reference.startsWith('urn:uuid:') || reference.startsWith('urn:oid:'))) {
      throw errors.badRequest(`Bundle.entry[${index}]: reference ${reference} matches no entry's fullUrl`);
    } else if (/^[A-Z][A-Za-z]+\?/.test(reference)) {
      const [type, query] = [reference.slice(0, reference.indexOf('?')), reference.slice(reference.indexOf('?') + 1)];
      const inBundle = ids.get(conditionalKey(type, query));
      if (inBundle) {
        holder.reference = inBundle;
        continue;
      }
      const criteria = criteriaParams(query);
      if (criteria.length === 0) {
        // Without criteria the search would match every resource of the type.
        throw errors.badRequest(`Bundle.entry[${index}]: conditional reference ${reference} has no search criteria`);
      }
      const matches = await ctx.services.search.match(ctx, type, criteria, 2);
      if (matches.length > 1) {
        throw errors.multipleMatches(`Bundle.entry[${index}]: conditional reference ${reference} matches more than one resource; it must match exactly one`);
      }
      if (matches.length === 0) {
        throw errors.badRequest(`Bundle.entry[${index}]: conditional reference ${reference} matches no resource; it must match exactly one`);
      }
      holder.reference = `${type}/${matches[0].id}`;
    }
  }
  if (links.length > 0 && !Array.isArray(copy)) rewriteLinks(copy as Resource, links, ids);
  return copy;
}
