/**
 * Links to transaction entries outside Reference.reference. FHIR R4 http.html, transaction
 * processing rules: "Servers SHALL replace all matching links in the bundle, whether they are
 * found in the resource ids, resource references, elements of type uri, url, oid, uuid, and
 * <a href="" & <img src="" in the narrative." The common case is a DocumentReference whose
 * content.attachment.url is the urn:uuid of a Binary entry (IHE MHD).
 *
 * Only elements of those types change: an Identifier.value (a string) that happens to equal
 * an entry's fullUrl, as MHD's entryUUID identifiers do, stays as it is. Finding a string's
 * element type walks the resource with the type schema, which is done only for the rare
 * strings that equal a fullUrl (see isLinkCandidate), so ordinary transactions pay one
 * character test per string.
 */
import { tryGetDataType } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';

const LINK_TYPES = new Set(['uri', 'url', 'oid', 'uuid']);
const NARRATIVE_LINK = /\b(href|src)="([^"]*)"/g;

export interface Link {
  holder: Record<string, unknown>;
  key: string;
}

/** Whether the string at `key` could be a link to an entry (ids: the entries' fullUrls and more). */
export function isLinkCandidate(key: string, value: string, ids: Map<string, string>): boolean {
  // Narratives usually link nothing (every one names the XHTML namespace, so look for the attributes).
  if (key === 'div') return value.includes('href="') || value.includes('src="');
  const first = value.charCodeAt(0);
  return (first === 117 /* u */ || first === 104 /* h */) && ids.has(value);
}

/** Rewrites the candidates that are elements of a link type, or narrative links, in the copy `resource`. */
export function rewriteLinks(resource: Resource, links: Link[], ids: Map<string, string>): void {
  for (const { holder, key } of links) {
    const holderType = typeOf(resource, holder);
    const type = holderType && elementType(holderType, key);
    const value = holder[key] as string;
    if (type === 'xhtml') {
      holder[key] = value.replace(NARRATIVE_LINK, (match, attribute: string, url: string) => {
        const to = ids.get(url);
        return to ? `${attribute}="${to}"` : match;
      });
    } else if (type && LINK_TYPES.has(type)) {
      holder[key] = ids.get(value) ?? value;
    }
  }
}

const elementTypes = new Map<string, string | undefined>();

/** The type of the element a JSON key names on a type (choice keys such as valueUri included). */
function elementType(type: string, key: string): string | undefined {
  const cacheKey = `${type}.${key}`;
  if (elementTypes.has(cacheKey)) return elementTypes.get(cacheKey);
  const elements = tryGetDataType(type)?.elements;
  let found: string | undefined;
  if (elements?.[key]) {
    found = elements[key].type?.[0]?.code;
  } else if (elements) {
    for (const [name, element] of Object.entries(elements)) {
      if (!name.endsWith('[x]') || !key.startsWith(name.slice(0, -3))) continue;
      const suffix = key.slice(name.length - 3);
      found = element.type?.find((t) => t.code.charAt(0).toUpperCase() + t.code.slice(1) === suffix)?.code;
      if (found) break;
    }
  }
  elementTypes.set(cacheKey, found);
  return found;
}

/** The type of the object `target` inside `resource`, found by walking it with the schema. */
function typeOf(resource: Resource, target: object): string | undefined {
  const visit = (value: unknown, type: string | undefined): string | undefined => {
    if (value === null || typeof value !== 'object') return undefined;
    if (Array.isArray(value)) {
      for (const item of value) {
        const found = visit(item, type);
        if (found) return found;
      }
      return undefined;
    }
    // A contained (or otherwise nested) resource says its own type.
    const actual = type === undefined || type === 'Resource' ? (value as Resource).resourceType : type;
    if (value === target) return actual;
    if (!actual) return undefined;
    for (const [key, child] of Object.entries(value)) {
      if (child !== null && typeof child === 'object') {
        const found = visit(child, elementType(actual, key));
        if (found) return found;
      }
    }
    return undefined;
  };
  return visit(resource, resource.resourceType);
}
