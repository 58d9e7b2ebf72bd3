/**
 * Structural validation against the R4 base StructureDefinitions and their FHIRPath
 * invariants, by @medplum/core's validator.
 */
import { validateResource } from '@medplum/core';
import type { OperationOutcome, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import type { ResourceValidator } from '../services';

/** @medplum/core reports its text in details.text; FHIR clients read diagnostics. */
function normalize(issue: OperationOutcomeIssue): OperationOutcomeIssue {
  return { ...issue, diagnostics: issue.diagnostics ?? issue.details?.text };
}

export function validateStructure(resource: Resource): OperationOutcomeIssue[] {
  try {
    return validateResource(resource).map(normalize);
  } catch (err) {
    const outcome = (err as { outcome?: OperationOutcome }).outcome;
    if (outcome?.issue) {
      return outcome.issue.map(normalize);
    }
    throw err;
  }
}

export const baseValidator: ResourceValidator = {
  async validate(resource) {
    return validateStructure(resource);
  },
};
