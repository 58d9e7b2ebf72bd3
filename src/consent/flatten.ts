/**
 * Turns a Consent into the flat rules the access filter evaluates in SQL (consent_provision).
 *
 * Only an `active` Consent of scope `patient-privacy` about a Patient of this server counts.
 * The base policy is the server's: without a Consent, other institutions see nothing (opt-in).
 * `Consent.provision` is an exception to that base, so the root provision permits unless its
 * `type` says deny; a nested provision is an exception to its parent, so without a `type` it
 * does the opposite of its parent. A nested provision applies only within its ancestors'
 * conditions: each row carries its own conditions intersected with theirs.
 *
 * Conditions (every one must hold; within one, the listed values are alternatives):
 * - actor: the party the provision grants or denies, by reference (Organization/x,
 *   Practitioner/y); the role is not interpreted, since a provision here always controls
 *   disclosure to the actor. Absent: anyone.
 * - purpose: the caller's purpose of use (v3 ActReason). Absent: any purpose.
 * - class: resource types (http://hl7.org/fhir/resource-types). Absent: every type.
 * - securityLabel: the record's meta.security carries the label; a v3 Confidentiality code is
 *   a bound (a permit covers records up to it, a deny from it up; unlabelled records are N).
 * - period: of the provision and of every ancestor.
 * - data (meaning instance): those resources only.
 * - action: a provision whose actions include neither `access` nor `disclose` does not govern reading.
 *
 * What this server cannot evaluate (class codes of other systems, data of other meanings,
 * actors named by identifier only, code, dataPeriod) never widens sharing: a permit leaves such
 * alternatives out (and grants nothing under code or dataPeriod); a deny drops the condition
 * and so denies more. Never more sharing than the patient said.
 */
import type { Coding, Consent, ConsentProvision, Period } from '@medplum/fhirtypes';
import { patientIdOf } from '../fhir/compartments';
import { isKnownResourceType } from '../fhir/definitions';
import { instantRange } from '../fhir/params';
import { referenceTarget } from '../fhir/references';

export const CONSENT_SCOPE = 'http://terminology.hl7.org/CodeSystem/consentscope';
const RESOURCE_TYPES = 'http://hl7.org/fhir/resource-types';
const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const CONSENT_ACTION = 'http://terminology.hl7.org/CodeSystem/consentaction';
export const CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const CONFIDENTIALITY_RANK: Record<string, number> = { U: 0, L: 1, M: 2, N: 3, R: 4, V: 5 };
const READ_ACTIONS = ['access', 'disclose'];
/** Most alternatives one provision's security-label conditions may expand to. */
const MAX_VARIANTS = 64;

export interface ProvisionRow {
  path: number[];
  variant: number;
  permit: boolean;
  actors: string[];
  purposes: string[];
  classes: string[];
  data: string[];
  labels: string[];
  confMin: number | null;
  confMax: number | null;
  /** ISO instants; null is unbounded. The end is exclusive. */
  periodStart: string | null;
  periodEnd: string | null;
}

export interface FlatConsent {
  patient: string;
  provisions: ProvisionRow[];
}

/** One way a record can satisfy a security-label condition. */
interface LabelOption {
  labels: string[];
  confMin: number | null;
  confMax: number | null;
}

/** The conditions of a provision: its own intersected with its ancestors'. */
interface Scope {
  actors?: Set<string>;
  purposes?: Set<string>;
  classes?: Set<string>;
  data?: Set<string>;
  /** Every group must be satisfied, by one of its options. */
  labelGroups: LabelOption[][];
  start?: number;
  end?: number;
  /** Carries a condition this server cannot evaluate (code, dataPeriod): grants nothing. */
  opaque: boolean;
  /** Governs reading (its actions, and its ancestors', include access or disclose). */
  reads: boolean;
}

function intersect(inherited: Set<string> | undefined, own: string[] | undefined): Set<string> | undefined {
  if (own === undefined) return inherited;
  if (inherited === undefined) return new Set(own);
  return new Set(own.filter((value) => inherited.has(value)));
}

function codes(codings: Coding[] | undefined): Coding[] {
  return (codings ?? []).filter((c) => typeof c.code === 'string' && c.code !== '');
}

function periodBounds(period: Period | undefined): { start?: number; end?: number } {
  const start = period?.start ? instantRange(period.start)?.[0].getTime() : undefined;
  const end = period?.end ? instantRange(period.end)?.[1].getTime() : undefined;
  // The end is inclusive at its precision (2024-12-31 is the whole day); rows keep it exclusive.
  return { start, end: end === undefined ? undefined : end + 1 };
}

/** The label alternatives of one provision's securityLabel list, read by its own effect. */
function labelGroup(labels: Coding[], permit: boolean): LabelOption[] {
  const options: LabelOption[] = [];
  const ranks: number[] = [];
  for (const label of labels) {
    const rank = label.system === CONFIDENTIALITY ? CONFIDENTIALITY_RANK[label.code as string] : undefined;
    if (rank !== undefined) ranks.push(rank);
    else options.push({ labels: [`${label.system ?? ''}|${label.code}`], confMin: null, confMax: null });
  }
  if (ranks.length) {
    options.push(permit ? { labels: [], confMin: null, confMax: Math.max(...ranks) } : { labels: [], confMin: Math.min(...ranks), confMax: null });
  }
  return options;
}

/** Every combination of one option per group (a conjunction of disjunctions, as a disjunction). */
function expand(groups: LabelOption[][]): LabelOption[] | undefined {
  let result: LabelOption[] = [{ labels: [], confMin: null, confMax: null }];
  for (const group of groups) {
    const next: LabelOption[] = [];
    for (const a of result) {
      for (const b of group) {
        const confMin = a.confMin === null ? b.confMin : b.confMin === null ? a.confMin : Math.max(a.confMin, b.confMin);
        const confMax = a.confMax === null ? b.confMax : b.confMax === null ? a.confMax : Math.min(a.confMax, b.confMax);
        if (confMin !== null && confMax !== null && confMin > confMax) continue;
        next.push({ labels: [...new Set([...a.labels, ...b.labels])].sort(), confMin, confMax });
      }
    }
    if (next.length > MAX_VARIANTS) return undefined;
    result = next;
  }
  return result;
}

/**
 * A list condition (alternatives): its values this server understands, and whether some are
 * not understood. Undefined when the provision does not state the condition.
 */
interface Alternatives {
  known: string[];
  unknown: boolean;
}

function alternatives<T>(items: T[] | undefined, read: (item: T) => string | undefined): Alternatives | undefined {
  if (!items?.length) return undefined;
  const known: string[] = [];
  let unknown = false;
  for (const item of items) {
    const value = read(item);
    if (value === undefined) unknown = true;
    else known.push(value);
  }
  return { known, unknown };
}

/**
 * The scope of a provision given its parent's. `narrow` is read for permits (alternatives not
 * understood are left out; other conditions not understood make it opaque), `broad` for denies
 * (a condition with alternatives not understood, or not understood at all, is dropped).
 */
function ownScope(provision: ConsentProvision, parent: Scope, mode: 'narrow' | 'broad', permit: boolean, baseUrl: string): Scope {
  const local = (reference: string | undefined) => {
    const target = reference ? referenceTarget(reference, baseUrl) : undefined;
    return target?.local && target.id ? `${target.type}/${target.id}` : undefined;
  };
  // An actor on another server is understood: it is nobody here.
  const actors = alternatives(provision.actor, (a) => (a.reference?.reference ? (local(a.reference.reference) ?? a.reference.reference) : undefined));
  const purposes = alternatives(codes(provision.purpose), (c) => (c.system === ACT_REASON ? c.code : `${c.system ?? ''}|${c.code}`));
  const classes = alternatives(codes(provision.class), (c) => (c.system === RESOURCE_TYPES && isKnownResourceType(c.code as string) ? c.code : undefined));
  const data = alternatives(provision.data, (d) => (d.meaning === 'instance' ? local(d.reference?.reference) : undefined));
  const condition = (inherited: Set<string> | undefined, own: Alternatives | undefined) => {
    if (!own) return inherited;
    if (mode === 'broad' && own.unknown) return inherited;
    return intersect(inherited, own.known);
  };

  const actions = (provision.action ?? []).flatMap((a) => codes(a.coding).filter((c) => c.system === CONSENT_ACTION || !c.system));
  const reads = parent.reads && (!provision.action?.length || actions.some((c) => READ_ACTIONS.includes(c.code as string)));
  const notUnderstood = Boolean(provision.code?.length) || Boolean(provision.dataPeriod);

  const { start, end } = periodBounds(provision.period);
  const labels = codes(provision.securityLabel);
  return {
    actors: condition(parent.actors, actors),
    purposes: condition(parent.purposes, purposes),
    classes: condition(parent.classes, classes),
    data: condition(parent.data, data),
    labelGroups: labels.length ? [...parent.labelGroups, labelGroup(labels, permit)] : parent.labelGroups,
    start: start === undefined ? parent.start : parent.start === undefined ? start : Math.max(start, parent.start),
    end: end === undefined ? parent.end : parent.end === undefined ? end : Math.min(end, parent.end),
    opaque: parent.opaque || (mode === 'narrow' && notUnderstood),
    reads,
  };
}

/** True when no record or caller can satisfy the scope: nothing below it can apply either. */
function impossible(scope: Scope): boolean {
  const empty = (set: Set<string> | undefined) => set !== undefined && set.size === 0;
  return (
    empty(scope.actors) ||
    empty(scope.purposes) ||
    empty(scope.classes) ||
    empty(scope.data) ||
    (scope.start !== undefined && scope.end !== undefined && scope.start >= scope.end)
  );
}

function rowsOf(scope: Scope, path: number[], permit: boolean): ProvisionRow[] {
  if (!scope.reads || (permit && scope.opaque)) return [];
  let options = expand(scope.labelGroups);
  if (!options) {
    // Too many alternatives to list: a permit grants nothing, a deny ignores its labels.
    if (permit) return [];
    options = [{ labels: [], confMin: null, confMax: null }];
  }
  const list = (set: Set<string> | undefined) => (set ? [...set].sort() : []);
  return options.map((option, variant) => ({
    path,
    variant,
    permit,
    actors: list(scope.actors),
    purposes: list(scope.purposes),
    classes: list(scope.classes),
    data: list(scope.data),
    labels: option.labels,
    confMin: option.confMin,
    confMax: option.confMax,
    periodStart: scope.start === undefined ? null : new Date(scope.start).toISOString(),
    periodEnd: scope.end === undefined ? null : new Date(scope.end).toISOString(),
  }));
}

/** Whether the Consent is one this server enforces: active, patient-privacy, about a local Patient. */
export function consentPatient(consent: Consent, baseUrl: string): string | undefined {
  if (consent.status !== 'active') return undefined;
  const privacy = consent.scope?.coding?.some((c) => c.system === CONSENT_SCOPE && c.code === 'patient-privacy');
  if (!privacy) return undefined;
  return patientIdOf(consent.patient, baseUrl);
}

/** The rows of an enforceable Consent, or undefined when it governs nothing. */
export function flattenConsent(consent: Consent, baseUrl: string): FlatConsent | undefined {
  const patient = consentPatient(consent, baseUrl);
  if (!patient || !consent.provision) return undefined;
  const provisions: ProvisionRow[] = [];
  const root: Scope = { labelGroups: [], opaque: false, reads: true };
  const visit = (provision: ConsentProvision, parents: [Scope, Scope], parentPermit: boolean | undefined, path: number[]) => {
    const permit = provision.type ? provision.type === 'permit' : parentPermit === undefined ? true : !parentPermit;
    const narrow = ownScope(provision, parents[0], 'narrow', permit, baseUrl);
    const broad = ownScope(provision, parents[1], 'broad', permit, baseUrl);
    if (impossible(broad)) return;
    if (permit) {
      if (!impossible(narrow)) provisions.push(...rowsOf(narrow, path, true));
    } else {
      provisions.push(...rowsOf(broad, path, false));
    }
    (provision.provision ?? []).forEach((child, i) => visit(child, [narrow, broad], permit, [...path, i]));
  };
  visit(consent.provision, [root, root], undefined, []);
  return { patient, provisions };
}
