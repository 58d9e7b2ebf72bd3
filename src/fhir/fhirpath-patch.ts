/**
 * FHIRPath Patch (R4 §3.1.0.7.3 / fhirpatch.html): a Parameters resource of add, insert,
 * delete, replace and move operations whose paths are FHIRPath expressions.
 *
 * To change an element we need its container, so a path is split into the expression of
 * the containing object, the element name, and the filters applied to the element's list
 * (indexers, where(), first(), ...). The filters run on the element's typed values, and the
 * values they keep are mapped back to list positions by identity.
 */
import {
  DotAtom,
  evalFhirPathTyped,
  FunctionAtom,
  IndexerAtom,
  parseFhirPath,
  SymbolAtom,
  toTypedValue,
  tryGetDataType,
  type TypedValue,
} from '@medplum/core';
import type { Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import { errors } from './outcome';

type Atom = { eval(context: unknown, input: TypedValue[]): TypedValue[] };
type Json = Record<string, unknown>;

interface Operation {
  type: string;
  path: string;
  name?: string;
  value?: unknown;
  /** The JSON type suffix of a value[x] (Quantity for valueQuantity), used for choice elements. */
  valueType?: string;
  index?: number;
  source?: number;
  destination?: number;
}

interface Location {
  container: Json;
  /** The JSON key of the element in its container (valueQuantity for value). */
  key: string;
  /** Position in the element's list; undefined for a single-valued element. */
  index?: number;
}

const FILTER_FUNCTIONS = new Set(['where', 'first', 'last', 'single', 'ofType', 'tail', 'skip', 'take']);

function invalid(message: string): never {
  throw errors.badRequest(`Invalid FHIRPath Patch: ${message}`);
}

function valueOf(part: ParametersParameter): { value: unknown; valueType?: string } | undefined {
  for (const [key, value] of Object.entries(part)) {
    if (key.startsWith('value') && key.length > 5) {
      return { value, valueType: key.slice(5) };
    }
  }
  if (part.part) {
    // A complex value given as parts, one per child element.
    const result: Json = {};
    for (const child of partsOf(part.part, 'value.part')) {
      const inner = valueOf(child);
      if (child.name && inner) {
        const existing = result[child.name];
        result[child.name] = existing === undefined ? inner.value : [...(Array.isArray(existing) ? existing : [existing]), inner.value];
      }
    }
    return { value: result };
  }
  return undefined;
}

/** A list of Parameters.parameter (or .part) entries; anything else is a malformed patch. */
function partsOf(value: unknown, what: string): ParametersParameter[] {
  if (value === undefined) {
    return [];
  }
  if (!Array.isArray(value) || value.some((p) => !p || typeof p !== 'object' || Array.isArray(p))) {
    invalid(`${what} must be a list of parameters`);
  }
  return value as ParametersParameter[];
}

/** index, source and destination: list positions, so integers (fhirpatch.html); never coerced. */
function integerPart(part: ParametersParameter | undefined, name: string): number | undefined {
  const value = part?.valueInteger;
  if (part !== undefined && !Number.isInteger(value)) {
    invalid(`${name} must be a valueInteger`);
  }
  return value;
}

function parseOperations(params: Parameters): Operation[] {
  const operations = partsOf(params.parameter, 'Parameters.parameter').filter((p) => p.name === 'operation');
  if (operations.length === 0) {
    invalid('no operation parameters');
  }
  return operations.map((op) => {
    const parts = new Map(partsOf(op.part, 'operation.part').map((p) => [p.name, p]));
    const type = parts.get('type')?.valueCode;
    const path = parts.get('path')?.valueString;
    if (typeof type !== 'string' || typeof path !== 'string' || !type || !path) {
      invalid('every operation needs a type (valueCode) and a path (valueString)');
    }
    const value = parts.get('value') ? valueOf(parts.get('value') as ParametersParameter) : undefined;
    return {
      type,
      path,
      name: parts.get('name')?.valueString,
      value: value?.value,
      valueType: value?.valueType,
      index: integerPart(parts.get('index'), 'index'),
      source: integerPart(parts.get('source'), 'source'),
      destination: integerPart(parts.get('destination'), 'destination'),
    };
  });
}

/** The JSON key holding element `name` in obj, resolving choice elements (value -> valueQuantity). */
function keyIn(obj: Json, name: string): string {
  if (name in obj) {
    return name;
  }
  return Object.keys(obj).find((k) => k.startsWith(name) && /^[A-Z]/.test(k.slice(name.length))) ?? name;
}

function split(atom: unknown): { parent?: Atom; name: string; filters: Atom[] } {
  if (atom instanceof IndexerAtom) {
    const inner = split((atom as unknown as { left: unknown }).left);
    // An indexer re-applied to the element list: evaluate "<list>[i]" with $this as the list.
    inner.filters.push({ eval: (ctx, input) => new IndexerAtom(new ListAtom() as never, (atom as unknown as { expr: never }).expr).eval(ctx as never, input) });
    return inner;
  }
  if (atom instanceof DotAtom) {
    const { left, right } = atom as unknown as { left: unknown; right: unknown };
    if (right instanceof FunctionAtom && FILTER_FUNCTIONS.has((right as unknown as { name: string }).name)) {
      const inner = split(left);
      inner.filters.push(right as unknown as Atom);
      return inner;
    }
    if (right instanceof SymbolAtom) {
      return { parent: left as Atom, name: (right as unknown as { name: string }).name, filters: [] };
    }
  }
  if (atom instanceof SymbolAtom) {
    return { name: (atom as unknown as { name: string }).name, filters: [] };
  }
  return invalid('the path must end in an element name, optionally followed by an index or filter');
}

/** Stands for "the input collection" inside a re-applied indexer. */
class ListAtom {
  eval(_ctx: unknown, input: TypedValue[]): TypedValue[] {
    return input;
  }
}

function evaluate(resource: Resource, expression: string): TypedValue[] {
  return evalFhirPathTyped(expression, [toTypedValue(resource)]);
}

/** Every element the path designates, with where it lives. */
function locate(resource: Resource, path: string): Location[] {
  let root: unknown;
  try {
    root = parseFhirPath(path).child;
  } catch (err) {
    invalid(`cannot parse path "${path}": ${(err as Error).message}`);
  }
  const { parent, name, filters } = split(root);
  const rootTyped = toTypedValue(resource);
  const context = { variables: { '%resource': rootTyped, '%context': rootTyped } };
  const parents = parent ? parent.eval(context, [rootTyped]) : [rootTyped];
  const locations: Location[] = [];
  for (const p of parents) {
    const container = p.value as Json;
    if (!container || typeof container !== 'object') {
      continue;
    }
    const key = keyIn(container, name);
    const raw = container[key];
    if (raw === undefined) {
      continue;
    }
    let selected = evalFhirPathTyped(name, [p]);
    const all = selected;
    for (const filter of filters) {
      selected = filter.eval(context, selected);
    }
    for (const tv of selected) {
      const position = all.indexOf(tv);
      locations.push({ container, key, index: Array.isArray(raw) ? position : undefined });
    }
  }
  return locations;
}

function exactlyOne(locations: Location[], op: Operation): Location {
  if (locations.length !== 1) {
    invalid(`${op.type} path "${op.path}" must match exactly one element, matched ${locations.length}`);
  }
  return locations[0];
}

function listAt(resource: Resource, op: Operation): unknown[] {
  const locations = locate(resource, op.path);
  if (locations.length === 0) {
    invalid(`${op.type} path "${op.path}" matches no list`);
  }
  const { container, key } = locations[0];
  const list = container[key];
  if (!Array.isArray(list) || locations.some((l) => l.container !== container)) {
    invalid(`${op.type} path "${op.path}" must designate one list`);
  }
  return list;
}

function apply(resource: Resource, op: Operation): void {
  switch (op.type) {
    case 'add': {
      if (!op.name || op.value === undefined) invalid('add needs a name and a value');
      const targets = evaluate(resource, op.path).filter((t) => t.value && typeof t.value === 'object');
      if (targets.length !== 1) invalid(`add path "${op.path}" must match exactly one element, matched ${targets.length}`);
      const container = targets[0].value as Json;
      const key = op.valueType && !(op.name in container) && isChoice(targets[0], op.name) ? op.name + op.valueType : op.name;
      const existing = container[key];
      if (Array.isArray(existing)) existing.push(op.value);
      else if (existing === undefined) container[key] = isListElement(targets[0], op.name) ? [op.value] : op.value;
      else invalid(`add: ${op.path}.${op.name} already has a value; use replace`);
      return;
    }
    case 'insert': {
      if (op.index === undefined || op.value === undefined) invalid('insert needs an index and a value');
      const list = listAt(resource, op);
      if (op.index < 0 || op.index > list.length) invalid(`insert index ${op.index} is outside the list`);
      list.splice(op.index, 0, op.value);
      return;
    }
    case 'delete': {
      const locations = locate(resource, op.path);
      if (locations.length > 1) invalid(`delete path "${op.path}" matches ${locations.length} elements`);
      if (locations.length === 1) remove(locations[0]);
      return;
    }
    case 'replace': {
      if (op.value === undefined) invalid('replace needs a value');
      const { container, key, index } = exactlyOne(locate(resource, op.path), op);
      if (index !== undefined) {
        (container[key] as unknown[])[index] = op.value;
      } else {
        const base = op.valueType && key !== op.path.split('.').pop() ? key.replace(/[A-Z][A-Za-z]*$/, '') : undefined;
        if (base && op.valueType) {
          delete container[key];
          container[base + op.valueType] = op.value;
        } else {
          container[key] = op.value;
        }
      }
      return;
    }
    case 'move': {
      if (op.source === undefined || op.destination === undefined) invalid('move needs a source and a destination');
      const list = listAt(resource, op);
      if (op.source < 0 || op.source >= list.length || op.destination < 0 || op.destination >= list.length) {
        invalid('move source or destination is outside the list');
      }
      const [item] = list.splice(op.source, 1);
      list.splice(op.destination, 0, item);
      return;
    }
    default:
      invalid(`unknown operation type "${op.type}"`);
  }
}

function remove({ container, key, index }: Location): void {
  if (index === undefined) {
    delete container[key];
    delete container['_' + key];
    return;
  }
  const list = container[key] as unknown[];
  list.splice(index, 1);
  const extensions = container['_' + key];
  if (Array.isArray(extensions)) extensions.splice(index, 1);
  if (list.length === 0) {
    delete container[key];
    delete container['_' + key];
  }
}

function isListElement(target: TypedValue, name: string): boolean {
  const elements = tryGetDataType(target.type)?.elements;
  return Boolean((elements?.[name] ?? elements?.[name + '[x]'])?.isArray);
}

function isChoice(target: TypedValue, name: string): boolean {
  return Boolean(tryGetDataType(target.type)?.elements[name + '[x]']);
}

/** Applies a FHIRPath Patch to a copy of the resource. */
export function applyFhirPathPatch(resource: Resource, params: Parameters): Resource {
  if (params?.resourceType !== 'Parameters') {
    invalid('the body must be a Parameters resource');
  }
  const copy = structuredClone(resource);
  for (const op of parseOperations(params)) {
    try {
      apply(copy, op);
    } catch (err) {
      if ((err as { status?: number }).status) throw err;
      invalid(`${op.type} "${op.path}": ${(err as Error).message}`);
    }
  }
  return copy;
}
