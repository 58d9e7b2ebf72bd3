/**
 * The expansion of a linked ValueSet: includes (enumerated concepts, whole code systems,
 * filters) intersected with their imported value sets, minus the excludes. It is either
 * complete or refused with a 422 that says what is missing; never partial.
 */
import type { CodeSystemConceptDesignation } from '@medplum/fhirtypes';
import type { ConceptEntry } from './code-system';
import { cannotExpand, tooCostly } from './errors';
import { lookupRule, type LinkedValueSet, type Rule } from './value-set';

export interface ExpansionItem {
  system: string;
  version?: string;
  code: string;
  display?: string;
  abstract?: boolean;
  inactive?: boolean;
  designation?: CodeSystemConceptDesignation[];
}

export interface Expansion {
  items: ExpansionItem[];
  keys: Set<string>;
  /** Code systems used, url -> version. */
  usedSystems: Map<string, string | undefined>;
}

export const itemKey = (system: string, code: string) => `${system}|${code}`;

function fromEntry(rule: Rule, entry: ConceptEntry): ExpansionItem {
  return {
    system: rule.system as string,
    version: rule.cs?.version,
    code: entry.code,
    display: entry.display,
    ...(entry.abstract && { abstract: true }),
    ...(entry.inactive && { inactive: true }),
    ...(entry.designation && { designation: entry.designation }),
  };
}

/** The codes a rule's system part contributes (undefined when it has none). */
function enumerateSystem(vs: LinkedValueSet, rule: Rule): ExpansionItem[] | undefined {
  if (rule.system === undefined) return undefined;
  const cs = rule.cs;
  const items: ExpansionItem[] = [];
  if (rule.concepts) {
    for (const listed of rule.concepts.values()) {
      const entry = cs?.get(listed.code as string);
      if (cs?.complete && !entry) continue; // not a code of the system: never a member
      if (rule.activeOnly && entry?.inactive) continue;
      const item: ExpansionItem = entry ? fromEntry(rule, entry) : { system: rule.system, version: rule.version, code: listed.code as string };
      if (listed.display) item.display = listed.display;
      if (listed.designation?.length) item.designation = listed.designation;
      items.push(item);
    }
    return items;
  }
  if (!cs || !cs.complete) {
    throw cannotExpand(vs.label, rule.csMissing ?? cs?.describeContent() ?? `the code system ${rule.system} is not known here`);
  }
  const blocked = rule.filters.find((f) => f.unavailable);
  if (blocked) throw cannotExpand(vs.label, blocked.unavailable);
  const narrowing = rule.filters.find((f) => f.candidates);
  const candidates = narrowing ? [...(narrowing.candidates as () => Iterable<ConceptEntry>)()].sort((a, b) => a.order - b.order) : cs.concepts;
  for (const entry of candidates) {
    if (rule.activeOnly && entry.inactive) continue;
    if (rule.filters.every((f) => f.test(entry))) {
      items.push(fromEntry(rule, entry));
      if (items.length > vs.maxExpansion) throw tooCostly(vs.label, vs.maxExpansion);
    }
  }
  return items;
}

function enumerateRule(vs: LinkedValueSet, rule: Rule): ExpansionItem[] {
  if (rule.unresolved.length) throw cannotExpand(vs.label, rule.unresolved.join('; '));
  let items = enumerateSystem(vs, rule);
  for (const imported of rule.valueSets) {
    const expansion = imported.expansion();
    items = items ? items.filter((i) => expansion.keys.has(itemKey(i.system, i.code))) : expansion.items;
  }
  return items ?? [];
}

export function expand(vs: LinkedValueSet): Expansion {
  const result: Expansion = { items: [], keys: new Set(), usedSystems: new Map() };
  const note = (rule: Rule) => {
    if (rule.cs) result.usedSystems.set(rule.cs.url, rule.cs.version);
    for (const imported of rule.valueSets) imported.expansion().usedSystems.forEach((v, k) => result.usedSystems.set(k, v));
  };
  for (const rule of vs.includes) {
    for (const item of enumerateRule(vs, rule)) {
      const key = itemKey(item.system, item.code);
      if (!result.keys.has(key)) {
        result.keys.add(key);
        result.items.push(item);
        if (result.items.length > vs.maxExpansion) throw tooCostly(vs.label, vs.maxExpansion);
      }
    }
    note(rule);
  }
  if (vs.excludes.length) {
    const kept: ExpansionItem[] = [];
    for (const item of result.items) {
      let excluded = false;
      for (const rule of vs.excludes) {
        const m = lookupRule(rule, item.system, item.code);
        if (m.result === undefined) throw cannotExpand(vs.label, m.message);
        if (m.result) {
          excluded = true;
          break;
        }
      }
      if (excluded) result.keys.delete(itemKey(item.system, item.code));
      else kept.push(item);
    }
    result.items = kept;
  }
  return result;
}
