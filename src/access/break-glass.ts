/**
 * Who the Consent rule governs, and emergency access ("break the glass").
 *
 * Institution users (practitioner users, who act for their organization) see a patient's
 * records held by other institutions only under the patient's Consent. A practitioner user
 * who states an emergency purpose of use (v3 ActReason ETREAT, emergency treatment, or BTG,
 * break the glass; from the token or X-Purpose-Of-Use, and only when the app is registered for
 * it) sees them without consent, and the AuditEvent of every such request is flagged with the
 * BTG security label. From anyone else (patients, backend clients) these purposes change
 * nothing: patients already see their own record, clients keep what their grant gives.
 */
import type { Principal } from '../fhir/context';

export const EMERGENCY_PURPOSES: readonly string[] = ['ETREAT', 'BTG'];

/** A user acting for an institution: every user who is not a patient. */
export function actsForInstitution(principal: Principal): boolean {
  return principal.kind === 'user' && !(principal.fhirUser ?? '').startsWith('Patient/');
}

/** A practitioner user who states an emergency purpose of use. */
export function breaksTheGlass(principal: Principal): boolean {
  return (
    actsForInstitution(principal) &&
    (principal.fhirUser ?? '').startsWith('Practitioner/') &&
    (principal.purposeOfUse ?? []).some((code) => EMERGENCY_PURPOSES.includes(code))
  );
}
