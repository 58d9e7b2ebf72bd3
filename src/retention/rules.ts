/**
 * Legal retention periods (Medical record management rules, 2013): outpatient records at
 * least 15 years from the last visit, inpatient records 30 years from discharge.
 *
 * An Encounter's class decides which rule applies; resources that reference an Encounter
 * inherit its retention, and a Patient is kept as long as any of their encounters.
 */
import type { Encounter, Resource } from '@medplum/fhirtypes';

export const OUTPATIENT_YEARS = 15;
export const INPATIENT_YEARS = 30;

/** v3 ActCode classes of inpatient care. */
const INPATIENT_CLASSES = new Set(['IMP', 'ACUTE', 'NONAC']);
/** National patient-type code system (CV09.00.404): 3 = inpatient. */
const PATIENT_TYPE_SYSTEM = 'urn:oid:2.16.156.10011.2.3.1.271';

export interface Retention {
  /** Until when the record must be kept; undefined while it cannot be known yet (an ongoing stay). */
  until?: Date;
  /** A human-readable reason, for the OperationOutcome of a refused delete. */
  reason: string;
}

function addYears(date: Date, years: number): Date {
  const result = new Date(date);
  result.setUTCFullYear(result.getUTCFullYear() + years);
  return result;
}

export function isInpatient(encounter: Encounter): boolean {
  if (encounter.class?.code && INPATIENT_CLASSES.has(encounter.class.code)) {
    return true;
  }
  return (encounter.type ?? []).some((t) => t.coding?.some((c) => c.system === PATIENT_TYPE_SYSTEM && c.code === '3'));
}

/** The retention of one Encounter, from its class and period. */
export function encounterRetention(encounter: Encounter): Retention {
  const ref = `Encounter/${encounter.id}`;
  const end = encounter.period?.end ? new Date(encounter.period.end) : undefined;
  const start = encounter.period?.start ? new Date(encounter.period.start) : undefined;
  if (isInpatient(encounter)) {
    if (!end) {
      return { reason: `inpatient stay ${ref} has no discharge date yet; it is kept ${INPATIENT_YEARS} years from discharge` };
    }
    return { until: addYears(end, INPATIENT_YEARS), reason: `inpatient stay ${ref}: ${INPATIENT_YEARS} years from discharge` };
  }
  // Outpatient (and any other class): from the visit; without any date, from when it was recorded.
  const visit = end ?? start ?? (encounter.meta?.lastUpdated ? new Date(encounter.meta.lastUpdated) : new Date());
  return { until: addYears(visit, OUTPATIENT_YEARS), reason: `outpatient visit ${ref}: ${OUTPATIENT_YEARS} years from the visit` };
}

/** The longest of several retentions; an unknown end (ongoing stay) outlasts every date. */
export function longest(retentions: Retention[]): Retention | undefined {
  let result: Retention | undefined;
  for (const r of retentions) {
    if (!result || (result.until && (!r.until || r.until > result.until))) {
      result = r;
    }
  }
  return result;
}

/** Ids of the Encounters a resource references (relative, or absolute on this server). */
export function referencedEncounters(resource: Resource, baseUrl: string): string[] {
  const ids = new Set<string>();
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) {
      value.forEach(walk);
    } else if (value && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) {
        if (key === 'reference' && typeof child === 'string') {
          const local = child.startsWith(baseUrl + '/') ? child.slice(baseUrl.length + 1) : child;
          const match = /^Encounter\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/.*)?$/.exec(local);
          if (match) ids.add(match[1]);
        } else if (key !== 'contained') {
          walk(child);
        }
      }
    }
  };
  walk(resource);
  return [...ids];
}
