/**
 * What a reference string points to, by FHIR's reference rules: a relative "Type/id", the
 * same with "/_history/v", an absolute URL ending in Type/id (on this server or another), a
 * conditional "Type?criteria", or none of these (urn:uuid, contained "#id", a canonical).
 * Index extraction, search values and FHIRPath's resolve() all read references through here.
 */
import { isKnownResourceType } from './definitions';
import { ridOf } from '../store/rid';

const TYPE_ID = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;
const RELATIVE = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

export interface ReferenceTarget {
  type: string;
  /** Undefined for a conditional reference (Type?criteria). */
  id?: string;
  /** True when the target is on this server (relative, or absolute under baseUrl). */
  local: boolean;
}

/** The type and id a reference names, when it names any; baseUrl decides what is local. */
export function referenceTarget(reference: string, baseUrl?: string): ReferenceTarget | undefined {
  const query = reference.indexOf('?');
  if (query > 0 && RELATIVE_TYPE.test(reference.slice(0, query))) {
    return { type: reference.slice(0, query), local: true };
  }
  const relative = RELATIVE.exec(reference);
  if (relative && isKnownResourceType(relative[1])) {
    return { type: relative[1], id: relative[2], local: true };
  }
  if (!/^https?:\/\//.test(reference)) {
    return undefined;
  }
  const absolute = TYPE_ID.exec(reference);
  if (!absolute || !isKnownResourceType(absolute[1])) {
    return undefined;
  }
  const local = baseUrl !== undefined && reference.startsWith(baseUrl + '/') && RELATIVE.test(reference.slice(baseUrl.length + 1));
  return { type: absolute[1], id: absolute[2], local };
}

const RELATIVE_TYPE = /^[A-Z][A-Za-z]+$/;

/** A reference as the columns of sp_reference. */
export interface ReferenceValue {
  targetRid: string | null;
  targetType: string | null;
  targetId: string | null;
  url: string | null;
}

/**
 * Local references (relative, or absolute under this server's base URL) are stored by the
 * target's rid; anything else (other servers, canonicals, urn:uuid) by its URL without version.
 */
export function referenceValue(reference: string, baseUrl: string, maxLength: number): ReferenceValue | undefined {
  if (reference.startsWith('#')) return undefined;
  const target = referenceTarget(reference, baseUrl);
  if (target?.local && target.id) {
    return { targetRid: ridOf(target.type, target.id), targetType: target.type, targetId: target.id, url: null };
  }
  const url = reference.split('|')[0];
  return { targetRid: null, targetType: null, targetId: null, url: url.length > maxLength ? url.slice(0, maxLength) : url };
}
