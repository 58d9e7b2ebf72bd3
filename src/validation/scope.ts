/**
 * What may appear inside a value: the child element definitions that apply to a value of a
 * given type at a given element, indexed by the JSON names they take (valueQuantity for
 * value[x]). A profile's snapshot lists the children it constrains; what it does not list
 * comes from the type's own definition (or the profile named in the element's type).
 * Scopes of built-in definitions are computed once and kept with the element.
 */
import type { CompiledProfile, Constraint, ElementNode } from './compile';
import { choiceSuffix, referencedNode } from './compile';
import type { LookupSession, ProfileRegistry } from './profiles';

export interface KeyTarget {
  el: ElementNode;
  /** The value's type, decided by the JSON name for choice elements. */
  type: string;
}

export interface Scope {
  /** Every child element definition. */
  elements: ElementNode[];
  /** The children that must be present (min > 0, or a slice with min > 0): checked when absent. */
  mandatory: ElementNode[];
  /** JSON property name -> element and type. */
  byKey: Map<string, KeyTarget>;
  /** Element name without [x] -> element (for discriminator paths). */
  byName: Map<string, ElementNode>;
  /** Invariants on the value: the element's and its type's. */
  constraints: Constraint[];
  /** The type name FHIRPath evaluates the value as. */
  fhirPathType: string;
  /** Type profiles that could not be found, for a warning. */
  unresolved: string[];
}

/** The type code of an element with a single type (contentReference elements take the referenced one's). */
export function singleType(el: ElementNode): string | undefined {
  if (el.types.length === 1) return el.types[0].code;
  if (el.contentReference) return referencedNode(el)?.types[0]?.code;
  return undefined;
}

function mergeConstraints(...lists: Constraint[][]): Constraint[] {
  const seen = new Set<string>();
  const result: Constraint[] = [];
  for (const list of lists) {
    for (const c of list) {
      const key = `${c.key}\u0000${c.expression ?? ''}`;
      if (!seen.has(key)) {
        seen.add(key);
        result.push(c);
      }
    }
  }
  return result;
}

function buildScope(own: ElementNode | undefined, typeDef: CompiledProfile | undefined, node: ElementNode, type: string): Scope {
  const elements: ElementNode[] = [...(own?.children.values() ?? [])];
  const names = new Set(elements.map((e) => e.name));
  for (const child of typeDef?.root.children.values() ?? []) {
    if (!names.has(child.name)) elements.push(child);
  }
  const byKey = new Map<string, KeyTarget>();
  const byName = new Map<string, ElementNode>();
  for (const el of elements) {
    if (el.choice) {
      const prefix = el.name.slice(0, -3);
      byName.set(prefix, el);
      for (const t of el.types) byKey.set(prefix + choiceSuffix(t.code), { el, type: t.code });
    } else {
      byName.set(el.name, el);
      byKey.set(el.name, { el, type: singleType(el) ?? '' });
    }
  }
  const referenced = referencedNode(node);
  const fhirPathType = node.fhirPathType ?? referenced?.fhirPathType ?? type;
  const constraints = mergeConstraints(node.constraints, own && own !== node ? own.constraints : [], typeDef && typeDef.root !== node ? typeDef.root.constraints : []);
  const mandatory = elements.filter((el) => el.min > 0 || el.slicing?.slices.some((slice) => slice.min > 0));
  return { elements, mandatory, byKey, byName, constraints, fhirPathType, unresolved: [] };
}

/**
 * The scope of a value of `type` described by `node` (an element, a slice, or a profile's
 * root). Type profiles are resolved through the registry; a scope that depends on a stored
 * profile is not kept, since that profile may change.
 */
export async function scopeOf(node: ElementNode, type: string, registry: ProfileRegistry, session: LookupSession): Promise<Scope> {
  const cacheKey = 'scope:' + type;
  const cached = node.cache.get(cacheKey) as Scope | undefined;
  if (cached) return cached;
  const own = node.children.size ? node : referencedNode(node);
  let typeDef: CompiledProfile | undefined;
  let cacheable = true;
  const unresolved: string[] = [];
  const declared = node.types.find((t) => t.code === type);
  for (const url of declared?.profiles ?? []) {
    const found = registry.builtin(url) ?? (await registry.resolve(url, session));
    if (!found.builtin) cacheable = false;
    if (found.profile && found.profile.type === type) {
      typeDef = found.profile;
      break;
    }
    unresolved.push(url);
  }
  // Backbone elements have their children in the snapshot; their type adds id and extensions.
  typeDef ??= registry.baseType(type);
  const scope = buildScope(own, typeDef, node, type);
  scope.unresolved = unresolved;
  if (cacheable) node.cache.set(cacheKey, scope);
  return scope;
}
