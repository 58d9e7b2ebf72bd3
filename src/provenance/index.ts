/**
 * The provenance module: a signed Provenance for every write, in the write's transaction
 * (writer.ts), kept in hash chains; the keys that signed them stay verifiable for good
 * (keys/keystore.ts); $verify-signature and $verify-chain prove or disprove the integrity of
 * any record. Provenances are immutable through the API (405 on update, patch, delete), like
 * AuditEvents: a record of what happened is never rewritten.
 */
import type { Parameters as FhirParameters } from '@medplum/fhirtypes';
import { CANONICAL_BASE } from '../fhir/canonical';
import { getResourceTypeList } from '../fhir/definitions';
import { inputValue, ownOperationDefinition } from '../fhir/operations/registry';
import { errors } from '../fhir/outcome';
import { parseInstantRange } from '../fhir/params';
import type { ServerModule, Services } from '../services';
import { sql } from '../store/sql';
import { verifyChains, type ChainScope } from './verify-chain';
import { verifyProvenanceInstance, verifyResourceVersions } from './verify';
import { ProvenanceWriter, UNPROVENANCED } from './writer';

function stringInput(input: FhirParameters, name: string): string | undefined {
  const value = inputValue(input, name);
  if (value === undefined) return undefined;
  if (typeof value !== 'string' && typeof value !== 'number') throw errors.badRequest(`${name} must be a simple value`, name);
  return String(value);
}

function chainScope(input: FhirParameters): ChainScope {
  const chain = stringInput(input, 'chain');
  const patient = stringInput(input, 'patient');
  const start = stringInput(input, 'start');
  const end = stringInput(input, 'end');
  if (chain !== undefined && !/^\d{1,5}$/.test(chain)) throw errors.badRequest('chain must be a chain number', 'chain');
  return {
    ...(chain !== undefined && { chain: Number(chain) }),
    ...(patient !== undefined && { patient: patient.replace(/^Patient\//, '') }),
    ...(start !== undefined && { start: parseInstantRange(start, 'start').start }),
    ...(end !== undefined && { end: parseInstantRange(end, 'end').end }),
  };
}

function registerOperations(services: Services): void {
  services.operations.register({
    name: 'verify-signature',
    definition: `${CANONICAL_BASE}/OperationDefinition/verify-signature`,
    operationDefinition: ownOperationDefinition(
      CANONICAL_BASE,
      {
        name: 'verify-signature',
        title: 'Verify the signatures of a Provenance or of a resource\'s versions',
        description:
          'On a Provenance: checks every signature against the target versions as stored now. On another resource: the same for the Provenance of every version (or of one version).',
        affectsState: false,
        levels: ['instance'],
      },
      [
        ['version', 'in', 0, '1', 'string', 'Only this version of the resource (not on a Provenance)'],
        ['return', 'out', 1, '1', 'Parameters', 'result (boolean), one provenance part per Provenance checked, and issues (an OperationOutcome)'],
      ]
    ),
    instance: true,
    // Every type that has Provenances (AuditEvents have none), and Provenance itself.
    resourceTypes: getResourceTypeList().filter((type) => type === 'Provenance' || !UNPROVENANCED.has(type)),
    affectsState: false,
    async handler(ctx, _req, target, input) {
      const { resourceType, id } = target as Required<typeof target>;
      const resource =
        resourceType === 'Provenance'
          ? await verifyProvenanceInstance(ctx, id)
          : await verifyResourceVersions(ctx, resourceType, id, stringInput(input, 'version'));
      return { status: 200, resource };
    },
  });
  services.operations.register({
    name: 'verify-chain',
    definition: `${CANONICAL_BASE}/OperationDefinition/verify-chain`,
    operationDefinition: ownOperationDefinition(
      CANONICAL_BASE,
      {
        name: 'verify-chain',
        title: 'Verify the Provenance hash chains',
        description:
          'Walks the Provenance hash chains (all, or narrowed to a patient, a time range of recorded, or one chain): each Provenance present, unaltered, validly signed and in place, and every resource version in scope has its Provenance.',
        affectsState: false,
        levels: ['system'],
      },
      [
        ['patient', 'in', 0, '1', 'string', 'Only the Provenances of this patient\'s record (id or Patient/id)'],
        ['start', 'in', 0, '1', 'dateTime', 'Only Provenances recorded at or after this time'],
        ['end', 'in', 0, '1', 'dateTime', 'Only Provenances recorded before or at this time'],
        ['chain', 'in', 0, '1', 'integer', 'Only this chain'],
        ['return', 'out', 1, '1', 'Parameters', 'result (boolean), checked, one chain part per chain, and issues (an OperationOutcome)'],
      ]
    ),
    system: true,
    affectsState: false,
    async handler(ctx, _req, _target, input) {
      return { status: 200, resource: await verifyChains(ctx, chainScope(input)) };
    },
  });
}

export const provenanceModule: ServerModule = {
  name: 'provenance',
  async install(services) {
    services.immutableTypes.add('Provenance');
    // Chain heads and the record-signing key exist before the first write needs them.
    await services.db.query(
      sql`INSERT INTO provenance_chain (chain) SELECT generate_series(0, ${services.config.provenanceChains - 1}) ON CONFLICT DO NOTHING`
    );
    await services.keys.recordSigningKey();
    const writer = new ProvenanceWriter(services, services.config.provenanceChains);
    services.writeHooks.push({ afterWrite: (ctx, tx, event) => writer.afterWrite(ctx, tx, event) });
    registerOperations(services);
    services.capabilityContributors.push((statement) => {
      const provenance = statement.rest?.[0]?.resource?.find((r) => r.type === 'Provenance');
      if (provenance) {
        provenance.documentation =
          'The server records a signed Provenance (JWS, RFC 8785 canonical JSON, keys in the JWKS) for every write, in hash chains. ' +
          'Provenances cannot be updated, patched or deleted. $verify-signature checks a Provenance (or a resource version); $verify-chain checks the chains.';
      }
    });
  },
};
