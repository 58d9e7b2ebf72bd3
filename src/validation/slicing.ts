/**
 * Slicing: each value of a sliced element is assigned to the first slice whose
 * discriminators it matches, then validated against that slice; each slice's cardinality,
 * closed slicing and ordered slicing are checked. Discriminators: value and pattern (the
 * slice's fixed or pattern value at the path, or its required binding), exists, type and
 * profile. Paths are FHIRPath, evaluated once compiled; resolve() (which needs the
 * referenced resource) is not followed.
 */
import { toTypedValue } from '@medplum/core';
import { compile, type CompiledExpression, type Typed } from '../fhir/fhirpath';
import type { Discriminator, ElementNode } from './compile';
import { jsonEquals, matchesPattern } from './json';
import { singleType } from './scope';
import type { Frame, Item, Walk } from './walker';

const paths = new Map<string, CompiledExpression | null>();

function compiledPath(path: string): CompiledExpression | null {
  let found = paths.get(path);
  if (found === undefined) {
    try {
      found = compile(path);
    } catch {
      found = null;
    }
    paths.set(path, found);
  }
  return found;
}

const SIMPLE_PATH = /^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/;

/** The JSON values at a plain dotted path (url, system, code.coding.system), arrays flattened. */
function jsonAt(value: unknown, path: string): unknown[] {
  let current: unknown[] = [value];
  for (const name of path.split('.')) {
    const next: unknown[] = [];
    for (const v of current) {
      const child = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[name] : undefined;
      if (Array.isArray(child)) next.push(...child.filter((c) => c !== null && c !== undefined));
      else if (child !== undefined && child !== null) next.push(child);
    }
    current = next;
  }
  return current;
}

/**
 * The typed values at a discriminator path within a value. Plain paths of value, pattern and
 * exists discriminators (nearly all of them) are read from the JSON directly; the others go
 * through FHIRPath, which also knows the values' types.
 */
function valuesAt(value: unknown, type: string, path: string, needTypes: boolean): Typed[] {
  const typed: Typed = { type, value };
  if (path === '$this') return [typed];
  if (!needTypes && SIMPLE_PATH.test(path)) return jsonAt(value, path).map((v) => ({ type: '', value: v }));
  const expression = compiledPath(path);
  if (!expression) return [];
  try {
    return expression.eval({ variables: {} }, [typed]).map((v) => ({ type: v.type, value: v.value?.valueOf?.() ?? v.value }));
  } catch {
    return [];
  }
}

interface PathTarget {
  el: ElementNode;
  type: string;
}

/** The element (of the slice) a discriminator path designates, following the value's types. */
async function elementAt(walk: Walk, slice: ElementNode, type: string, path: string): Promise<PathTarget | undefined> {
  const key = `at:${type}:${path}`;
  if (slice.cache.has(key)) return slice.cache.get(key) as PathTarget | undefined;
  const found = await findElementAt(walk, slice, type, path);
  slice.cache.set(key, found);
  return found;
}

async function findElementAt(walk: Walk, slice: ElementNode, type: string, path: string): Promise<PathTarget | undefined> {
  let current: PathTarget = { el: slice, type };
  if (path === '$this') return current;
  for (const raw of path.split('.')) {
    const segment = raw.trim();
    if (segment === '$this') continue;
    const ofType = /^ofType\((\w+)\)$/.exec(segment);
    if (ofType) {
      current = { el: current.el, type: ofType[1] };
      continue;
    }
    const extension = /^extension\(\s*'([^']+)'\s*\)$/.exec(segment);
    const name = extension ? 'extension' : segment;
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) return undefined;
    const scope = await walk.scope(current.el, current.type);
    const el = scope.byName.get(name);
    if (!el) return undefined;
    if (extension) {
      const url = extension[1];
      const slice = el.slicing?.slices.find((s) => s.children.get('url')?.fixed === url || s.types[0]?.profiles.includes(url));
      if (!slice) return undefined;
      current = { el: slice, type: 'Extension' };
      continue;
    }
    current = { el, type: singleType(el) ?? current.type };
  }
  return current;
}

async function discriminatorMatches(walk: Walk, d: Discriminator, slice: ElementNode, value: unknown, type: string): Promise<boolean> {
  const sliceType = slice.types.length === 1 ? slice.types[0].code : type;
  const target = await elementAt(walk, slice, sliceType, d.path);
  const actual = valuesAt(value, type, d.path, d.type === 'type' || d.type === 'profile');
  switch (d.type) {
    case 'value':
    case 'pattern': {
      if (!target) return false;
      const { fixed, pattern, binding } = target.el;
      if (fixed !== undefined) return actual.some((v) => jsonEquals(v.value, fixed));
      if (pattern !== undefined) return actual.some((v) => matchesPattern(v.value, pattern));
      if (binding?.strength === 'required' && binding.valueSet) {
        for (const v of actual) {
          const code = v.value as { system?: string; code?: string; coding?: { system?: string; code?: string }[] } | string;
          const codings = typeof code === 'string' ? [{ code }] : code?.coding ?? [code];
          for (const c of codings) {
            if (c?.code && (await walk.checker.validateCode(binding.valueSet, { system: c.system, code: c.code })).result) return true;
          }
        }
      }
      return false;
    }
    case 'exists': {
      if (!target) return false;
      const present = actual.length > 0;
      if (target.el.max === 0) return !present;
      if (target.el.min > 0) return present;
      return true;
    }
    case 'type': {
      const allowed = (target?.el ?? slice).types.map((t) => t.code);
      return actual.some((v) => allowed.includes(v.type) || allowed.includes((v.value as { resourceType?: string })?.resourceType ?? ''));
    }
    case 'profile': {
      const profiles = (target?.el ?? slice).types.flatMap((t) => t.profiles);
      for (const v of actual) {
        for (const url of profiles) {
          if (await conformsTo(walk, v, url)) return true;
        }
      }
      return false;
    }
    default:
      return false;
  }
}

/** Whether a value conforms to a profile: validated on the side, matched when nothing is an error. */
async function conformsTo(walk: Walk, value: Typed, url: string): Promise<boolean> {
  const found = walk.registry.builtin(url) ?? (await walk.registry.resolve(url, walk.session));
  if (!found.profile) return false;
  const side = walk.fork();
  const resource = value.value as { resourceType?: string } | undefined;
  if (resource?.resourceType) {
    await side.resource(value.value as never, found.profile, resource.resourceType);
  } else {
    const scope = await side.scope(found.profile.root, found.profile.type);
    const typed = toTypedValue(value.value) as Typed;
    const frame = { resource: typed, rootResource: typed, container: {} as never };
    await side.object(value.value as Record<string, unknown>, scope, found.profile.type, false, frame);
  }
  return !side.issues.some((i) => i.severity === 'error' || i.severity === 'fatal');
}

/** Assigns the values of a sliced element to slices, validates each, and checks the slicing rules. */
export async function matchSlice(
  walk: Walk,
  el: ElementNode,
  type: string,
  items: Item[],
  elementPath: string,
  itemPath: (item: Item) => string,
  frame: Frame
): Promise<void> {
  const slicing = el.slicing!;
  const counts = new Array<number>(slicing.slices.length).fill(0);
  let lastSlice = -1;
  let unmatchedSeen = false;
  for (const item of items) {
    const path = itemPath(item);
    let match = -1;
    if (item.value !== undefined) {
      for (let i = 0; i < slicing.slices.length && match < 0; i++) {
        const slice = slicing.slices[i];
        let all = true;
        for (const d of slicing.discriminators) {
          if (!(await discriminatorMatches(walk, d, slice, item.value, type))) {
            all = false;
            break;
          }
        }
        if (all && slicing.discriminators.length) match = i;
      }
    }
    if (match < 0) {
      if (slicing.rules === 'closed') {
        walk.report('error', 'structure', `${el.path}: this value matches none of the slices (${slicing.slices.map((s) => s.sliceName).join(', ')}), and the slicing is closed`, path);
      }
      unmatchedSeen = true;
      await walk.item(el, type, item, path, frame);
      continue;
    }
    const slice = slicing.slices[match];
    if (slicing.ordered && match < lastSlice) {
      walk.report('error', 'structure', `${el.path}: the value of slice "${slice.sliceName}" comes after a later slice (the slices are ordered)`, path);
    }
    if (slicing.rules === 'openAtEnd' && unmatchedSeen) {
      walk.report('error', 'structure', `${el.path}: values that match no slice must come last (openAtEnd)`, path);
    }
    lastSlice = Math.max(lastSlice, match);
    counts[match]++;
    const sliceType = el.choice && slice.types.length === 1 ? slice.types[0].code : type;
    await walk.item(slice, sliceType, item, path, frame);
  }
  slicing.slices.forEach((slice, i) => {
    if (counts[i] < slice.min) {
      walk.report('error', 'required', `${el.path}: slice "${slice.sliceName}" requires at least ${slice.min} value(s), but found ${counts[i]}`, elementPath);
    }
    if (counts[i] > slice.max) {
      walk.report('error', 'structure', `${el.path}: slice "${slice.sliceName}" allows at most ${slice.max} value(s), but found ${counts[i]}`, elementPath);
    }
  });
}
