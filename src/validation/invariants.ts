/**
 * FHIRPath invariants (ElementDefinition.constraint), each expression parsed once and then
 * evaluated on every value it applies to.
 *
 * The base invariants that apply to nearly every resource (ext-1 on every extension, ref-1
 * on every reference, dom-2..6 on every resource ...) are evaluated by equivalent native
 * functions, recognised by their exact expression: the FHIRPath engine takes 5-30 µs per
 * evaluation, which made them most of the cost of validating a resource. A few are checked by
 * the walker itself (see SKIPPED_KEYS in compile.ts).
 */
import { toTypedValue } from '@medplum/core';
import { compile, type CompiledExpression, type Typed } from '../fhir/fhirpath';
import type { Constraint } from './compile';

const MAX_CACHED = 10_000;
const cache = new Map<string, CompiledExpression | Error>();

function compiled(expression: string): CompiledExpression | Error {
  let found = cache.get(expression);
  if (!found) {
    try {
      found = compile(expression);
    } catch (err) {
      found = err instanceof Error ? err : new Error(String(err));
    }
    if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value as string);
    cache.set(expression, found);
  }
  return found;
}

export interface InvariantScope {
  /** The resource that contains the value (a contained resource for values inside it). */
  resource: Typed;
  /** The resource being validated. */
  rootResource: Typed;
}

const UCUM = toTypedValue('http://unitsofmeasure.org');

/**
 * 'pass', 'fail', or the reason it could not be evaluated. An empty result is not a failure:
 * comparisons FHIRPath cannot decide (dates of different precision) yield empty, and an
 * undecidable rule must not reject a resource. A constraint without an expression, or one
 * that yields several values (FHIRPath's singleton evaluation makes that an error where a
 * boolean is expected), cannot be evaluated: the caller warns instead of passing silently.
 */
export function evaluateInvariant(constraint: Constraint, value: Typed, scope: InvariantScope): 'pass' | 'fail' | Error {
  if (!constraint.expression) return new Error('it has no FHIRPath expression');
  const native = NATIVE_EXPRESSIONS[constraint.expression];
  if (native) return native(value.value as Json, scope) ? 'pass' : 'fail';
  const expression = compiled(constraint.expression);
  if (expression instanceof Error) return expression;
  try {
    const variables = { '%context': value, '%resource': scope.resource, '%rootResource': scope.rootResource, '%ucum': UCUM };
    const result = expression.eval({ variables }, [value]);
    if (result.length > 1) return new Error(`it gave ${result.length} values, not one boolean`);
    return result.length === 1 && result[0].value?.valueOf() === false ? 'fail' : 'pass';
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

type Json = Record<string, any>;

/** FHIRPath exists(): the element is there, as a value or (for a primitive) as its "_" element. */
function has(value: Json | undefined, key: string): boolean {
  if (!value || typeof value !== 'object') return false;
  const v = value[key] ?? value['_' + key];
  return v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0);
}

function hasChoice(value: Json, prefix: string): boolean {
  return Object.keys(value).some((k) => {
    const name = k.startsWith('_') ? k.slice(1) : k;
    return name.length > prefix.length && name.startsWith(prefix) && /[A-Z]/.test(name[prefix.length]);
  });
}

function containedOf(value: Json | undefined): Json[] {
  const contained = value?.contained;
  return Array.isArray(contained) ? contained.filter((c) => c && typeof c === 'object') : [];
}

/**
 * FHIRPath's start <= end on dates and dateTimes: undefined (empty, so the invariant holds)
 * when the precisions differ and the common part is equal.
 */
function notAfter(start: unknown, end: unknown): boolean | undefined {
  if (typeof start !== 'string' || typeof end !== 'string') return undefined;
  const timed = (v: string) => v.includes('T');
  if (timed(start) && timed(end)) {
    const a = Date.parse(start);
    const b = Date.parse(end);
    return Number.isNaN(a) || Number.isNaN(b) ? undefined : a <= b;
  }
  const a = timed(start) ? start.slice(0, 10) : start;
  const b = timed(end) ? end.slice(0, 10) : end;
  const n = Math.min(a.length, b.length);
  if (a.slice(0, n) !== b.slice(0, n)) return a.slice(0, n) < b.slice(0, n);
  return a.length === b.length && !timed(start) && !timed(end) ? true : undefined;
}

/** Native equivalents of the R4 base invariants every resource meets, by their exact expression. */
const NATIVE_EXPRESSIONS: Record<string, (value: Json, scope: InvariantScope) => boolean> = {
  // ext-1
  'extension.exists() != value.exists()': (v) => has(v, 'extension') !== hasChoice(v, 'value'),
  // ref-1
  "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))": (v, scope) =>
    typeof v.reference !== 'string' ||
    !v.reference.startsWith('#') ||
    containedOf(scope.rootResource.value as Json).some((c) => c.id === v.reference.slice(1)),
  // per-1
  'start.hasValue().not() or end.hasValue().not() or (start <= end)': (v) => notAfter(v.start, v.end) !== false,
  // cpt-2
  'value.empty() or system.exists()': (v) => !has(v, 'value') || has(v, 'system'),
  // qty-3
  'code.empty() or system.exists()': (v) => !has(v, 'code') || has(v, 'system'),
  // att-1
  'data.empty() or contentType.exists()': (v) => !has(v, 'data') || has(v, 'contentType'),
  // sqty-1
  'comparator.empty()': (v) => !has(v, 'comparator'),
  // dom-2
  'contained.contained.empty()': (v) => !containedOf(v).some((c) => has(c, 'contained')),
  // dom-4
  'contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()': (v) =>
    !containedOf(v).some((c) => has(c.meta, 'versionId') || has(c.meta, 'lastUpdated')),
  // dom-5
  'contained.meta.security.empty()': (v) => !containedOf(v).some((c) => has(c.meta, 'security')),
  // dom-6
  'text.`div`.exists()': (v) => has(v.text, 'div'),
};

/**
 * XHTML elements a narrative may use (R4 narrative rules: basic HTML formatting, tables,
 * lists, links and images), and what it must never contain: scripts, forms, frames, styles
 * sheets, event handler attributes, javascript: links.
 */
const ALLOWED_TAGS = new Set(
  (
    'a abbr acronym address b bdo big blockquote br caption cite code col colgroup dd dfn div dl dt em ' +
    'h1 h2 h3 h4 h5 h6 hr i img li ol p pre q samp small span strong sub sup table tbody td tfoot th thead tr tt ul var'
  ).split(' ')
);

/**
 * Problems of a narrative's div (txt-1, txt-2), as [key, message] pairs. Every pattern here
 * is linear in the length of the div (a tag is `<` up to the next `<` or `>`), so a
 * megabyte of crafted markup costs a megabyte of scanning.
 */
export function narrativeProblems(div: string): [string, string][] {
  const problems: [string, string][] = [];
  const root = /^\s*<div(\s[^<>]*)?>/.exec(div);
  if (!root || !/\sxmlns\s*=\s*["']http:\/\/www\.w3\.org\/1999\/xhtml["']/.test(root[1] ?? '')) {
    problems.push(['txt-1', 'The narrative must be a <div> element in the XHTML namespace (xmlns="http://www.w3.org/1999/xhtml")']);
  }
  const tags = new Set<string>();
  let handlers = false;
  let scripts = false;
  for (const match of div.matchAll(/<\s*([A-Za-z][A-Za-z0-9:-]*)([^<>]*)/g)) {
    tags.add(match[1].toLowerCase());
    const attributes = match[2];
    if (/\son[a-z]+\s*=/i.test(attributes)) handlers = true;
    if (/(href|src)\s*=\s*["']?\s*javascript:/i.test(attributes)) scripts = true;
  }
  const forbidden = [...tags].filter((t) => !ALLOWED_TAGS.has(t));
  if (forbidden.length) {
    problems.push(['txt-1', `The narrative uses elements that are not allowed: ${forbidden.map((t) => `<${t}>`).join(', ')}`]);
  }
  if (handlers) problems.push(['txt-1', 'The narrative must not contain event handler attributes (on...)']);
  if (scripts) problems.push(['txt-1', 'The narrative must not contain javascript: links']);
  const text = div.replace(/<[^<>]*>/g, '').replace(/&[a-z#0-9]+;/gi, 'x');
  if (!text.trim() && !tags.has('img')) problems.push(['txt-2', 'The narrative must have some non-whitespace content']);
  return problems;
}
