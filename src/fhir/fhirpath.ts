/**
 * Search parameter expressions (search index, patient compartments), parsed once per (type,
 * parameter) and evaluated at every write. Two functions of @medplum/core's FHIRPath are replaced in the compiled trees
 * because the R4 expressions depend on them and medplum's versions do not do what FHIRPath
 * says:
 *  - resolve() takes the text before the first "/" as the target's type, so an absolute
 *    reference (https://host/fhir/Patient/1) never satisfies `resolve() is Patient`, which
 *    some 28 R4 definitions (patient, subject, ...) use; here the type comes from the
 *    reference's Type/id tail (references.ts).
 *  - as(Type) returns its input unfiltered, so Condition.onset.as(string) would index an
 *    onsetDateTime as text; here it keeps only values of that type.
 *  - children() and descendants() always return nothing, which turns invariants such as
 *    "descendants().where(...).exists()" into false errors; here they walk the value.
 *  - intersect(), exclude(), distinct(), isDistinct(), subsetOf() and supersetOf() compare
 *    items by object identity, so two equal Codings read from different places are never
 *    the same and obs-7 (`coding.intersect(%resource.code.coding)`) could never fail; here
 *    they use FHIRPath equality (=), as the specification says they do.
 */
import { FunctionAtom, SymbolAtom, fhirPathEquals, fhirPathIs, getExpressionsForResourceType, parseFhirPath } from '@medplum/core';
import type { Reference } from '@medplum/fhirtypes';
import { referenceTarget } from './references';
import { typedPropertyValue } from './typed-property';

export interface Typed {
  type: string;
  value: any;
}

export interface CompiledExpression {
  eval(context: unknown, input: Typed[]): Typed[];
}

interface AtomLike {
  eval(context: unknown, input: Typed[]): Typed[];
}

function resolveReferences(input: Typed[]): Typed[] {
  const result: Typed[] = [];
  for (const { value } of input) {
    if (value && typeof value === 'object' && (value as Reference).resource) {
      const contained = (value as Reference).resource as { resourceType: string };
      result.push({ type: contained.resourceType, value: contained });
      continue;
    }
    const reference = typeof value === 'string' ? value : (value as Reference | undefined)?.reference;
    const target = reference ? referenceTarget(reference) : undefined;
    const type = target?.type ?? (typeof value === 'object' ? (value as Reference | undefined)?.type : undefined);
    if (type) {
      result.push({ type, value: { resourceType: type, id: target?.id } });
    }
  }
  return result;
}

/** The child elements of each input value, typed from the definitions where they are known. */
function childrenOf(input: Typed[]): Typed[] {
  const result: Typed[] = [];
  for (const item of input) {
    const value = item.value;
    if (!value || typeof value !== 'object' || Array.isArray(value)) continue;
    for (const key of Object.keys(value)) {
      if (key === 'resourceType' || key.startsWith('_')) continue;
      const child = typedPropertyValue(item, key);
      if (Array.isArray(child)) result.push(...child);
      else if (child) result.push(child);
    }
  }
  return result;
}

function descendantsOf(input: Typed[]): Typed[] {
  const result: Typed[] = [];
  let level = childrenOf(input);
  while (level.length) {
    result.push(...level);
    level = childrenOf(level);
  }
  return result;
}

function typeName(atom: unknown): string | undefined {
  const symbol = atom as { name?: string; left?: { name?: string }; right?: { name?: string } };
  if (symbol.name) return symbol.name;
  // FHIR.string, System.String
  return symbol.right?.name;
}

/**
 * A path step (`code` in `Observation.code`) through typedPropertyValue's cached element
 * lookup. Variables ($this, %resource) keep medplum's evaluation: only a name without $ or %
 * can be a step, and FHIRPath variables always carry one.
 */
function stepEval(name: string) {
  return (_context: unknown, input: Typed[]): Typed[] => {
    const result: Typed[] = [];
    for (const item of input) {
      const value = item.value;
      if (!value || typeof value !== 'object') continue;
      // `Observation` at the head of a path selects the resource itself.
      if (value.resourceType === name) {
        result.push(item);
        continue;
      }
      const child = typedPropertyValue(item, name);
      if (Array.isArray(child)) {
        for (const c of child) if (c?.value !== undefined) result.push(c);
      } else if (child?.value !== undefined) {
        result.push(child);
      }
    }
    return result;
  };
}

/** FHIRPath `=` on two items: true only when they are equal (not when the answer is empty). */
function equal(a: Typed, b: Typed): boolean {
  return fhirPathEquals(a as never, b as never)[0]?.value === true;
}

function distinct(items: Typed[]): Typed[] {
  const result: Typed[] = [];
  for (const item of items) if (!result.some((r) => equal(r, item))) result.push(item);
  return result;
}

interface EvalContext {
  parent?: EvalContext;
  variables?: Record<string, Typed | undefined>;
}

/**
 * The input of a set function's argument, as @medplum/core gives it: the $this of the
 * outermost iteration (the resource or value the whole expression is evaluated on).
 */
function argumentInput(context: unknown): Typed[] {
  let c = context as EvalContext;
  while (c.parent?.variables?.$this) c = c.parent;
  const self = c.variables?.$this;
  return self ? [self] : [];
}

/** The set functions that compare items (FHIRPath 5.3 and 5.1), with equality (=) instead of identity. */
const SET_FUNCTIONS: Record<string, (input: Typed[], other: Typed[]) => Typed[]> = {
  intersect: (input, other) => distinct(input.filter((i) => other.some((o) => equal(i, o)))),
  exclude: (input, other) => input.filter((i) => !other.some((o) => equal(i, o))),
  subsetOf: (input, other) => [{ type: 'boolean', value: input.every((i) => other.some((o) => equal(i, o))) }],
  supersetOf: (input, other) => [{ type: 'boolean', value: other.every((o) => input.some((i) => equal(i, o))) }],
};

/** Replaces resolve(), as(), children(), descendants() and path steps in a parsed tree, in place. */
function patch(atom: unknown, seen = new Set<unknown>()): void {
  if (!atom || typeof atom !== 'object' || seen.has(atom)) return;
  seen.add(atom);
  if (atom instanceof SymbolAtom && !atom.name.startsWith('$') && !atom.name.startsWith('%')) {
    Object.defineProperty(atom, 'eval', { value: stepEval(atom.name) });
  }
  if (atom instanceof FunctionAtom) {
    if (atom.name === 'resolve') {
      Object.defineProperty(atom, 'eval', { value: (_context: unknown, input: Typed[]) => resolveReferences(input) });
    } else if (atom.name === 'children' && atom.args.length === 0) {
      Object.defineProperty(atom, 'eval', { value: (_context: unknown, input: Typed[]) => childrenOf(input) });
    } else if (atom.name === 'descendants' && atom.args.length === 0) {
      Object.defineProperty(atom, 'eval', { value: (_context: unknown, input: Typed[]) => descendantsOf(input) });
    } else if (atom.name === 'distinct' && atom.args.length === 0) {
      Object.defineProperty(atom, 'eval', { value: (_context: unknown, input: Typed[]) => distinct(input) });
    } else if (atom.name === 'isDistinct' && atom.args.length === 0) {
      Object.defineProperty(atom, 'eval', {
        value: (_context: unknown, input: Typed[]) => [{ type: 'boolean', value: distinct(input).length === input.length }],
      });
    } else if (SET_FUNCTIONS[atom.name] && atom.args.length === 1) {
      const apply = SET_FUNCTIONS[atom.name];
      const argument = atom.args[0] as unknown as AtomLike;
      Object.defineProperty(atom, 'eval', {
        value: (context: unknown, input: Typed[]) => apply(input, argument.eval(context, argumentInput(context))),
      });
    } else if (atom.name === 'as' && atom.args.length === 1) {
      const name = typeName(atom.args[0]);
      if (name) {
        Object.defineProperty(atom, 'eval', {
          value: (_context: unknown, input: Typed[]) => input.filter((v) => fhirPathIs(v as never, name)),
        });
      }
    }
  }
  for (const child of Object.values(atom)) {
    if (Array.isArray(child)) child.forEach((c) => patch(c, seen));
    else patch(child, seen);
  }
}

/** A union of expression parts, evaluated as one, with duplicates (by identity) removed. */
function union(parts: AtomLike[]): CompiledExpression {
  if (parts.length === 1) return parts[0];
  return {
    eval(context, input) {
      const values: Typed[] = [];
      const seen = new Set<unknown>();
      for (const part of parts) {
        for (const v of part.eval(context, input)) {
          if (!seen.has(v.value)) {
            seen.add(v.value);
            values.push(v);
          }
        }
      }
      return values;
    },
  };
}

/** An expression tree node as @medplum/core builds it (its classes are not exported). */
interface Node {
  name?: string;
  args?: unknown[];
  operator?: string;
  left?: Node;
  right?: Node;
}

/** Functions that map an empty input to an empty output, whatever their arguments. */
const EMPTY_PRESERVING = new Set(['where', 'ofType', 'as', 'resolve', 'extension', 'first', 'last', 'select']);

/**
 * The names along a path expression (`Observation.value as Quantity` → Observation, value),
 * or undefined when the expression is anything else: `exists()`, `and`, a comparison, and
 * the like can yield a value (false) for a resource without the element.
 */
function pathNames(node: Node): string[] | undefined {
  if (node.operator === '.' && node.left && node.right) {
    const left = pathNames(node.left);
    const right = node.right;
    if (!left || right.operator !== undefined || right.name === undefined) return undefined;
    if (right.args === undefined) return [...left, right.name];
    if (!EMPTY_PRESERVING.has(right.name)) return undefined;
    // extension(url) reads the extension element; the others keep reading where the path was.
    return right.name === 'extension' ? [...left, 'extension'] : left;
  }
  if (node.operator === 'as' && node.left) return pathNames(node.left);
  if (node.operator === undefined && node.name !== undefined && node.args === undefined) return [node.name];
  return undefined;
}

/**
 * The top-level elements of resourceType that an expression's parts read (`code` and
 * `component` for `Observation.code | Observation.component.code`), or undefined when some
 * part is not a plain path from the resource. A path none of whose elements is present
 * yields nothing, which lets indexing skip it.
 */
function rootElements(resourceType: string, parts: Node[]): string[] | undefined {
  if (parts.length === 0) return undefined;
  const roots = new Set<string>();
  for (const part of parts) {
    const names = pathNames(part);
    if (!names || names.length < 2 || names[0] !== resourceType) return undefined;
    roots.add(names[1]);
  }
  return [...roots];
}

/** The parts of a (possibly multi-type) search parameter expression that apply to resourceType. */
export function compileForType(resourceType: string, expression: string): CompiledExpression {
  return compileSearchExpression(resourceType, expression).expression;
}

/** compileForType, with the top-level elements the expression reads when known (see rootElements). */
export function compileSearchExpression(resourceType: string, expression: string): { expression: CompiledExpression; roots?: string[] } {
  const parts = getExpressionsForResourceType(resourceType, expression) as unknown as (AtomLike & Node)[];
  parts.forEach((p) => patch(p));
  return { expression: union(parts.length ? parts : [compile(expression)]), roots: rootElements(resourceType, parts) };
}

/** A relative expression (composite components). */
export function compile(expression: string): CompiledExpression {
  const atom = parseFhirPath(expression) as unknown as AtomLike;
  patch(atom);
  return atom;
}
