/**
 * The Consent access rule, composed into the SMART access policy (services.accessRules).
 *
 * For an institution user (a practitioner user acting for organization O), a row in a
 * patient's compartment is visible when O is its custodian, or when every patient whose
 * compartment holds it permits it: some provision of an active Consent of that patient
 * permits this caller, this record, now, and no provision denies it, except the denies the
 * permit is nested in (its own exceptions). A deny therefore wins over any permit that is not
 * an exception to it, within one Consent and across Consents.
 *
 * Security labels are those of the row and of the resource's current version, so labelling a
 * record later also covers the versions before (history, vread).
 *
 * Records with no custodian (written by clients or users without an organization: the
 * bootstrap admin, patients, the server's own AuditEvents, AUTH_DISABLED) belong to no
 * institution, so institutions see them only under consent too. Rows outside every patient
 * compartment (practitioners, organizations, terminology) are not restricted. Patients, backend
 * (system) clients, and a practitioner breaking the glass are not restricted by this rule.
 *
 * The condition is SQL over consent_provision, evaluated by the database in the same query as
 * the search (an index probe per patient of each candidate row), so a Consent written,
 * revoked or expired counts from the next query in every process, although the policy and
 * its SQL are cached per token.
 *
 * Writes: institution users may create records (theirs), but may change or delete a record in
 * a patient's compartment only when their organization is its custodian; consent shares for
 * reading.
 */
import { inPatientCompartment } from '../access/smart-policy';
import type { AccessRule } from '../access/rules';
import { actsForInstitution, breaksTheGlass } from '../access/break-glass';
import type { Principal } from '../fhir/context';
import { errors } from '../fhir/outcome';
import { sql, type Sql } from '../store/sql';

/** The conditions of provision row `alias` that must hold for this caller and the row r. */
function provisionMatches(alias: 'p' | 'd', actors: string[], purposes: string[]): Sql {
  const x = sql.raw(alias);
  return sql`(${x}.actors = '{}' OR ${x}.actors && ${actors}::text[])
    AND (${x}.purposes = '{}' OR ${x}.purposes && ${purposes}::text[])
    AND (${x}.classes = '{}' OR r.resource_type = ANY(${x}.classes))
    AND (${x}.data = '{}' OR (r.resource_type || '/' || r.id) = ANY(${x}.data))
    AND ${x}.period @> now()
    AND (${x}.labels = '{}' OR consent_record_labels(r.rid, r.content) @> ${x}.labels)
    AND (${x}.conf_min IS NULL OR consent_record_confidentiality(r.rid, r.content) >= ${x}.conf_min)
    AND (${x}.conf_max IS NULL OR consent_record_confidentiality(r.rid, r.content) <= ${x}.conf_max)`;
}

/** What an institution user may see of patients' records: their custodian's, and what consent permits. */
export function consentFilter(principal: Principal): Sql {
  const actors = [principal.organization && `Organization/${principal.organization}`, principal.fhirUser].filter(
    (a): a is string => Boolean(a)
  );
  const purposes = principal.purposeOfUse ?? [];
  const own = principal.organization ? sql`r.custodian = ${principal.organization} OR ` : sql``;
  return sql`(${own}NOT EXISTS (
    SELECT 1 FROM unnest(r.compartments) AS consent_subject(patient)
    WHERE NOT EXISTS (
      SELECT 1 FROM consent_provision p
      WHERE p.patient = consent_subject.patient AND p.permit AND ${provisionMatches('p', actors, purposes)}
        AND NOT EXISTS (
          SELECT 1 FROM consent_provision d
          WHERE d.patient = consent_subject.patient AND NOT d.permit AND ${provisionMatches('d', actors, purposes)}
            AND NOT (d.consent_rid = p.consent_rid AND d.path = p.path[1:cardinality(d.path)])))))`;
}

export const consentRule: AccessRule = {
  name: 'consent',
  readFilter(principal, resourceType) {
    if (!actsForInstitution(principal) || breaksTheGlass(principal)) return undefined;
    // Rows of types outside the Patient compartment never belong to a patient.
    if (resourceType && !inPatientCompartment(resourceType)) return undefined;
    return consentFilter(principal);
  },
  assertWrite(principal, interaction, _resource, stored) {
    if (!actsForInstitution(principal) || !stored || stored.compartments.length === 0) return;
    if (stored.custodian !== principal.organization) {
      const holder = stored.custodian ? `Organization/${stored.custodian}` : 'no institution';
      throw errors.forbidden(
        `${stored.resourceType}/${stored.id} is held by ${holder}: only its custodian may ${interaction} it (consent shares records for reading)`
      );
    }
  },
};
