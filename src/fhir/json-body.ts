/**
 * The JSON text of a response body, with search entries written from the stored JSON text.
 *
 * A search Bundle's entries for whole stored resources (storedEntry) carry the text
 * PostgreSQL returned; jsonBody splices it into the Bundle's text instead of parsing it and
 * serializing it again (see store/stored-resource.ts for why). Everything else, and every
 * entry when the body is pretty-printed or nested in another Bundle, goes through
 * JSON.stringify, where the entry's `resource` parses the text on first use: the same JSON.
 */
import type { BundleEntry, Resource } from '@medplum/fhirtypes';
import type { StoredResource } from '../store/stored-resource';

const STORED = Symbol('stored entry');

type StoredEntry = BundleEntry & { [STORED]: StoredResource };

/** A Bundle entry for a whole stored resource: `resource` is parsed only if something reads it. */
export function storedEntry(fullUrl: string, stored: StoredResource, search: NonNullable<BundleEntry['search']>): BundleEntry {
  const entry = { fullUrl } as StoredEntry;
  // Defined in the order of the JSON (fullUrl, resource, search) for JSON.stringify's sake.
  Object.defineProperty(entry, 'resource', {
    get: () => stored.resource,
    // Code that replaces the resource gets a plain entry, written from what it set.
    set: (resource: Resource) => {
      Object.defineProperty(entry, 'resource', { value: resource, writable: true, enumerable: true, configurable: true });
      delete (entry as Partial<StoredEntry>)[STORED];
    },
    enumerable: true,
    configurable: true,
  });
  entry.search = search;
  Object.defineProperty(entry, STORED, { value: stored, configurable: true });
  return entry;
}

function isStoredEntry(entry: BundleEntry): entry is StoredEntry {
  return (entry as Partial<StoredEntry>)[STORED] !== undefined;
}

/** The stored resource behind a storedEntry (its compartments are known without parsing it). */
export function storedResourceOf(entry: BundleEntry): StoredResource | undefined {
  return isStoredEntry(entry) ? entry[STORED] : undefined;
}

function storedEntryText(entry: StoredEntry): string {
  return `{"fullUrl":${JSON.stringify(entry.fullUrl)},"resource":${entry[STORED].json()},"search":${JSON.stringify(entry.search)}}`;
}

/** The body's JSON text: JSON.stringify's, except that stored entries of a Bundle are spliced in as they are. */
export function jsonBody(body: Resource, pretty: boolean): string {
  if (pretty) return JSON.stringify(body, null, 2);
  if (body.resourceType !== 'Bundle' || !body.entry?.some(isStoredEntry)) return JSON.stringify(body);
  const { entry, ...rest } = body;
  const head = JSON.stringify(rest);
  const entries = entry.map((e) => (isStoredEntry(e) ? storedEntryText(e) : JSON.stringify(e)));
  // head is a JSON object with at least resourceType: the entries go before its closing brace.
  return `${head.slice(0, -1)},"entry":[${entries.join(',')}]}`;
}
