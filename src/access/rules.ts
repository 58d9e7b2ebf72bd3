/**
 * Access rules that apply on top of a caller's scopes. The SMART policy decides what the
 * token's scopes permit; each rule registered in `services.accessRules` may only narrow that:
 * its read filter is ANDed into the one readFilter, its write check runs after the scopes'.
 *
 * This is where a Consent rule plugs in (users of another organization see a patient's
 * records only under an active Consent; the custodian always sees its own; a patient always
 * sees their own): readFilter returns, for a practitioner principal, a condition such as
 * `r.custodian = <org> OR r.compartments && (SELECT ... FROM consent index WHERE active ...)`,
 * and lets Patient principals (fhirUser Patient/...) and system clients through untouched.
 *
 * A token's policy, and the SQL it builds per resource type, is cached for as long as the
 * process sees the token: a rule must express state that changes (Consents given or
 * revoked) as SQL evaluated by the database, never as values looked up when it is called.
 */
import type { Resource } from '@medplum/fhirtypes';
import type { Interaction, Principal, RowAccessInfo } from '../fhir/context';
import type { Sql } from '../store/sql';

export interface AccessRule {
  name: string;
  /**
   * A SQL condition over the row alias `r` (resource_type, compartments, custodian, content)
   * that must also hold for the principal to see the row; undefined when the rule does not
   * restrict this principal or type. resourceType is undefined for queries over all types.
   */
  readFilter?(principal: Principal, resourceType: string | undefined): Sql | undefined;
  /** Throws FhirError 403 when the rule forbids the write. */
  assertWrite?(principal: Principal, interaction: Interaction, resource: Resource | undefined, stored: RowAccessInfo | undefined): void;
}
