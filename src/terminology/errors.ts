/**
 * The terminology errors that are neither "not found" nor "bad request": the question is
 * valid but this server cannot answer it (422 with an issue code that says why).
 */
import { FhirError, issue, outcome } from '../fhir/outcome';

/** 422 not-supported: the answer needs something this server does not have (SNOMED CT, LOINC, ...). */
export function notDecidable(text: string): FhirError {
  return new FhirError(422, outcome(issue('error', 'not-supported', text)));
}

/** 422 not-supported naming the value set and what it needs. */
export function cannotExpand(label: string, reason: string | undefined): FhirError {
  return notDecidable(`The value set ${label} cannot be expanded here: ${reason ?? 'part of its definition cannot be evaluated'}`);
}

/** 422 too-costly: the expansion is larger than TERMINOLOGY_MAX_EXPANSION. */
export function tooCostly(label: string, max: number): FhirError {
  return new FhirError(
    422,
    outcome(issue('error', 'too-costly', `The expansion of the value set ${label} has more than ${max} codes (TERMINOLOGY_MAX_EXPANSION)`))
  );
}
