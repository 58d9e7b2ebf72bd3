/**
 * CN Consent (the separate consent the Personal Information Protection Law asks for health
 * data), CN Signature Provenance (the electronic signature of a version, as this server
 * writes it) and CN AuditEvent (the IHE BALP events this server writes).
 */
import type { StructureDefinition } from '@medplum/fhirtypes';
import { CORE, HL7, ID, invariant, slicedBy, structureDefinition, vsUrl } from './common';
import { r4Coding } from './value-sets';

/**
 * Rules on the top provision are invariants of the Consent, not cardinalities of
 * Consent.provision.*: nested provisions (exceptions) reach the same element definition
 * through contentReference, and they may leave the type and period to their parent.
 */
export const CONSENT_INVARIANTS = {
  provisionType: invariant('cn-con-1', 'The provision says whether it permits or denies', 'provision.type.exists()'),
  provisionPeriod: invariant('cn-con-2', 'The provision says from when it applies', 'provision.period.start.exists()'),
  provisionActors: invariant(
    'cn-con-3',
    'Actors of a provision (and of its exceptions, two levels down) are organizations or practitioners',
    "(provision | provision.provision | provision.provision.provision).actor.all(reference.reference.exists() implies reference.reference.matches('(^|/)(Organization|Practitioner|PractitionerRole)/[A-Za-z0-9.-]{1,64}(/_history/[A-Za-z0-9.-]{1,64})?$'))"
  ),
};

export function consentProfile(): StructureDefinition {
  const i = CONSENT_INVARIANTS;
  return structureDefinition({
    id: 'cn-consent',
    name: 'CNConsent',
    title: 'CN Consent',
    description:
      "A patient's privacy consent (separate consent for sensitive personal information, PIPL): whose data, which organizations " +
      'or practitioners it permits or denies, for what period, which resource types, security labels and purposes.',
    type: 'Consent',
    elements: [
      { id: 'Consent', constraint: [i.provisionType, i.provisionPeriod, i.provisionActors] },
      { id: 'Consent.identifier', slicing: slicedBy('system', 'The informed-consent form number, next to other identifiers') },
      { id: 'Consent.identifier:consentFormNumber', sliceName: 'consentFormNumber', short: '知情同意书编号 (informed-consent form number)', min: 0, max: '1' },
      { id: 'Consent.identifier:consentFormNumber.system', min: 1, fixedUri: ID.consentForm },
      { id: 'Consent.identifier:consentFormNumber.value', min: 1 },
      { id: 'Consent.scope', patternCodeableConcept: { coding: [{ system: HL7.consentScope, code: 'patient-privacy' }] } },
      { id: 'Consent.patient', min: 1, type: [{ code: 'Reference', targetProfile: [CORE + 'Patient'] }] },
      { id: 'Consent.dateTime', mustSupport: true },
      { id: 'Consent.organization', mustSupport: true },
      { id: 'Consent.provision', min: 1, mustSupport: true },
      { id: 'Consent.provision.type', mustSupport: true },
      { id: 'Consent.provision.period', mustSupport: true },
      { id: 'Consent.provision.actor', mustSupport: true },
      {
        id: 'Consent.provision.actor.reference',
        type: [{ code: 'Reference', targetProfile: [CORE + 'Organization', CORE + 'Practitioner', CORE + 'PractitionerRole'] }],
      },
      { id: 'Consent.provision.securityLabel', mustSupport: true },
      { id: 'Consent.provision.purpose', mustSupport: true },
      {
        id: 'Consent.provision.class',
        short: 'Resource types covered',
        binding: { strength: 'required', description: 'FHIR resource types', valueSet: 'http://hl7.org/fhir/ValueSet/resource-types' },
        mustSupport: true,
      },
    ],
  });
}

/** The agent types of a signed Provenance, as the server writes them. */
export const PROVENANCE_AGENTS = {
  author: r4Coding(HL7.provenanceParticipant, 'author'),
  custodian: r4Coding(HL7.provenanceParticipant, 'custodian'),
  /** The client application the author wrote through, which assembled and sent the resource. */
  application: r4Coding(HL7.provenanceParticipant, 'assembler'),
};

const agentOf = (coding: { system: string; code: string }) => `agent.where(type.coding.where(system = '${coding.system}' and code = '${coding.code}').exists())`;
/**
 * A reference to that type: by its literal reference, or logical (type + identifier), as the
 * server names client devices; an Organization also by its national institution code.
 */
const targetIs = (type: string) =>
  `(who.type = '${type}' or who.reference.matches('(^|/)${type}/[A-Za-z0-9.-]{1,64}(/_history/[A-Za-z0-9.-]{1,64})?$')` +
  (type === 'Organization' ? ` or who.identifier.system = '${ID.institution}'` : '') +
  ')';

/**
 * The agents are rules on the Provenance rather than slices of Provenance.agent: entity.agent
 * reaches the same element definition through contentReference, and a slice "one author"
 * would then be demanded of every entity as well.
 */
export const PROVENANCE_INVARIANTS = {
  versionedTarget: invariant(
    'cn-prov-1',
    'The target is a specific version: a reference ending in /_history/[versionId]',
    "reference.matches('^(.*/)?[A-Z][A-Za-z]+/[A-Za-z0-9.-]{1,64}/_history/[A-Za-z0-9.-]{1,64}$')"
  ),
  author: invariant('cn-prov-2', 'Exactly one agent is the author (provenance-participant-type author)', `${agentOf(PROVENANCE_AGENTS.author)}.count() = 1`),
  custodian: invariant(
    'cn-prov-3',
    'At most one custodian agent, and it is an Organization',
    `${agentOf(PROVENANCE_AGENTS.custodian)}.count() <= 1 and ${agentOf(PROVENANCE_AGENTS.custodian)}.all(${targetIs('Organization')})`
  ),
  application: invariant(
    'cn-prov-4',
    'At most one client application agent (assembler), and it is a Device',
    `${agentOf(PROVENANCE_AGENTS.application)}.count() <= 1 and ${agentOf(PROVENANCE_AGENTS.application)}.all(${targetIs('Device')})`
  ),
};

export function provenanceProfile(): StructureDefinition {
  const i = PROVENANCE_INVARIANTS;
  return structureDefinition({
    id: 'cn-signature-provenance',
    name: 'CNSignatureProvenance',
    title: 'CN Signature Provenance',
    description:
      'The electronic signature of one version of a resource (EMR application rules 2017, Electronic Signature Law): the ' +
      'version signed, when, the operation, the author, the custodian organization and the client application (a Device), and ' +
      'one or more JWS signatures (compact serialization, detached payload) over that exact version.',
    type: 'Provenance',
    elements: [
      { id: 'Provenance', constraint: [i.author, i.custodian, i.application] },
      { id: 'Provenance.target', constraint: [i.versionedTarget], comment: 'A versioned reference, e.g. Patient/1/_history/2.' },
      { id: 'Provenance.recorded', mustSupport: true },
      {
        id: 'Provenance.activity',
        min: 1,
        binding: { strength: 'required', description: 'Create, update or delete', valueSet: vsUrl('cn-provenance-activity') },
      },
      {
        id: 'Provenance.agent',
        comment:
          'The author (provenance-participant-type author: the user, or the client application when no user is involved), the ' +
          'custodian Organization (custodian) and the client application the author wrote through, a Device (assembler).',
        mustSupport: true,
      },
      { id: 'Provenance.signature', min: 1, mustSupport: true },
      {
        id: 'Provenance.signature.type',
        binding: { strength: 'required', description: "Author's or verification signature", valueSet: vsUrl('cn-signature-type') },
      },
      { id: 'Provenance.signature.when', mustSupport: true },
      { id: 'Provenance.signature.who', mustSupport: true },
      { id: 'Provenance.signature.sigFormat', min: 1, fixedCode: 'application/jose' },
      { id: 'Provenance.signature.data', min: 1, comment: 'Base64 of a JWS compact serialization with a detached payload (header..signature).' },
    ],
  });
}

export const AUDIT_INVARIANTS = {
  requestor: invariant('cn-ae-1', 'One agent is the requestor (the user, or the client acting on its own)', 'agent.where(requestor = true).exists()'),
  who: invariant('cn-ae-2', 'Every agent says who it is', 'who.exists()'),
  patient: invariant(
    'cn-ae-3',
    'A patient entity (role 1) names a Patient',
    `role.where(system = '${HL7.objectRole}' and code = '1').exists() implies what.reference.matches('(^|/)Patient/[A-Za-z0-9.-]{1,64}(/_history/[A-Za-z0-9.-]{1,64})?$')`
  ),
};

export function auditEventProfile(): StructureDefinition {
  const i = AUDIT_INVARIANTS;
  return structureDefinition({
    id: 'cn-audit-event',
    name: 'CNAuditEvent',
    title: 'CN AuditEvent',
    description:
      'An audit record after the IHE Basic Audit Log Patterns (BALP), as this server writes one for every interaction: what ' +
      'happened (type, subtype, action), when, the outcome, who (every agent identified, one of them the requestor, with the ' +
      'purpose of use), where (source), and the patients and objects concerned (GB/T 39725-2020: audit everything).',
    type: 'AuditEvent',
    elements: [
      { id: 'AuditEvent', constraint: [i.requestor] },
      { id: 'AuditEvent.subtype', min: 1 },
      { id: 'AuditEvent.recorded', mustSupport: true },
      { id: 'AuditEvent.outcome', min: 1 },
      { id: 'AuditEvent.purposeOfEvent', mustSupport: true },
      { id: 'AuditEvent.agent', constraint: [i.who], mustSupport: true },
      { id: 'AuditEvent.agent.who', min: 1 },
      { id: 'AuditEvent.agent.network', mustSupport: true },
      { id: 'AuditEvent.agent.purposeOfUse', mustSupport: true },
      { id: 'AuditEvent.source', mustSupport: true },
      { id: 'AuditEvent.entity', slicing: slicedBy('role', 'Patients concerned, next to the other objects', 'pattern'), constraint: [i.patient], mustSupport: true },
      { id: 'AuditEvent.entity:patient', sliceName: 'patient', short: 'A patient the interaction concerned', min: 0, max: '*' },
      { id: 'AuditEvent.entity:patient.what', min: 1, type: [{ code: 'Reference', targetProfile: [CORE + 'Patient'] }] },
      { id: 'AuditEvent.entity:patient.role', min: 1, patternCoding: { system: HL7.objectRole, code: '1' } },
    ],
  });
}
