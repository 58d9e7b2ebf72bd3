/**
 * A ValueSet linked to what its compose needs (code systems, imported value sets), so that
 * membership is decided without any further lookup, and the expansion is computed once.
 *
 * Membership is three-valued: true, false, or undefined when it cannot be decided here
 * (the code system is not loaded, only a fragment of it is, a filter cannot be evaluated).
 * A code found in one decidable include is in the value set even when another include is
 * undecidable; the value set as a whole can only be expanded when every part is decidable.
 */
import type {
  ValueSet,
  ValueSetComposeInclude,
  ValueSetComposeIncludeConcept,
  ValueSetExpansionContains,
} from '@medplum/fhirtypes';
import type { CompiledCodeSystem, ConceptEntry } from './code-system';
import { compileFilter, type CompiledFilter } from './filters';
import { expand, type Expansion } from './expansion';

export type Tri = boolean | undefined;

export interface Membership {
  result: Tri;
  /** Why not, or why it cannot be decided. */
  message?: string;
  /** The concept in its code system, when known. */
  entry?: ConceptEntry;
  cs?: CompiledCodeSystem;
  /** The display the value set itself gives the code. */
  composeDisplay?: string;
}

export interface Rule {
  system?: string;
  version?: string;
  cs?: CompiledCodeSystem;
  /** Why the code system is not available, when it is not. */
  csMissing?: string;
  /** Enumerated concepts by code (the code system's spelling when it is known). */
  concepts?: Map<string, ValueSetComposeIncludeConcept>;
  filters: CompiledFilter[];
  valueSets: LinkedValueSet[];
  /** Imported value sets that could not be resolved, with the reason. */
  unresolved: string[];
  /** compose.inactive = false: inactive codes are not members. */
  activeOnly: boolean;
}

/** How linking finds what a compose refers to. `pure` means: only immutable built-in content was used. */
export interface LinkContext {
  /** builtinOnly: do not consult stored code systems (see linkRule). */
  codeSystem(
    system: string,
    version?: string,
    options?: { builtinOnly?: boolean }
  ): Promise<{ cs?: CompiledCodeSystem; missing?: string; pure: boolean }>;
  valueSet(url: string, stack: readonly string[]): Promise<{ vs?: LinkedValueSet; missing?: string; pure: boolean }>;
}

const and = (a: Tri, b: Tri): Tri => (a === false || b === false ? false : a === undefined || b === undefined ? undefined : true);

export class LinkedValueSet {
  readonly url?: string;
  readonly version?: string;
  private expansionMemo?: { value?: Expansion; error?: unknown };

  constructor(
    readonly resource: ValueSet,
    readonly includes: Rule[],
    readonly excludes: Rule[],
    /** Built only from immutable built-in content: may be cached for the life of the process. */
    readonly pure: boolean,
    readonly maxExpansion: number
  ) {
    this.url = resource.url;
    this.version = resource.version;
  }

  get label(): string {
    return this.url ? (this.version ? `${this.url}|${this.version}` : this.url) : `ValueSet/${this.resource.id ?? '(posted)'}`;
  }

  /** Is system|code a member? */
  lookup(system: string, code: string): Membership {
    let found: Membership | undefined;
    let undecided: Membership | undefined;
    let refused: Membership | undefined;
    for (const rule of this.includes) {
      const m = lookupRule(rule, system, code);
      if (m.result === true) {
        found = m;
        break;
      }
      if (m.result === undefined) undecided ??= m;
      else if (m.message) refused ??= m;
    }
    if (!found) {
      if (undecided) return undecided;
      if (!this.includes.length) return { result: undefined, message: `The value set ${this.label} has no content definition (compose) to check against` };
      return { result: false, message: refused?.message };
    }
    for (const rule of this.excludes) {
      const m = lookupRule(rule, system, code);
      if (m.result === true) return { ...found, result: false, message: `The code ${code} is excluded from the value set ${this.label}` };
      if (m.result === undefined) return { ...found, result: undefined, message: m.message };
    }
    return found;
  }

  /** Every code system the value set draws from, for codes given without a system. */
  systems(seen = new Set<LinkedValueSet>()): Set<string> {
    const result = new Set<string>();
    if (seen.has(this)) return result;
    seen.add(this);
    for (const rule of this.includes) {
      if (rule.system) result.add(rule.system);
      for (const vs of rule.valueSets) vs.systems(seen).forEach((s) => result.add(s));
    }
    return result;
  }

  /** The full expansion, computed once; throws a FhirError (422) when it cannot be expanded here. */
  expansion(): Expansion {
    if (!this.expansionMemo) {
      try {
        this.expansionMemo = { value: expand(this) };
      } catch (error) {
        this.expansionMemo = { error };
      }
    }
    if (this.expansionMemo.error) throw this.expansionMemo.error;
    return this.expansionMemo.value as Expansion;
  }
}

export function lookupRule(rule: Rule, system: string, code: string): Membership {
  if (rule.system !== undefined && rule.system !== system) return { result: false };
  let out: Membership = { result: true };
  if (rule.system !== undefined) {
    const cs = rule.cs;
    const entry = cs?.get(code);
    if (rule.concepts) {
      const listed = rule.concepts.get(entry?.code ?? code);
      if (!listed) return { result: false };
      if (cs?.complete && !entry) return { result: false, message: `The code ${code} is not defined by the code system ${system}` };
      out = { result: true, entry, cs, composeDisplay: listed.display };
    } else {
      if (!cs || cs.content === 'not-present' || cs.content === 'supplement') {
        return { result: undefined, message: rule.csMissing ?? cs?.describeContent() };
      }
      if (!entry) {
        return cs.complete
          ? { result: false, message: `The code ${code} is not defined by the code system ${system}` }
          : { result: undefined, message: `The code ${code} is not among the concepts known here: ${cs.describeContent()}` };
      }
      for (const filter of rule.filters) {
        if (filter.unavailable) return { result: undefined, message: filter.unavailable };
        if (!filter.test(entry)) {
          return cs.complete ? { result: false } : { result: undefined, message: cs.describeContent() };
        }
      }
      out = { result: true, entry, cs };
    }
    if (rule.activeOnly && entry?.inactive) return { result: false, message: `The code ${code} is inactive` };
  }
  for (const vs of rule.valueSets) {
    const m = vs.lookup(system, code);
    out = { ...out, result: and(out.result, m.result), message: m.result === true ? out.message : m.message };
    if (out.result === false) return out;
  }
  if (rule.unresolved.length && out.result !== false) {
    return { ...out, result: undefined, message: rule.unresolved.join('; ') };
  }
  return out;
}

async function linkRule(include: ValueSetComposeInclude, activeOnly: boolean, ctx: LinkContext, stack: readonly string[], builtin: boolean) {
  const rule: Rule = { filters: [], valueSets: [], unresolved: [], activeOnly, version: include.version };
  let pure = true;
  if (include.system) {
    // A built-in value set that enumerates codes of a system that is not built in (languages:
    // BCP-47) is decided by its own list, so that checking it never needs the database.
    const enumerated = Boolean(include.concept?.length);
    const found = await ctx.codeSystem(include.system, include.version, { builtinOnly: builtin && enumerated });
    pure &&= found.pure;
    rule.cs = found.cs;
    rule.csMissing = found.missing;
    // The code system's own URL, so that a compose naming it by an alias (urn:oid:) still matches.
    rule.system = found.cs?.url ?? include.system;
    if (include.concept?.length) {
      rule.concepts = new Map();
      for (const c of include.concept) {
        if (c.code) rule.concepts.set(found.cs?.get(c.code)?.code ?? c.code, c);
      }
    } else if (found.cs) {
      rule.filters = (include.filter ?? []).map((f) => compileFilter(found.cs as CompiledCodeSystem, f));
    } else if (include.filter?.length) {
      rule.filters = include.filter.map(() => ({ unavailable: found.missing, test: () => false }));
    }
  }
  for (const url of include.valueSet ?? []) {
    const found = await ctx.valueSet(url, stack);
    pure &&= found.pure;
    if (found.vs) rule.valueSets.push(found.vs);
    else rule.unresolved.push(found.missing ?? `The value set ${url} is not known here`);
  }
  return { rule, pure };
}

/** Rules that stand for a stored expansion, for value sets that have no compose. */
function rulesFromExpansion(resource: ValueSet): Rule[] {
  const bySystem = new Map<string, Map<string, ValueSetComposeIncludeConcept>>();
  const visit = (contains: ValueSetExpansionContains[] | undefined) => {
    for (const c of contains ?? []) {
      if (c.system && c.code) {
        if (!bySystem.has(c.system)) bySystem.set(c.system, new Map());
        bySystem.get(c.system)?.set(c.code, { code: c.code, display: c.display });
      }
      visit(c.contains);
    }
  };
  visit(resource.expansion?.contains);
  return [...bySystem].map(([system, concepts]) => ({ system, concepts, filters: [], valueSets: [], unresolved: [], activeOnly: false }));
}

/** Links a ValueSet; `stack` holds the value sets being linked above it, to stop import cycles. */
export async function linkValueSet(
  resource: ValueSet,
  ctx: LinkContext,
  maxExpansion: number,
  /** builtin: the value set is built-in content (immutable); it then starts out pure. */
  origin: { builtin: boolean },
  stack: readonly string[] = []
): Promise<LinkedValueSet> {
  const compose = resource.compose;
  const activeOnly = compose?.inactive === false;
  const includes: Rule[] = [];
  const excludes: Rule[] = [];
  let pure = origin.builtin;
  const inner = resource.url ? [...stack, resource.url] : stack;
  for (const include of compose?.include ?? []) {
    const linked = await linkRule(include, activeOnly, ctx, inner, origin.builtin);
    includes.push(linked.rule);
    pure &&= linked.pure;
  }
  for (const exclude of compose?.exclude ?? []) {
    const linked = await linkRule(exclude, false, ctx, inner, origin.builtin);
    excludes.push(linked.rule);
    pure &&= linked.pure;
  }
  if (!compose && resource.expansion) includes.push(...rulesFromExpansion(resource));
  return new LinkedValueSet(resource, includes, excludes, pure, maxExpansion);
}
