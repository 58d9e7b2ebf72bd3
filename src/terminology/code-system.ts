/**
 * A CodeSystem compiled for lookups: every concept by code (honouring caseSensitive), its
 * hierarchy (nested concepts plus `parent`/`child` properties, which v3 code systems use for
 * their polyhierarchy), and its properties. Compiled once per resource version and kept.
 */
import type {
  CodeSystem,
  CodeSystemConcept,
  CodeSystemConceptDesignation,
  CodeSystemConceptProperty,
} from '@medplum/fhirtypes';

export interface ConceptEntry {
  code: string;
  /** Position in the code system, so that expansions follow its order. */
  order: number;
  display?: string;
  definition?: string;
  designation?: CodeSystemConceptDesignation[];
  property?: CodeSystemConceptProperty[];
  parents: ConceptEntry[];
  children: ConceptEntry[];
  /** notSelectable: a grouper that data may not carry. */
  abstract: boolean;
  /** Retired or explicitly inactive. */
  inactive: boolean;
}

export type Content = 'complete' | 'fragment' | 'example' | 'not-present' | 'supplement';

const PARENT = new Set(['parent', 'subsumedBy', 'http://hl7.org/fhir/concept-properties#parent']);
const CHILD = new Set(['child', 'http://hl7.org/fhir/concept-properties#child']);

/** The value of a concept property as text, whatever its value[x] type. */
export function propertyText(p: CodeSystemConceptProperty): string | undefined {
  if (p.valueCoding) return p.valueCoding.code;
  for (const key of ['valueCode', 'valueString', 'valueInteger', 'valueBoolean', 'valueDateTime', 'valueDecimal'] as const) {
    if (p[key] !== undefined) return String(p[key]);
  }
  return undefined;
}

/** Display texts compared leniently: surrounding and repeated spaces and case do not matter. */
export function sameDisplay(a: string, b: string): boolean {
  const norm = (s: string) => s.trim().replace(/\s+/g, ' ').toLowerCase();
  return norm(a) === norm(b);
}

export class CompiledCodeSystem {
  readonly url: string;
  readonly version?: string;
  readonly content: Content;
  /** undefined: the code system does not say, so codes are accepted in any case (Postel). */
  readonly caseSensitive?: boolean;
  readonly concepts: ConceptEntry[] = [];
  /** Codes of the properties the code system declares, plus the ones it uses. */
  readonly propertyCodes = new Set<string>();
  private readonly byCode = new Map<string, ConceptEntry>();
  private readonly byLowerCode = new Map<string, ConceptEntry>();
  private readonly ancestorMemo = new Map<ConceptEntry, Set<ConceptEntry>>();
  private readonly descendantMemo = new Map<ConceptEntry, Set<ConceptEntry>>();

  constructor(readonly resource: CodeSystem) {
    this.url = resource.url as string;
    this.version = resource.version;
    this.content = (resource.content ?? 'complete') as Content;
    this.caseSensitive = resource.caseSensitive;
    for (const p of resource.property ?? []) {
      if (p.code) this.propertyCodes.add(p.code);
    }
    const links: [ConceptEntry, CodeSystemConceptProperty][] = [];
    const visit = (concepts: CodeSystemConcept[] | undefined, parent: ConceptEntry | undefined) => {
      for (const c of concepts ?? []) {
        if (!c.code) continue;
        let entry = this.byCode.get(c.code);
        if (!entry) {
          entry = this.toEntry(c, this.concepts.length);
          this.byCode.set(c.code, entry);
          if (!this.byLowerCode.has(c.code.toLowerCase())) this.byLowerCode.set(c.code.toLowerCase(), entry);
          this.concepts.push(entry);
          for (const p of c.property ?? []) {
            this.propertyCodes.add(p.code as string);
            if (PARENT.has(p.code as string) || CHILD.has(p.code as string)) links.push([entry, p]);
          }
        }
        if (parent) link(parent, entry);
        visit(c.concept, entry);
      }
    };
    const link = (parent: ConceptEntry, child: ConceptEntry) => {
      if (parent !== child && !parent.children.includes(child)) {
        parent.children.push(child);
        child.parents.push(parent);
      }
    };
    visit(resource.concept, undefined);
    for (const [entry, p] of links) {
      const other = this.byCode.get(propertyText(p) ?? '');
      if (!other) continue;
      if (PARENT.has(p.code as string)) link(other, entry);
      else link(entry, other);
    }
  }

  private toEntry(c: CodeSystemConcept, order: number): ConceptEntry {
    const props = c.property ?? [];
    const flag = (code: string) => props.some((p) => p.code === code && p.valueBoolean === true);
    const status = props.find((p) => p.code === 'status')?.valueCode;
    return {
      code: c.code as string,
      order,
      display: c.display,
      definition: c.definition,
      designation: c.designation,
      property: c.property,
      parents: [],
      children: [],
      abstract: flag('notSelectable') || flag('abstract'),
      inactive: flag('inactive') || status === 'retired' || status === 'inactive',
    };
  }

  /** All the concepts are here (content complete): a code not found does not exist. */
  get complete(): boolean {
    return this.content === 'complete';
  }

  /** Some concepts are here (fragment, example): a code not found may still exist. */
  get partial(): boolean {
    return this.content === 'fragment' || this.content === 'example';
  }

  get(code: string): ConceptEntry | undefined {
    const exact = this.byCode.get(code);
    if (exact || this.caseSensitive === true) return exact;
    return this.byLowerCode.get(code.toLowerCase());
  }

  /** The concept's ancestors (not itself), memoized: is-a tests cost one set lookup. */
  ancestors(entry: ConceptEntry): Set<ConceptEntry> {
    return this.closure(entry, this.ancestorMemo, (e) => e.parents);
  }

  /** The concept's descendants (not itself), memoized. */
  descendants(entry: ConceptEntry): Set<ConceptEntry> {
    return this.closure(entry, this.descendantMemo, (e) => e.children);
  }

  private closure(entry: ConceptEntry, memo: Map<ConceptEntry, Set<ConceptEntry>>, next: (e: ConceptEntry) => ConceptEntry[]) {
    let result = memo.get(entry);
    if (!result) {
      result = new Set();
      const queue = [...next(entry)];
      while (queue.length) {
        const e = queue.pop() as ConceptEntry;
        if (e !== entry && !result.has(e)) {
          result.add(e);
          queue.push(...next(e));
        }
      }
      memo.set(entry, result);
    }
    return result;
  }

  /** a is-a b: the same concept, or a descendant of b. */
  isA(a: ConceptEntry, b: ConceptEntry): boolean {
    return a === b || this.ancestors(a).has(b);
  }

  /** The values of a property of a concept as text; parent and child come from the hierarchy. */
  propertyValues(entry: ConceptEntry, code: string): string[] {
    if (PARENT.has(code)) return entry.parents.map((p) => p.code);
    if (CHILD.has(code)) return entry.children.map((c) => c.code);
    if (code === 'inactive' && !entry.property?.some((p) => p.code === 'inactive')) return [String(entry.inactive)];
    if (code === 'notSelectable' && !entry.property?.some((p) => p.code === 'notSelectable')) return [String(entry.abstract)];
    return (entry.property ?? []).filter((p) => p.code === code).map(propertyText).filter((v): v is string => v !== undefined);
  }

  /** Properties a filter may name: declared ones, used ones, and those derived from the hierarchy. */
  knowsProperty(code: string): boolean {
    return this.propertyCodes.has(code) || PARENT.has(code) || CHILD.has(code) || code === 'inactive' || code === 'notSelectable';
  }

  /** Whether the display is one the code system gives the concept (display or a designation). */
  hasDisplay(entry: ConceptEntry, display: string): boolean {
    return (
      (entry.display !== undefined && sameDisplay(entry.display, display)) ||
      (entry.designation ?? []).some((d) => d.value !== undefined && sameDisplay(d.value, display))
    );
  }

  /** "name" as $lookup reports it. */
  get name(): string {
    return this.resource.title ?? this.resource.name ?? this.url;
  }

  /** How to describe why a code not found here may still exist. */
  describeContent(): string {
    switch (this.content) {
      case 'not-present':
        return `the code system ${this.url} is not loaded on this server (its CodeSystem resource has content "not-present")`;
      case 'fragment':
        return `only a fragment of the code system ${this.url} is known here (content "fragment")`;
      case 'example':
        return `only example codes of the code system ${this.url} are known here (content "example")`;
      case 'supplement':
        return `${this.url} is a supplement, not a code system`;
      default:
        return `the code system ${this.url} is complete`;
    }
  }
}
