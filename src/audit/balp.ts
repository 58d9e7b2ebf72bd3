/**
 * Turns an AuditRecord into an AuditEvent shaped after the IHE Basic Audit Log Patterns
 * (BALP): type rest + the restful-interaction subtype, the client as Source Role ID, this
 * server as Destination Role ID, the user as information recipient, the patients concerned
 * as Person/Patient entities, the resource or query as System Object entities.
 *
 * An interaction that concerns several patients (a search, a Bundle) is recorded as one
 * AuditEvent per patient, as BALP's patient-specific patterns do: each patient finds every
 * access to their record in their own compartment and sees no other patient in it.
 * A practitioner breaking the glass (see access/break-glass.ts) gets the BTG security label.
 */
import type { AuditEvent, AuditEventAgent, AuditEventEntity, Bundle, Coding, Resource } from '@medplum/fhirtypes';
import type { AuditRecord, Principal } from '../fhir/context';
import { breaksTheGlass } from '../access/break-glass';
import { patientCompartments, patientIdOf } from '../fhir/compartments';
import { storedResourceOf } from '../fhir/json-body';

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const INTERACTION = 'http://hl7.org/fhir/restful-interaction';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const BALP_ENTITY_TYPE = 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType';
const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';

export interface AuditContext {
  principal: Principal;
  requestId: string;
  remoteAddress?: string;
  baseUrl: string;
}

const ACTION: Record<AuditRecord['interaction'], AuditEvent['action']> = {
  read: 'R',
  vread: 'R',
  history: 'R',
  capabilities: 'R',
  search: 'E',
  create: 'C',
  update: 'U',
  patch: 'U',
  delete: 'D',
  operation: 'E',
  batch: 'E',
  transaction: 'E',
  login: 'E',
  logout: 'E',
  token: 'E',
};

/** DICOM 110114 User Authentication: logins (and token grants, which are logins of apps) and logouts. */
const USER_AUTHENTICATION = { system: DCM, code: '110114', display: 'User Authentication' };
const SECURITY_SUBTYPE: Record<string, Coding> = {
  login: { system: DCM, code: '110122', display: 'Login' },
  token: { system: DCM, code: '110122', display: 'Login' },
  logout: { system: DCM, code: '110123', display: 'Logout' },
};

function subtype(record: AuditRecord): Coding[] {
  if (SECURITY_SUBTYPE[record.interaction]) return [SECURITY_SUBTYPE[record.interaction]];
  let code: string = record.interaction;
  if (record.interaction === 'search') {
    code = record.resourceType || record.compartment ? 'search-type' : 'search-system';
  } else if (record.interaction === 'history') {
    code = record.id ? 'history-instance' : record.resourceType ? 'history-type' : 'history-system';
  }
  const codings: Coding[] = [{ system: INTERACTION, code }];
  if (record.operation) {
    codings.push({ system: 'urn:ietf:rfc:3986', code: `$${record.operation}`, display: `$${record.operation}` });
  }
  return codings;
}

function outcomeOf(status: number): AuditEvent['outcome'] {
  if (status < 400) return '0';
  return status < 500 ? '4' : '8';
}

/** The patients an interaction concerned: the resource read or written, or the resources a Bundle returned. */
export function patientsOf(record: AuditRecord, baseUrl: string): string[] {
  const patients = new Set<string>(record.audited?.patients ?? []);
  const add = (resource: Resource | undefined) => {
    if (resource && resource.resourceType !== 'OperationOutcome') {
      for (const id of patientCompartments(resource, baseUrl)) patients.add(id);
    }
  };
  add(record.audited?.resource);
  const response = record.response;
  if (response?.resourceType === 'Bundle') {
    for (const entry of (response as Bundle).entry ?? []) {
      // A search result's compartments come with its row: no need to parse the resource.
      const stored = storedResourceOf(entry);
      if (stored) stored.compartments.forEach((id) => patients.add(id));
      else add(entry.resource);
    }
  } else if (!record.audited?.resource && response) {
    add(response);
  }
  if (record.compartment?.resourceType === 'Patient') patients.add(record.compartment.id);
  if (record.resourceType === 'Patient' && record.id) patients.add(record.id);
  if (record.interaction === 'search' && record.query) {
    for (const id of queriedPatients(record.resourceType, record.query, baseUrl)) patients.add(id);
  }
  return [...patients];
}

const PATIENT_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * The patients a search names in its criteria (BALP's patient-specific query), so that a
 * patient also learns of searches for their records that found nothing or were not permitted:
 * references to Patient/x in any parameter, ids given to a `patient` parameter (or one with the
 * :Patient modifier), and Patient?_id=x.
 */
function queriedPatients(resourceType: string | undefined, query: string, baseUrl: string): string[] {
  const ids: string[] = [];
  for (const [name, value] of new URLSearchParams(query)) {
    const [code, modifier] = name.split('.')[0].split(':');
    const bareIds = code === 'patient' || modifier === 'Patient' || (resourceType === 'Patient' && code === '_id');
    for (const item of value.split(',')) {
      const id = patientIdOf(item, baseUrl) ?? (bareIds && !name.includes('.') && PATIENT_ID.test(item) ? item : undefined);
      if (id) ids.push(id);
    }
  }
  return ids;
}

function agents(ctx: AuditContext): AuditEventAgent[] {
  const { principal } = ctx;
  const hasUser = Boolean(principal.userId || principal.fhirUser);
  const purposeOfUse = principal.purposeOfUse?.map((code) => ({ coding: [{ system: ACT_REASON, code }] }));
  const result: AuditEventAgent[] = [
    {
      type: { coding: [{ system: DCM, code: '110153', display: 'Source Role ID' }] },
      who: principal.clientId
        ? { identifier: { system: `${ctx.baseUrl}/clients`, value: principal.clientId }, display: principal.clientId }
        : { display: principal.kind === 'anonymous' ? 'anonymous client' : principal.kind },
      requestor: !hasUser,
      ...(ctx.remoteAddress && { network: { address: ctx.remoteAddress, type: '2' as const } }),
      ...(!hasUser && purposeOfUse && { purposeOfUse }),
    },
    {
      type: { coding: [{ system: DCM, code: '110152', display: 'Destination Role ID' }] },
      who: { display: new URL(ctx.baseUrl).host },
      requestor: false,
      network: { address: ctx.baseUrl, type: '5' },
    },
  ];
  if (hasUser) {
    result.push({
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP', display: 'information recipient' }] },
      who: principal.fhirUser ? { reference: principal.fhirUser } : { identifier: { value: principal.userId } },
      ...(principal.userId && { altId: principal.userId }),
      requestor: true,
      ...(purposeOfUse && { purposeOfUse }),
    });
  }
  if (principal.organization) {
    result.push({
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'RESP', display: 'responsible party' }] },
      who: { reference: `Organization/${principal.organization}` },
      requestor: false,
    });
  }
  return result;
}

function entities(record: AuditRecord, ctx: AuditContext, patients: string[]): AuditEventEntity[] {
  const result: AuditEventEntity[] = [
    { what: { identifier: { value: ctx.requestId } }, type: { system: BALP_ENTITY_TYPE, code: 'XrequestId' } },
  ];
  for (const id of patients) {
    result.push({
      what: { reference: `Patient/${id}` },
      type: { system: ENTITY_TYPE, code: '1', display: 'Person' },
      role: { system: OBJECT_ROLE, code: '1', display: 'Patient' },
    });
  }
  if (record.interaction === 'search' || (record.interaction === 'history' && !record.id)) {
    const request = `${record.method} ${record.url}`;
    result.push({
      type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
      role: { system: OBJECT_ROLE, code: '24', display: 'Query' },
      description: request,
      query: Buffer.from(request, 'utf8').toString('base64'),
    });
  } else if (record.resourceType && record.id) {
    const version = record.versionId ? `/_history/${record.versionId}` : '';
    result.push({
      what: { reference: `${record.resourceType}/${record.id}${version}` },
      type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
      role: { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' },
      ...(record.operation && { detail: [{ type: 'operation', valueString: `$${record.operation}` }] }),
    });
  }
  return result;
}

/** The AuditEvents of one interaction: one per patient concerned, or one when it concerns none or one. */
export function toAuditEvents(record: AuditRecord, ctx: AuditContext, recorded = new Date().toISOString()): AuditEvent[] {
  const patients = patientsOf(record, ctx.baseUrl);
  if (patients.length <= 1) return [toAuditEvent(record, ctx, recorded, patients)];
  return patients.map((patient) => toAuditEvent(record, ctx, recorded, [patient]));
}

export function toAuditEvent(
  record: AuditRecord,
  ctx: AuditContext,
  recorded = new Date().toISOString(),
  patients = patientsOf(record, ctx.baseUrl)
): AuditEvent {
  const purposes = ctx.principal.purposeOfUse ?? [];
  const breakTheGlass = breaksTheGlass(ctx.principal);
  const event: AuditEvent = {
    resourceType: 'AuditEvent',
    ...(breakTheGlass && {
      meta: { security: [{ system: ACT_REASON, code: 'BTG', display: 'break the glass' }] },
    }),
    type: SECURITY_SUBTYPE[record.interaction]
      ? USER_AUTHENTICATION
      : { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'Restful Operation' },
    subtype: subtype(record),
    action: ACTION[record.interaction],
    recorded,
    outcome: outcomeOf(record.status),
    ...(record.outcomeText && { outcomeDesc: record.outcomeText.slice(0, 1000) }),
    ...(purposes.length && { purposeOfEvent: purposes.map((code) => ({ coding: [{ system: ACT_REASON, code }] })) }),
    agent: agents(ctx),
    source: {
      site: new URL(ctx.baseUrl).host,
      observer: { display: 'fhir-server' },
      type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
    },
    entity: entities(record, ctx, patients),
  };
  return event;
}
