/**
 * Code checks shared by $validate-code and the TerminologyService: is a code in a value set
 * or a code system, is its display right. Answers distinguish "invalid" (result false) from
 * "cannot be decided here" (result false with unknown: true, e.g. SNOMED CT not loaded).
 */
import type { CodeableConcept } from '@medplum/fhirtypes';
import type { CodeCheck, CodeToCheck } from '../services';
import { sameDisplay, type CompiledCodeSystem, type ConceptEntry } from './code-system';
import type { Session } from './resolver';
import type { LinkedValueSet, Membership } from './value-set';

export interface CheckOptions {
  /** Abstract (notSelectable) concepts are acceptable in this context. */
  abstractOk?: boolean;
  /** Preferred language of the returned display. */
  displayLanguage?: string;
}

/** The display in the preferred language (a designation), or the concept's own display. */
export function displayOf(
  concept: { display?: string; designation?: { language?: string; value?: string }[] } | undefined,
  language?: string
): string | undefined {
  if (language && concept?.designation) {
    const lang = language.toLowerCase();
    const match =
      concept.designation.find((d) => d.language?.toLowerCase() === lang) ??
      concept.designation.find((d) => d.language?.toLowerCase().startsWith(lang + '-'));
    if (match?.value) return match.value;
  }
  return concept?.display;
}

const join = (parts: (string | undefined)[]) => parts.filter(Boolean).join('; ') || undefined;

/** Remarks that do not make a valid code invalid: display, case, inactive. */
function remarks(cs: CompiledCodeSystem | undefined, entry: ConceptEntry | undefined, given: CodeToCheck, composeDisplay?: string): string[] {
  const notes: string[] = [];
  if (!entry) return notes;
  const system = cs?.url ?? given.system;
  if (given.display) {
    const ok = (cs ? cs.hasDisplay(entry, given.display) : false) || (composeDisplay !== undefined && sameDisplay(composeDisplay, given.display));
    const expected = entry.display ?? composeDisplay;
    if (!ok && (expected || entry.designation?.length)) {
      notes.push(`The display "${given.display}" is not a display of the code ${system}#${entry.code}${expected ? ` (expected "${expected}")` : ''}`);
    }
  }
  if (given.code !== entry.code && cs?.caseSensitive !== false) {
    notes.push(`The code "${given.code}" differs in case from "${entry.code}" as ${system} defines it`);
  }
  if (entry.inactive) notes.push(`The code ${system}#${entry.code} is inactive`);
  return notes;
}

/** A coding's version that differs from the code system's: the answer cannot be given from this version. */
function versionProblem(cs: CompiledCodeSystem | undefined, given: CodeToCheck): string | undefined {
  if (given.version && cs?.version && given.version !== cs.version) {
    return `The code system ${cs.url} is known here in version ${cs.version}, not ${given.version}`;
  }
  return undefined;
}

export function checkInCodeSystem(found: { cs?: CompiledCodeSystem; missing?: string }, given: CodeToCheck, options: CheckOptions = {}): CodeCheck {
  const { cs } = found;
  if (!given.code) return { result: false, message: 'No code was given' };
  if (!cs || cs.content === 'not-present' || cs.content === 'supplement') {
    return { result: false, unknown: true, message: `Cannot check the code ${given.code}: ${found.missing ?? cs?.describeContent()}` };
  }
  const version = versionProblem(cs, given);
  if (version) return { result: false, unknown: true, message: version };
  const entry = cs.get(given.code);
  if (!entry) {
    return cs.complete
      ? { result: false, message: `Unknown code "${given.code}" in the code system ${cs.url}` }
      : { result: false, unknown: true, message: `The code "${given.code}" is not among the concepts known here: ${cs.describeContent()}` };
  }
  if (entry.abstract && !options.abstractOk) {
    return { result: false, display: displayOf(entry, options.displayLanguage), message: `The code ${cs.url}#${entry.code} is abstract (not selectable) and cannot be used here` };
  }
  const notes = remarks(cs, entry, given);
  if (entry.abstract) notes.push(`The code ${cs.url}#${entry.code} is abstract (not selectable)`);
  return { result: true, display: displayOf(entry, options.displayLanguage), message: join(notes) };
}

function describeCode(given: CodeToCheck, system?: string): string {
  return system ? `${system}#${given.code}` : `"${given.code}"`;
}

export async function checkInValueSet(session: Session, vs: LinkedValueSet, given: CodeToCheck, options: CheckOptions = {}): Promise<CodeCheck> {
  if (!given.code) return { result: false, message: 'No code was given' };
  const code = given.code;
  let system = given.system;
  let m: Membership;
  if (system) {
    m = vs.lookup(system, code);
    if (m.result !== true && !vs.systems().has(system)) {
      const canonical = await session.canonicalSystem(system);
      if (canonical !== system) {
        system = canonical;
        m = vs.lookup(canonical, code);
      }
    }
  } else {
    // A code without a system (elements of type code): the value set's systems decide.
    const candidates = [...vs.systems()].map((s) => ({ s, m: vs.lookup(s, code) }));
    const hit = candidates.find((c) => c.m.result === true) ?? candidates.find((c) => c.m.result === undefined);
    m = hit?.m ?? { result: candidates.length ? false : undefined, message: candidates.length ? undefined : `The value set ${vs.label} names no code system` };
    system = hit?.s;
  }
  if (m.result === undefined) {
    return { result: false, unknown: true, message: `Cannot decide whether ${describeCode(given, system)} is in the value set ${vs.label}: ${m.message ?? 'part of its definition cannot be evaluated here'}` };
  }
  if (m.result === false) {
    return { result: false, message: join([`The code ${describeCode(given, system)} is not in the value set ${vs.label}`, m.message]) };
  }
  const version = versionProblem(m.cs, given);
  if (version) return { result: false, unknown: true, message: version };
  const display = displayOf(m.entry, options.displayLanguage) ?? m.composeDisplay;
  if (m.entry?.abstract && !options.abstractOk) {
    return { result: false, display, message: `The code ${describeCode(given, system)} is abstract (not selectable) and cannot be used here` };
  }
  const notes = m.entry ? remarks(m.cs, m.entry, given, m.composeDisplay) : [];
  if (!m.entry && given.display && m.composeDisplay && !sameDisplay(m.composeDisplay, given.display)) {
    notes.push(`The display "${given.display}" is not the display the value set gives ${describeCode(given, system)} (expected "${m.composeDisplay}")`);
  }
  if (m.entry?.abstract) notes.push(`The code ${describeCode(given, system)} is abstract (not selectable)`);
  return { result: true, display, message: join(notes) };
}

/** A CodeableConcept is valid when one of its codings is; otherwise the reasons of all of them. */
export async function checkConcept(concept: CodeableConcept, check: (c: CodeToCheck) => Promise<CodeCheck>): Promise<CodeCheck> {
  const codings = concept.coding ?? [];
  if (!codings.length) return { result: false, message: 'The CodeableConcept has no coding' };
  const results = [];
  for (const coding of codings) {
    const r = await check(coding);
    if (r.result) return r;
    results.push(r);
  }
  // One undecidable coding leaves the whole concept undecided: it may be the valid one.
  const unknown = results.some((r) => r.unknown);
  return { result: false, ...(unknown && { unknown: true }), message: join(results.map((r) => r.message)) };
}
