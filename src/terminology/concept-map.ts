/**
 * A ConceptMap indexed for $translate: each group's elements by source code, and by target
 * code for reverse translation. Compiled once per resource version.
 */
import type {
  CodeableConcept,
  Coding,
  ConceptMap,
  ConceptMapGroup,
  ConceptMapGroupElement,
  ConceptMapGroupElementTarget,
} from '@medplum/fhirtypes';

export interface TranslateMatch {
  equivalence: string;
  concept?: Coding;
  /** The canonical URL of the map that gave the match. */
  source: string;
  product?: { element?: string; concept: Coding }[];
}

export interface Dependency {
  element?: string;
  concept?: CodeableConcept;
}

export interface TranslateRequest {
  system: string;
  code: string;
  /** Restrict to groups whose target is this system. */
  targetSystem?: string;
  reverse?: boolean;
  dependencies?: Dependency[];
}

/** Translating backwards turns each relationship around. */
const INVERSE: Record<string, string> = { wider: 'narrower', narrower: 'wider', subsumes: 'specializes', specializes: 'subsumes' };

const NO_MATCH = new Set(['unmatched', 'disjoint']);

export function isMatch(m: TranslateMatch): boolean {
  return !NO_MATCH.has(m.equivalence);
}

interface IndexedGroup {
  group: ConceptMapGroup;
  bySource: Map<string, ConceptMapGroupElement>;
  byTarget: Map<string, { element: ConceptMapGroupElement; target: ConceptMapGroupElementTarget }[]>;
}

function dependenciesMet(target: ConceptMapGroupElementTarget, given: Dependency[] | undefined): boolean {
  if (!given?.length || !target.dependsOn?.length) return true;
  return target.dependsOn.every((d) =>
    given.some(
      (g) =>
        (!g.element || g.element === d.property) &&
        (g.concept?.coding ?? []).some((c) => c.code === d.value && (!d.system || !c.system || c.system === d.system))
    )
  );
}

export class CompiledConceptMap {
  readonly url: string;
  readonly version?: string;
  /** The source and target scopes (value sets or uris). */
  readonly sourceScope?: string;
  readonly targetScope?: string;
  private readonly groups: IndexedGroup[];

  constructor(readonly resource: ConceptMap) {
    this.url = resource.url ?? `ConceptMap/${resource.id ?? '(posted)'}`;
    this.version = resource.version;
    this.sourceScope = resource.sourceCanonical ?? resource.sourceUri;
    this.targetScope = resource.targetCanonical ?? resource.targetUri;
    this.groups = (resource.group ?? []).map((group) => {
      const bySource = new Map<string, ConceptMapGroupElement>();
      const byTarget = new Map<string, { element: ConceptMapGroupElement; target: ConceptMapGroupElementTarget }[]>();
      for (const element of group.element ?? []) {
        if (element.code && !bySource.has(element.code)) bySource.set(element.code, element);
        for (const target of element.target ?? []) {
          if (!target.code) continue;
          if (!byTarget.has(target.code)) byTarget.set(target.code, []);
          byTarget.get(target.code)?.push({ element, target });
        }
      }
      return { group, bySource, byTarget };
    });
  }

  /** Source systems (or target systems, for reverse) this map has groups for. */
  systems(reverse: boolean): string[] {
    return this.groups.map((g) => (reverse ? g.group.target : g.group.source)).filter((s): s is string => Boolean(s));
  }

  /**
   * The matches for one code, and the URL of another map to consult for codes a group leaves
   * unmapped (unmapped.mode = other-map), if any.
   */
  translate(request: TranslateRequest): { matches: TranslateMatch[]; otherMaps: string[] } {
    const matches: TranslateMatch[] = [];
    const otherMaps: string[] = [];
    for (const { group, bySource, byTarget } of this.groups) {
      const [from, to] = request.reverse ? [group.target, group.source] : [group.source, group.target];
      if (from && from !== request.system) continue;
      if (request.targetSystem && to !== request.targetSystem) continue;
      if (request.reverse) {
        for (const { element, target } of byTarget.get(request.code) ?? []) {
          const equivalence = target.equivalence ?? 'equivalent';
          matches.push({
            equivalence: INVERSE[equivalence] ?? equivalence,
            concept: { system: to, code: element.code, ...(element.display && { display: element.display }) },
            source: this.url,
          });
        }
        continue;
      }
      const element = bySource.get(request.code);
      if (element) {
        for (const target of element.target ?? []) {
          if (!dependenciesMet(target, request.dependencies)) continue;
          const match: TranslateMatch = { equivalence: target.equivalence ?? 'equivalent', source: this.url };
          if (target.code) match.concept = { system: to, code: target.code, ...(target.display && { display: target.display }) };
          if (target.product?.length) {
            match.product = target.product.map((p) => ({ element: p.property, concept: { system: p.system, code: p.value, ...(p.display && { display: p.display }) } }));
          }
          matches.push(match);
        }
        continue;
      }
      const unmapped = group.unmapped;
      if (unmapped?.mode === 'provided') {
        matches.push({ equivalence: 'equal', concept: { system: to, code: request.code }, source: this.url });
      } else if (unmapped?.mode === 'fixed' && unmapped.code) {
        matches.push({
          equivalence: 'relatedto',
          concept: { system: to, code: unmapped.code, ...(unmapped.display && { display: unmapped.display }) },
          source: this.url,
        });
      } else if (unmapped?.mode === 'other-map' && unmapped.url) {
        otherMaps.push(unmapped.url);
      }
    }
    return { matches, otherMaps };
  }
}
