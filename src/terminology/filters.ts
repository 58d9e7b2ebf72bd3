/**
 * ValueSet.compose.include.filter compiled against one code system: a membership test for a
 * concept, and for hierarchy filters the candidate concepts, so that expansion does not scan
 * the whole code system. A filter this server cannot evaluate says why (`unavailable`)
 * instead of guessing.
 */
import type { ValueSetComposeIncludeFilter } from '@medplum/fhirtypes';
import type { CompiledCodeSystem, ConceptEntry } from './code-system';

export interface CompiledFilter {
  /** Why the filter cannot be evaluated here; undefined when it can. */
  unavailable?: string;
  test(entry: ConceptEntry): boolean;
  /** The only concepts that can pass, when cheaper than scanning every concept. */
  candidates?(): Iterable<ConceptEntry>;
}

const HIERARCHY_PROPERTIES = new Set(['concept', 'code']);
/** Texts longer than this never match a regex filter: it bounds the cost of one test. */
const MAX_REGEX_INPUT = 512;
const MAX_REGEX_PATTERN = 256;

function unavailable(reason: string): CompiledFilter {
  return { unavailable: reason, test: () => false };
}

/**
 * Whether a repeated group (followed by *, + or {n,}) contains a quantifier or an alternation
 * anywhere inside it: the shapes ((a+)+, (a|aa)*) whose backtracking grows exponentially.
 */
function repeatsAmbiguousGroup(pattern: string): boolean {
  const stack: { risky: boolean }[] = [{ risky: false }];
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '\\') {
      i++;
    } else if (ch === '[') {
      for (i++; i < pattern.length && pattern[i] !== ']'; i++) if (pattern[i] === '\\') i++;
    } else if (ch === '(') {
      stack.push({ risky: false });
      // Skip a group's kind marker (?: ?= ?! ?<= ?<! ?<name>), which is no quantifier.
      const kind = /^\?(?::|=|!|<=|<!|<[A-Za-z_]\w*>)/.exec(pattern.slice(i + 1));
      if (kind) i += kind[0].length;
    } else if (ch === ')' && stack.length > 1) {
      const group = stack.pop() as { risky: boolean };
      const next = pattern[i + 1];
      const repeated = next === '*' || next === '+' || (next === '{' && /^\{\d*,\d*\}/.test(pattern.slice(i + 1)));
      if (repeated && group.risky) return true;
      stack[stack.length - 1].risky ||= group.risky || repeated;
    } else if (ch === '|' || ch === '*' || ch === '+' || ch === '?' || ch === '{') {
      stack[stack.length - 1].risky = true;
    }
  }
  return false;
}

/**
 * Patterns that can backtrack catastrophically (a quantified group that itself contains a
 * quantifier, or back-references) are refused: JavaScript regexes cannot be interrupted, and
 * the pattern comes from a client's ValueSet.
 */
export function compileSafeRegex(pattern: string): RegExp | string {
  if (pattern.length > MAX_REGEX_PATTERN) return `the regex is longer than ${MAX_REGEX_PATTERN} characters`;
  if (/\\[1-9]|\\k</.test(pattern) || repeatsAmbiguousGroup(pattern)) {
    return 'the regex repeats a group that itself repeats or alternates, or uses back-references, which this server does not evaluate';
  }
  try {
    return new RegExp(`^(?:${pattern})$`, 'u');
  } catch {
    return `"${pattern}" is not a valid regular expression`;
  }
}

function regexTest(pattern: string, text: (e: ConceptEntry) => string[]): CompiledFilter {
  const regex = compileSafeRegex(pattern);
  if (typeof regex === 'string') return unavailable(regex);
  return { test: (e) => text(e).some((t) => t.length <= MAX_REGEX_INPUT && regex.test(t)) };
}

function valueList(value: string): string[] {
  return value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
}

function hierarchyFilter(cs: CompiledCodeSystem, op: string, value: string): CompiledFilter {
  const target = cs.get(value);
  const below = () => (target ? cs.descendants(target) : new Set<ConceptEntry>());
  switch (op) {
    case 'is-a':
      return {
        test: (e) => target !== undefined && cs.isA(e, target),
        candidates: () => (target ? [target, ...below()] : []),
      };
    case 'descendent-of':
      return { test: (e) => target !== undefined && e !== target && cs.isA(e, target), candidates: below };
    case 'is-not-a':
      return { test: (e) => target === undefined || !cs.isA(e, target) };
    case 'generalizes':
      return {
        test: (e) => target !== undefined && cs.isA(target, e),
        candidates: () => (target ? [target, ...cs.ancestors(target)] : []),
      };
    case '=':
      return { test: (e) => target === e, candidates: () => (target ? [target] : []) };
    case 'in': {
      const set = new Set(valueList(value).map((v) => cs.get(v)).filter((e): e is ConceptEntry => e !== undefined));
      return { test: (e) => set.has(e), candidates: () => set };
    }
    case 'not-in': {
      const set = new Set(valueList(value).map((v) => cs.get(v)));
      return { test: (e) => !set.has(e) };
    }
    case 'regex':
      return regexTest(value, (e) => [e.code]);
    default:
      return unavailable(`the filter operator "${op}" does not apply to the property "concept"`);
  }
}

function propertyFilter(cs: CompiledCodeSystem, property: string, op: string, value: string): CompiledFilter {
  const values = property === 'display' ? (e: ConceptEntry) => (e.display ? [e.display] : []) : (e: ConceptEntry) => cs.propertyValues(e, property);
  switch (op) {
    case '=':
      return { test: (e) => values(e).includes(value) };
    case 'in': {
      const set = new Set(valueList(value));
      return { test: (e) => values(e).some((v) => set.has(v)) };
    }
    case 'not-in': {
      const set = new Set(valueList(value));
      return { test: (e) => !values(e).some((v) => set.has(v)) };
    }
    case 'regex':
      return regexTest(value, values);
    case 'exists': {
      if (value !== 'true' && value !== 'false') return unavailable(`the "exists" filter needs the value true or false, not "${value}"`);
      const wanted = value === 'true';
      return { test: (e) => (values(e).length > 0) === wanted };
    }
    case 'is-a':
    case 'descendent-of':
    case 'is-not-a':
    case 'generalizes': {
      // A hierarchical test on a code-valued property: its value is-a the given concept.
      const hierarchy = hierarchyFilter(cs, op, value);
      return { test: (e) => values(e).some((v) => { const c = cs.get(v); return c !== undefined && hierarchy.test(c); }) };
    }
    default:
      return unavailable(`the filter operator "${op}" is not supported`);
  }
}

export function compileFilter(cs: CompiledCodeSystem, filter: ValueSetComposeIncludeFilter): CompiledFilter {
  const { property, op, value } = filter;
  if (!property || !op || value === undefined) {
    return unavailable('a filter needs property, op and value');
  }
  if (HIERARCHY_PROPERTIES.has(property)) {
    return hierarchyFilter(cs, op, value);
  }
  if (property !== 'display' && !cs.knowsProperty(property)) {
    return unavailable(`the code system ${cs.url} defines no property "${property}"`);
  }
  return propertyFilter(cs, property, op, value);
}
