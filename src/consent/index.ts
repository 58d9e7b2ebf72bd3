/**
 * The consent module: patients' Consents decide what institutions other than a record's
 * custodian may read (see rule.ts for the access rule, flatten.ts for how a Consent is read).
 *
 * Every Consent write rewrites the Consent's rules in the write's own transaction, so a
 * consent given, changed, revoked (status no longer active) or deleted counts from the very
 * next request, in every server process.
 *
 * Who may record a patient's Consent: the patient (a patient user, within their own record),
 * backend (system) clients such as a consent registry, and users of the institution that is
 * custodian of the Patient resource (which registered the patient and records consents on
 * their behalf). Other institutions may not: they would grant themselves access (403).
 */
import type { Consent } from '@medplum/fhirtypes';
import { actsForInstitution } from '../access/break-glass';
import { patientIdOf } from '../fhir/compartments';
import type { RequestContext } from '../fhir/context';
import { errors } from '../fhir/outcome';
import type { ServerModule, WriteEvent } from '../services';
import { ridOf } from '../store/rid';
import { sql } from '../store/sql';
import type { WriteTx } from '../store/write-tx';
import { consentRule } from './rule';
import { indexConsent, syncConsentIndex } from './store';

async function assertMayRecordConsent(ctx: RequestContext, tx: WriteTx, event: WriteEvent): Promise<void> {
  const { principal } = ctx;
  if (!actsForInstitution(principal)) return;
  const patients = new Set<string>();
  for (const consent of [event.resource, event.previous] as (Consent | undefined)[]) {
    const id = consent && patientIdOf(consent.patient, ctx.baseUrl);
    if (id) patients.add(id);
  }
  const holders = await tx.query<{ id: string; custodian: string | null }>(
    sql`SELECT id, custodian FROM resource WHERE rid = ANY(${[...patients].map((id) => ridOf('Patient', id))}::uuid[])`
  );
  const custodian = new Map(holders.rows.map((row) => [row.id, row.custodian]));
  for (const id of patients) {
    if (!principal.organization || custodian.get(id) !== principal.organization) {
      throw errors.forbidden(
        `Only Patient/${id} themselves, the institution that holds their Patient resource, or a system client may record their Consent`
      );
    }
  }
}

export const consentModule: ServerModule = {
  name: 'consent',
  async install(services) {
    services.accessRules.push(consentRule);
    services.writeHooks.push({
      async beforeWrite(ctx, tx, event) {
        if (event.resourceType === 'Consent' && !event.internal) await assertMayRecordConsent(ctx, tx, event);
      },
      async afterWrite(ctx, tx, event) {
        if (event.resourceType === 'Consent') {
          await indexConsent(tx, event.id, event.versionId, event.resource as Consent | undefined, ctx.baseUrl);
        }
      },
    });
    await syncConsentIndex(services);
  },
};
