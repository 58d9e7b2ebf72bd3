/**
 * The write path: a Provenance for every client write, in the write's own transaction.
 *
 * afterWrite (inside the transaction, once per version written) checks what the client sent
 * with the write (X-Provenance or a transaction entry) and verifies its signatures before the
 * write can commit, builds the Provenance and snapshots the canonical form of the version.
 * The writes of one transaction on the same patient record with the same activity share one
 * Provenance (a transaction Bundle of a patient's record: one Provenance, one signature over
 * all of its versions), except a write that brings its own Provenance, which keeps it.
 * Signing waits for the end of the transaction (WriteTx.beforeCommit): only then are the
 * chain heads locked (in chain order, so transactions cannot deadlock on them), each
 * Provenance signed with its chain position and its predecessor's hash, queued, and the heads
 * moved. The head rows are thus held only for the transaction's last flush (one multi-row
 * insert per table, the write's rows and its Provenances together) and the COMMIT.
 */
import { createHash } from 'node:crypto';
import type { Provenance, Resource } from '@medplum/fhirtypes';
import { UserStore } from '../auth/users';
import type { ClientProvenance, RequestContext } from '../fhir/context';
import { errors, issue } from '../fhir/outcome';
import type { Services, WriteEvent } from '../services';
import { ridOf } from '../store/rid';
import { sql } from '../store/sql';
import type { WriteTx } from '../store/write-tx';
import { canonicalize, serverForm, serverPayload, sha256, statementOf, type SignedVersion } from './canonical';
import { checkAuthorSignature, recordAuthorKey, signerOf } from './checks';
import { signDetached, toSignatureData } from './jws';
import { activityCode, buildProvenance, recordTargets, clientSignatures, JOSE, serverDevice, VERIFICATION_SIGNATURE, versionReference } from './record';
import { loadVersions, parseVersionReference, refKey } from './versions';
import { mintId } from '../store/rid';

/** Types that get no Provenance: the audit trail, and Provenances themselves. */
export const UNPROVENANCED = new Set(['AuditEvent', 'Provenance']);

interface Pending {
  id: string;
  chain: number;
  /** Later writes of the same record and activity join this Provenance; none join one the client sent. */
  group?: string;
  /** The writes it records, in target order. */
  events: WriteEvent[];
  /** Canonical JSON of each version as stored (what the server signs). */
  forms: string[];
  provenance: Provenance;
  /** Where the client's part came from (X-Provenance header, a transaction entry): validated once signed. */
  source?: string;
}

interface TxState {
  ctx: RequestContext;
  pending: Pending[];
}

/** The chain a write joins: its patient's (all of a patient's record in one chain), else its resource's. */
export function chainOf(event: Pick<WriteEvent, 'resourceType' | 'id' | 'compartments'>, chains: number): number {
  const key = event.compartments[0] ?? `${event.resourceType}/${event.id}`;
  return createHash('sha256').update(key).digest().readUInt32BE(0) % chains;
}

/**
 * The writes that may share a Provenance: same patient record (so the same chain and the same
 * compartment) and same activity. A version outside every patient compartment gets its own.
 */
function groupOf(event: WriteEvent): string | undefined {
  return event.compartments.length ? `${event.compartments[0]} ${activityCode(event.interaction)}` : undefined;
}

/**
 * A shared Provenance lists its versions in the order of the Bundle's entries (a transaction
 * runs its entries in FHIR's order, deletes first, then creates, then updates).
 */
function inEntryOrder(p: Pending): void {
  const order = p.events.map((_, i) => i).sort((a, b) => (p.events[a].request?.entry ?? a) - (p.events[b].request?.entry ?? b));
  p.events = order.map((i) => p.events[i]);
  p.forms = order.map((i) => p.forms[i]);
  recordTargets(p.provenance, p.events);
}

function unprocessable(source: string, message: string, expression?: string): never {
  throw errors.unprocessable([issue('error', 'security', `${source}: ${message}; nothing was stored`, expression)]);
}

export class ProvenanceWriter {
  private readonly states = new WeakMap<WriteTx, TxState>();
  private readonly users: UserStore;

  constructor(
    private readonly services: Services,
    private readonly chains: number
  ) {
    this.users = new UserStore(services.db);
  }

  async afterWrite(ctx: RequestContext, tx: WriteTx, event: WriteEvent): Promise<void> {
    if (event.internal) return;
    if (UNPROVENANCED.has(event.resourceType)) {
      if (event.resourceType === 'Provenance' && event.resource) {
        await this.checkStandalone(ctx, tx, event.resource as Provenance);
      }
      return;
    }
    const version: SignedVersion = {
      resourceType: event.resourceType,
      id: event.id,
      versionId: event.versionId,
      lastUpdated: event.lastUpdated,
      content: event.resource,
      method: event.method,
    };
    let state = this.states.get(tx);
    const supplied = event.request?.provenance;
    const group = supplied ? undefined : groupOf(event);
    const shared = group !== undefined ? state?.pending.find((p) => p.group === group) : undefined;
    if (shared) {
      shared.events.push(event);
      shared.forms.push(serverForm(version));
      return;
    }
    const client = supplied ? await this.acceptClientProvenance(ctx, tx, version, supplied) : undefined;
    const id = supplied?.id ?? mintId('Provenance');
    if (supplied?.id && state?.pending.some((p) => p.id === id)) {
      unprocessable(supplied.source, 'a Provenance entry is about one write, but its target wrote several versions');
    }
    const provenance = buildProvenance(id, event, ctx.principal, ctx.baseUrl, client);
    if (!state) {
      state = { ctx, pending: [] };
      this.states.set(tx, state);
      const current = state;
      tx.beforeCommit(() => this.commit(tx, current));
    }
    state.pending.push({ id, chain: chainOf(event, this.chains), group, events: [event], forms: [serverForm(version)], provenance, source: supplied?.source });
  }

  /** The client's Provenance for this write, its signatures verified with the signers' registered keys. */
  private async acceptClientProvenance(
    ctx: RequestContext,
    tx: WriteTx,
    version: SignedVersion,
    supplied: ClientProvenance
  ): Promise<Partial<Provenance>> {
    const client = supplied.resource as Partial<Provenance> | undefined;
    if (!client || typeof client !== 'object' || Array.isArray(client) || client.resourceType !== 'Provenance') {
      throw errors.badRequest(`${supplied.source} must be a Provenance resource`);
    }
    if (client.signature !== undefined && !Array.isArray(client.signature)) {
      throw errors.badRequest(`${supplied.source}: signature must be an array`);
    }
    const target = versionReference(version.resourceType, version.id, version.versionId);
    for (const [index, signature] of clientSignatures(client).entries()) {
      const check = await checkAuthorSignature(tx, { users: this.users, recorded: false }, ctx.baseUrl, signature, index, version, target);
      if (check.result !== 'valid') {
        unprocessable(supplied.source, `signature[${index}] is not accepted (${check.result}): ${check.message}`, `Provenance.signature[${index}]`);
      }
      await recordAuthorKey(tx, signerOf(signature, ctx.baseUrl) as string, check.jwk!);
    }
    return client;
  }

  /**
   * A Provenance a client creates on its own: every JOSE signature it carries must verify over
   * its (one) target version. Signatures in formats this server cannot check (XML-DSig, as in
   * records imported from elsewhere) are kept as given; $verify-signature reports them as
   * unsupported, never as valid.
   */
  private async checkStandalone(ctx: RequestContext, tx: WriteTx, provenance: Provenance): Promise<void> {
    const signatures = clientSignatures(provenance);
    if (!signatures.some((signature) => signature.sigFormat === JOSE)) return;
    const source = `Provenance/${provenance.id}`;
    const ref = provenance.target?.length === 1 ? parseVersionReference(provenance.target[0].reference, ctx.baseUrl) : undefined;
    if (!ref) {
      unprocessable(source, 'a signed Provenance must have exactly one, version-specific target (Type/id/_history/v)', 'Provenance.target');
    }
    const version = (await loadVersions(tx, [ref])).get(refKey(ref));
    for (const [index, signature] of signatures.entries()) {
      if (signature.sigFormat !== JOSE) continue;
      const check = await checkAuthorSignature(tx, { users: this.users, recorded: false }, ctx.baseUrl, signature, index, version, refKey(ref));
      if (check.result !== 'valid') {
        unprocessable(source, `signature[${index}] is not accepted (${check.result}): ${check.message}`, `Provenance.signature[${index}]`);
      }
      await recordAuthorKey(tx, signerOf(signature, ctx.baseUrl) as string, check.jwk!);
    }
  }

  /**
   * What the client added must leave a valid Provenance. Checked as it will be stored, with the
   * server's signature: a profile that requires a signature (cn-signature-provenance) is met by
   * it even when the client sent none.
   */
  private async validate(provenance: Provenance, source: string): Promise<void> {
    const issues = await this.services.validator.validate(provenance as Resource, { mode: 'create' });
    const failures = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
    if (failures.length) {
      throw errors.unprocessable(failures.map((i) => ({ ...i, diagnostics: `${source}: ${i.diagnostics ?? 'invalid'}` })));
    }
  }

  /** End of the transaction: lock the heads, sign and store each Provenance in chain order, move the heads. */
  private async commit(tx: WriteTx, state: TxState): Promise<void> {
    const { ctx, pending } = state;
    const chains = [...new Set(pending.map((p) => p.chain))].sort((a, b) => a - b);
    const heads = await this.lockHeads(tx, chains);
    const key = await this.services.keys.recordSigningKey(tx);
    const links: Record<string, unknown>[] = [];
    const targets: Record<string, unknown>[] = [];
    for (const p of pending) {
      if (p.events.length > 1) inEntryOrder(p);
      const head = heads.get(p.chain) as { seq: number; hash?: string; id?: string };
      const seq = head.seq + 1;
      const signatures = p.provenance.signature ?? [];
      const versions = p.events.map((e) => versionReference(e.resourceType, e.id, e.versionId));
      const several = versions.length > 1;
      const payload = serverPayload(p.forms, several);
      const header = {
        alg: key.alg,
        kid: key.kid,
        tgt: several ? versions : versions[0],
        dig: several ? p.forms.map(sha256) : sha256(payload),
        stm: sha256(statementOf(p.provenance, signatures.length)),
        chn: p.chain,
        seq,
        ...(head.hash && { prv: head.hash }),
      };
      const data = toSignatureData(signDetached(key.privateKey, header, payload));
      p.provenance.signature = [
        ...signatures,
        { type: [VERIFICATION_SIGNATURE], when: new Date().toISOString(), who: serverDevice(ctx.baseUrl), sigFormat: JOSE, data },
      ];
      if (p.source) await this.validate(p.provenance, p.source);
      // All of them are in one patient's compartment first; a version may be in others too.
      const compartments = several ? [...new Set(p.events.flatMap((e) => e.compartments))] : p.events[0].compartments;
      const { resource } = await this.services.repo.create(ctx, p.provenance, { internal: true, id: p.id, compartments });
      const hash = sha256(canonicalize(resource));
      Object.assign(head, { seq, hash, id: p.id });
      const provenanceRid = ridOf('Provenance', p.id);
      links.push({ chain: p.chain, seq, provenance_id: p.id, provenance_rid: provenanceRid, hash, compartments, recorded: p.provenance.recorded });
      for (const e of p.events) {
        targets.push({
          target_rid: ridOf(e.resourceType, e.id),
          target_version: Number(e.versionId),
          provenance_rid: provenanceRid,
          target_type: e.resourceType,
          target_id: e.id,
        });
      }
    }
    const moved = chains.map((chain) => ({ chain, ...heads.get(chain) }));
    // Written with the transaction's last flush, in the same statement as the Provenances and
    // the write's own rows (the heads are locked already, so nothing can overtake them).
    tx.queueStatement(
      sql`UPDATE provenance_chain c SET seq = h.seq, head_hash = h.hash, head_id = h.id, updated_at = now()
          FROM jsonb_to_recordset(${JSON.stringify(moved)}::jsonb) AS h(chain integer, seq bigint, hash text, id text)
          WHERE c.chain = h.chain`
    );
    tx.queueStatement(
      sql`INSERT INTO provenance_link (chain, seq, provenance_id, provenance_rid, hash, compartments, recorded)
          SELECT chain, seq, provenance_id, provenance_rid, hash, compartments, recorded
          FROM jsonb_to_recordset(${JSON.stringify(links)}::jsonb) AS l(
            chain integer, seq bigint, provenance_id text, provenance_rid uuid, hash text, compartments text[], recorded timestamptz)`
    );
    tx.queueStatement(
      sql`INSERT INTO provenance_target (target_rid, target_version, provenance_rid, target_type, target_id)
          SELECT target_rid, target_version, provenance_rid, target_type, target_id
          FROM jsonb_to_recordset(${JSON.stringify(targets)}::jsonb) AS t(
            target_rid uuid, target_version integer, provenance_rid uuid, target_type text, target_id text)`
    );
    this.states.delete(tx);
  }

  private async lockHeads(tx: WriteTx, chains: number[]): Promise<Map<number, { seq: number; hash?: string }>> {
    // Straight on the connection, without flushing the rows queued so far: they are written
    // together with the Provenances in the transaction's last flush (fewer round trips per write).
    const select = () =>
      tx.send<{ chain: number; seq: number; head_hash: string | null }>(
        sql`SELECT chain, seq, head_hash FROM provenance_chain WHERE chain = ANY(${chains}::int[]) ORDER BY chain FOR UPDATE`.prepared('chain_heads')
      );
    let rows = (await select()).rows;
    if (rows.length < chains.length) {
      // A chain used for the first time (PROVENANCE_CHAINS was raised): create its head.
      await tx.send(sql`INSERT INTO provenance_chain (chain) SELECT unnest(${chains}::int[]) ON CONFLICT DO NOTHING`);
      rows = (await select()).rows;
    }
    return new Map(rows.map((row) => [row.chain, { seq: Number(row.seq), hash: row.head_hash ?? undefined }]));
  }
}
