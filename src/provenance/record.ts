/**
 * The Provenance of a write, before the server signs it: the exact version as target, when
 * it was recorded, who wrote it (author, custodian organization, client application), the
 * v3 DataOperation, the version it replaced, the purpose of use, and what the client added
 * (X-Provenance or a transaction entry: its agents, reason, policy, entities and signatures).
 * The writes of one transaction that belong to the same patient record and activity share
 * one Provenance (addTarget): one activity, one set of agents, several exact versions.
 */
import type { Coding, Device, Provenance, ProvenanceAgent, Reference, Signature } from '@medplum/fhirtypes';
import type { Principal } from '../fhir/context';
import type { WriteEvent } from '../services';

export const PARTICIPANT_TYPE = 'http://terminology.hl7.org/CodeSystem/provenance-participant-type';
export const DATA_OPERATION = 'http://terminology.hl7.org/CodeSystem/v3-DataOperation';
export const SIGNATURE_TYPE = 'urn:iso-astm:E1762-95:2013';
const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';

export const AUTHOR_SIGNATURE: Coding = { system: SIGNATURE_TYPE, code: '1.2.840.10065.1.12.1.1', display: "Author's Signature" };
export const VERIFICATION_SIGNATURE: Coding = { system: SIGNATURE_TYPE, code: '1.2.840.10065.1.12.1.5', display: 'Verification Signature' };
export const JOSE = 'application/jose';

const ACTIVITY: Record<WriteEvent['interaction'], Coding> = {
  create: { system: DATA_OPERATION, code: 'CREATE', display: 'create' },
  update: { system: DATA_OPERATION, code: 'UPDATE', display: 'revise' },
  patch: { system: DATA_OPERATION, code: 'UPDATE', display: 'revise' },
  delete: { system: DATA_OPERATION, code: 'DELETE', display: 'delete' },
};

/** The client's additions that the Provenance of the write keeps (the rest is the server's to state). */
const CLIENT_FIELDS = ['agent', 'reason', 'policy', 'location', 'entity', 'occurredPeriod', 'occurredDateTime', 'extension', 'contained'] as const;

function participant(code: string, display: string) {
  return { coding: [{ system: PARTICIPANT_TYPE, code, display }] };
}

/** The client application: a logical Device reference by its OAuth client id (as the audit trail names it). */
export function clientDevice(principal: Principal, baseUrl: string): Reference<Device> {
  if (!principal.clientId) {
    // The server on its own authority (loading the profile pack at start-up).
    if (principal.kind === 'system') return serverDevice(baseUrl);
    return { type: 'Device', display: principal.kind === 'anonymous' ? 'anonymous client' : `${principal.kind} client` };
  }
  return { type: 'Device', identifier: { system: `${baseUrl}/clients`, value: principal.clientId }, display: principal.clientId };
}

/** This server, the signer of verification signatures. */
export function serverDevice(baseUrl: string): Reference<Device> {
  return { type: 'Device', identifier: { system: 'urn:ietf:rfc:3986', value: baseUrl }, display: `FHIR server ${new URL(baseUrl).host}` };
}

export function versionReference(resourceType: string, id: string, versionId: string): string {
  return `${resourceType}/${id}/_history/${versionId}`;
}

function serverAgents(principal: Principal, baseUrl: string): ProvenanceAgent[] {
  const organization = principal.organization ? { reference: `Organization/${principal.organization}` } : undefined;
  const agents: ProvenanceAgent[] = [];
  if (principal.fhirUser) {
    agents.push({ type: participant('author', 'Author'), who: { reference: principal.fhirUser }, ...(organization && { onBehalfOf: organization }) });
    // The application the author wrote through assembled the resource and sent it.
    agents.push({ type: participant('assembler', 'Assembler'), who: clientDevice(principal, baseUrl) });
  } else {
    agents.push({ type: participant('author', 'Author'), who: clientDevice(principal, baseUrl), ...(organization && { onBehalfOf: organization }) });
  }
  if (organization) {
    agents.push({ type: participant('custodian', 'Custodian'), who: organization });
  }
  return agents;
}

/** The v3 DataOperation a write is recorded as. */
export function activityCode(interaction: WriteEvent['interaction']): string {
  return ACTIVITY[interaction].code as string;
}

/** The Provenance of a write, without the server's signature (client signatures included). */
export function buildProvenance(
  id: string,
  event: WriteEvent,
  principal: Principal,
  baseUrl: string,
  client: Partial<Provenance> | undefined
): Provenance {
  const provenance: Provenance = {
    resourceType: 'Provenance',
    id,
    target: [{ reference: versionReference(event.resourceType, event.id, event.versionId) }],
    recorded: event.lastUpdated,
    activity: { coding: [ACTIVITY[event.interaction]] },
    agent: serverAgents(principal, baseUrl),
  };
  addRevision(provenance, event);
  if (principal.purposeOfUse?.length) {
    provenance.reason = principal.purposeOfUse.map((code) => ({ coding: [{ system: ACT_REASON, code }] }));
  }
  if (client) {
    const added = provenance as unknown as Record<string, unknown[] | unknown>;
    for (const field of CLIENT_FIELDS) {
      const value = client[field];
      if (value === undefined) continue;
      const existing = added[field];
      if (Array.isArray(existing) && Array.isArray(value)) {
        const seen = new Set(existing.map((item) => JSON.stringify(item)));
        added[field] = [...existing, ...value.filter((item) => !seen.has(JSON.stringify(item)))];
      } else {
        added[field] = value;
      }
    }
    // Verified before this is built (writer.ts); the server's own signature follows them.
    const signatures = clientSignatures(client);
    if (signatures.length) provenance.signature = signatures;
  }
  return provenance;
}

/** The version a write replaced, as an entity of its Provenance. */
function addRevision(provenance: Provenance, event: WriteEvent): void {
  if (event.interaction !== 'create' && event.previous?.meta?.versionId) {
    const what = { reference: versionReference(event.resourceType, event.id, event.previous.meta.versionId) };
    (provenance.entity ??= []).push({ role: 'revision', what });
  }
}

/**
 * A Provenance built for the first of several writes of one transaction, record and activity,
 * made to record all of them: their versions as targets, the latest time, the versions they
 * replaced. (Built without client additions: a write that brings its own Provenance keeps it.)
 */
export function recordTargets(provenance: Provenance, events: WriteEvent[]): void {
  provenance.target = events.map((event) => ({ reference: versionReference(event.resourceType, event.id, event.versionId) }));
  provenance.recorded = events.map((event) => event.lastUpdated).reduce((latest, time) => (time > latest ? time : latest));
  delete provenance.entity;
  events.forEach((event) => addRevision(provenance, event));
}

/** The client's signatures, in the order they came. */
export function clientSignatures(client: Partial<Provenance> | undefined): Signature[] {
  return Array.isArray(client?.signature) ? client.signature : [];
}
