/**
 * SMART scopes (App Launch 2.x §Scopes and Launch Context): parsing of v1
 * (`patient/Observation.read`) and v2 (`patient/Observation.rs?category=laboratory`)
 * resource scopes, and the rule for which requested scopes a client or user may be granted.
 *
 * v1 permissions are normalised to v2 letters: read = rs, write = cud, * = cruds.
 */
import { isKnownResourceType } from '../fhir/definitions';

export type ScopeContext = 'patient' | 'user' | 'system';
export type Permission = 'c' | 'r' | 'u' | 'd' | 's';

export interface ResourceScope {
  /** The scope as the client wrote it. */
  text: string;
  context: ScopeContext;
  /** A resource type, or '*'. */
  resourceType: string;
  permissions: ReadonlySet<Permission>;
  /** Granular restriction (v2 only): search parameters every resource must match. */
  query?: [string, string][];
}

const V1 = { read: 'rs', write: 'cud', '*': 'cruds' } as Record<string, string>;
const ORDER = 'cruds';

/** The scopes that are not resource scopes and that this server understands. */
export const LAUNCH_SCOPES = ['openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'offline_access', 'online_access'];
/** Management of clients, users, keys and EHR launch contexts (this server's own, not SMART's). */
export const ADMIN_SCOPE = 'admin';

export function splitScopes(scope: string | undefined): string[] {
  return [...new Set((scope ?? '').split(/\s+/).filter(Boolean))];
}

/** A resource scope, or undefined when the text is not one (or is malformed). */
export function parseResourceScope(text: string): ResourceScope | undefined {
  const match = /^(patient|user|system)\/([A-Za-z]+|\*)\.([a-z*]+)(?:\?(.+))?$/.exec(text);
  if (!match) return undefined;
  const [, context, resourceType, perms, queryText] = match;
  if (resourceType !== '*' && !isKnownResourceType(resourceType)) return undefined;
  let letters = V1[perms];
  if (letters === undefined) {
    // v2: a non-empty subsequence of c r u d s, in that order.
    let at = -1;
    for (const ch of perms) {
      const next = ORDER.indexOf(ch);
      if (next <= at) return undefined;
      at = next;
    }
    letters = perms;
  } else if (queryText) {
    return undefined; // granular restrictions exist only in v2 syntax
  }
  let query: [string, string][] | undefined;
  if (queryText) {
    if (resourceType === '*') return undefined;
    query = [...new URLSearchParams(queryText).entries()];
    if (query.length === 0) return undefined;
  }
  return {
    text,
    context: context as ScopeContext,
    resourceType,
    permissions: new Set(letters.split('') as Permission[]),
    ...(query && { query }),
  };
}

export function parseResourceScopes(scopes: readonly string[]): ResourceScope[] {
  return scopes.map(parseResourceScope).filter((s): s is ResourceScope => s !== undefined);
}

function sameQuery(a: [string, string][] | undefined, b: [string, string][] | undefined): boolean {
  const key = (q: [string, string][] | undefined) => (q ?? []).map(([k, v]) => `${k}=${v}`).sort().join('&');
  return key(a) === key(b);
}

/** Whether `allowed` (a scope registered for a client) covers the requested scope. */
function covers(allowed: string, requested: string): boolean {
  if (allowed === requested) return true;
  const a = parseResourceScope(allowed);
  const r = parseResourceScope(requested);
  if (!a || !r || a.context !== r.context) return false;
  if (a.resourceType !== '*' && a.resourceType !== r.resourceType) return false;
  for (const p of r.permissions) if (!a.permissions.has(p)) return false;
  // An allowed granular scope covers only the same restriction; an unrestricted one covers any.
  return !a.query || sameQuery(a.query, r.query);
}

/**
 * The requested scopes that may be granted: those this server understands and that one of
 * the allowed scopes covers. Unknown or disallowed scopes are dropped, as OAuth lets a
 * server do (the token response's `scope` says what was granted).
 */
export function grantableScopes(requested: readonly string[], allowed: readonly string[], contexts: ScopeContext[]): string[] {
  return requested.filter((scope) => {
    const resource = parseResourceScope(scope);
    if (resource) {
      if (!contexts.includes(resource.context)) return false;
    } else if (!LAUNCH_SCOPES.includes(scope) && scope !== ADMIN_SCOPE) {
      return false;
    }
    return allowed.some((a) => covers(a, scope));
  });
}

const VERBS: Record<Permission, string> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };

/** A scope in plain words, for the consent page. */
export function describeScope(scope: string): string {
  const fixed: Record<string, string> = {
    openid: 'Confirm your identity (OpenID Connect)',
    fhirUser: 'Know which user you are (your FHIR user record)',
    profile: 'Know your name and user record',
    launch: 'Use the context the EHR opened the app in (patient, encounter)',
    'launch/patient': 'Know which patient is selected',
    'launch/encounter': 'Know which encounter is selected',
    offline_access: 'Keep access when you are not using the app (until you revoke it)',
    online_access: 'Keep access while you stay logged in',
    admin: 'Manage this server: clients, users, signing keys',
  };
  if (fixed[scope]) return fixed[scope];
  const parsed = parseResourceScope(scope);
  if (!parsed) return `Unknown permission "${scope}" (will not be granted)`;
  const verbs = [...parsed.permissions].map((p) => VERBS[p]);
  const what = parsed.resourceType === '*' ? 'all kinds of records' : `${parsed.resourceType} records`;
  const whose =
    parsed.context === 'patient'
      ? 'of the selected patient'
      : parsed.context === 'user'
        ? 'that you are allowed to access'
        : 'on the whole server (no user involved)';
  const restriction = parsed.query ? ` — only those where ${parsed.query.map(([k, v]) => `${k} is ${v}`).join(' and ')}` : '';
  return `${verbs.join(', ').replace(/^./, (c) => c.toUpperCase())} ${what} ${whose}${restriction}`;
}
