/**
 * $verify-chain: walks the Provenance chains and proves they are whole. For each Provenance in
 * order: it is present, it still hashes to what was recorded, its signatures verify over its
 * target as stored, it was signed at this chain and position, and its signed predecessor hash
 * is the hash of the Provenance before it. At the newest, the chain head (count and hash)
 * must match, so removing the newest Provenances is detected too; and every resource version
 * in scope must have its Provenance.
 *
 * Narrowed (patient, start/end, chain), it checks the Provenances in scope together with
 * their neighbours, so a removal or alteration next to them is detected as well.
 */
import type { OperationOutcomeIssue, Parameters, ParametersParameter, Provenance } from '@medplum/fhirtypes';
import type { RequestContext } from '../fhir/context';
import { errors } from '../fhir/outcome';
import { ridOf } from '../store/rid';
import { sql, type Sql } from '../store/sql';
import { canonicalize, sha256 } from './canonical';
import { isServerSignature } from './checks';
import { parseSignatureData } from './jws';
import { problem, verificationParameters } from './report';
import { loadVersions, parseVersionReference, type VersionRef } from './versions';
import { checkProvenance } from './verify';
import { UNPROVENANCED } from './writer';

export interface ChainScope {
  chain?: number;
  patient?: string;
  start?: string;
  end?: string;
}

interface LinkRow {
  seq: number;
  provenance_id: string;
  hash: string;
  content: Provenance | null;
}

interface Head {
  chain: number;
  seq: number;
  head_hash: string | null;
}

const BATCH = 500;
/** Most issues listed; beyond that only counted. */
const MAX_ISSUES = 1000;

class ChainReport {
  issues: OperationOutcomeIssue[] = [];
  errors = 0;
  checked = 0;

  add(issue: OperationOutcomeIssue): void {
    this.errors++;
    if (this.issues.length < MAX_ISSUES) this.issues.push(issue);
  }
}

function hashOf(content: Provenance | null): string | undefined {
  return content ? sha256(canonicalize(content)) : undefined;
}

/** The chain header of a Provenance's server signature (read without trusting it: the checks do that). */
function chainHeader(content: Provenance | null): Record<string, unknown> | undefined {
  const signature = (content?.signature ?? []).filter(isServerSignature).pop();
  const jws = signature && parseSignatureData(signature.data);
  return jws && typeof jws !== 'string' ? jws.header : undefined;
}

async function linkRows(ctx: RequestContext, chain: number, from: number, to: number): Promise<LinkRow[]> {
  const result = await ctx.services.db.query<LinkRow>(
    sql`SELECT l.seq, l.provenance_id, l.hash, h.content
        FROM provenance_link l LEFT JOIN resource_version h ON h.rid = l.provenance_rid AND h.version_id = 1
        WHERE l.chain = ${chain} AND l.seq BETWEEN ${from} AND ${to} ORDER BY l.seq`
  );
  return result.rows.map((row) => ({ ...row, seq: Number(row.seq) }));
}

/**
 * The versions each of these (missing) Provenances recorded, to name them in the report. Only
 * asked when Provenances are gone, so provenance_target has no index by Provenance for it.
 */
async function recordedBy(ctx: RequestContext, ids: string[]): Promise<Map<string, string[]>> {
  const recorded = new Map<string, string[]>();
  if (ids.length === 0) return recorded;
  const result = await ctx.services.db.query<{ provenance_rid: string; version: string }>(
    sql`SELECT provenance_rid, target_type || '/' || target_id || '/_history/' || target_version AS version
        FROM provenance_target WHERE provenance_rid = ANY(${ids.map((id) => ridOf('Provenance', id))}::uuid[])
        ORDER BY target_type, target_id, target_version`
  );
  const idOf = new Map(ids.map((id) => [ridOf('Provenance', id), id]));
  for (const row of result.rows) {
    const id = idOf.get(row.provenance_rid) as string;
    recorded.set(id, [...(recorded.get(id) ?? []), row.version]);
  }
  return recorded;
}

/** Checks seq from..to of a chain, with the link from the Provenance before and to the one after (or the head). */
async function walk(ctx: RequestContext, head: Head, from: number, to: number, report: ChainReport): Promise<number> {
  const c = head.chain;
  let prev: { seq: number; hash?: string; id?: string } = { seq: from - 1 };
  if (from > 1) {
    const [before] = await linkRows(ctx, c, from - 1, from - 1);
    prev = before ? { seq: before.seq, hash: hashOf(before.content), id: before.provenance_id } : { seq: from - 2 };
  }
  let checked = 0;
  for (let start = from; start <= to; start += BATCH) {
    const rows = await linkRows(ctx, c, start, Math.min(to, start + BATCH - 1));
    // The versions the batch's Provenances are about, in one read (a malformed target is left to checkProvenance).
    const refs = rows.flatMap((r) => (r.content?.target ?? []).map((t) => parseVersionReference(t.reference, ctx.baseUrl)));
    const loaded = await loadVersions(ctx.services.db, refs.filter((ref): ref is VersionRef => ref !== undefined));
    const missing = await recordedBy(ctx, rows.filter((r) => !r.content).map((r) => r.provenance_id));
    for (const row of rows) {
      const where = `chain ${c} seq ${row.seq}`;
      if (row.seq > prev.seq + 1) {
        const gap = row.seq - prev.seq - 1 === 1 ? `seq ${prev.seq + 1} is` : `seq ${prev.seq + 1} to ${row.seq - 1} are`;
        report.add(problem('link-missing', `chain ${c}: ${gap} missing (no link row): Provenances were removed before Provenance/${row.provenance_id} (${where})`));
      }
      checked++;
      if (!row.content) {
        const versions = missing.get(row.provenance_id);
        const recording = versions ? `, recording ${versions.join(', ')}` : '';
        report.add(problem('provenance-missing', `Provenance/${row.provenance_id} (${where}${recording}) is missing from the database`));
        prev = { seq: row.seq, id: row.provenance_id };
        continue;
      }
      const hash = hashOf(row.content) as string;
      if (hash !== row.hash) {
        report.add(problem('statement-mismatch', `Provenance/${row.provenance_id} (${where}) was altered after it was written: it hashes to ${hash}, it was recorded as ${row.hash}`));
      }
      const result = await checkProvenance(ctx, row.content, { loaded, linked: true });
      result.issues.forEach((i) => report.add(i));
      const header = result.header ?? chainHeader(row.content);
      if (header && (header.chn !== c || header.seq !== row.seq)) {
        report.add(problem('out-of-order', `Provenance/${row.provenance_id} is at ${where} but was signed as chain ${String(header.chn)} seq ${String(header.seq)}`));
      }
      if (header && row.seq === 1 && header.prv !== undefined) {
        report.add(problem('chain-broken', `Provenance/${row.provenance_id} opens chain ${c} but was signed after a predecessor (${String(header.prv)})`));
      } else if (header && prev.hash && header.prv !== prev.hash) {
        const why = prev.seq === row.seq - 1 ? 'it was altered or replaced' : 'the Provenances between them are missing';
        report.add(
          problem('chain-broken', `Provenance/${row.provenance_id} (${where}) was signed after a predecessor hashing to ${String(header.prv)}, but seq ${prev.seq} (Provenance/${prev.id}) hashes to ${prev.hash}: ${why}`)
        );
      }
      prev = { seq: row.seq, hash, id: row.provenance_id };
    }
  }
  if (to >= head.seq) {
    if (prev.seq < head.seq) {
      report.add(problem('head-mismatch', `chain ${c} holds ${head.seq} Provenances, but the newest found is seq ${prev.seq}: the newest were removed`));
    } else if (prev.seq > head.seq) {
      report.add(problem('head-mismatch', `chain ${c} holds ${head.seq} Provenances, but links up to seq ${prev.seq} exist`));
    } else if (head.seq > 0 && prev.hash && prev.hash !== head.head_hash) {
      report.add(problem('head-mismatch', `chain ${c}'s newest Provenance (seq ${prev.seq}, Provenance/${prev.id}) hashes to ${prev.hash}, the head recorded ${head.head_hash}: it was altered or replaced`));
    }
  } else if (prev.seq === to) {
    const [next] = await linkRows(ctx, c, to + 1, to + 1);
    const header = next && chainHeader(next.content);
    if (!next) {
      report.add(problem('link-missing', `chain ${c}: seq ${to + 1}, which follows Provenance/${prev.id}, is missing (no link row)`));
    } else if (header && prev.hash && header.prv !== prev.hash) {
      report.add(problem('chain-broken', `Provenance/${next.provenance_id} (chain ${c} seq ${next.seq}) was signed after a predecessor hashing to ${String(header.prv)}, but Provenance/${prev.id} hashes to ${prev.hash}`));
    }
  }
  return checked;
}

/** Resource versions in scope that no Provenance of a chain records (a removed link takes its targets with it). */
async function unprovenanced(ctx: RequestContext, scope: ChainScope, report: ChainReport): Promise<void> {
  const where: Sql[] = [sql`h.resource_type <> ALL(${[...UNPROVENANCED]}::text[])`];
  if (scope.start) where.push(sql`h.last_updated >= ${scope.start}`);
  if (scope.end) where.push(sql`h.last_updated <= ${scope.end}`);
  if (scope.patient) where.push(sql`h.rid IN (SELECT rid FROM resource WHERE compartments @> ARRAY[${scope.patient}]::text[])`);
  const result = await ctx.services.db.query<{ resource_type: string; id: string; version_id: number }>(
    sql`SELECT h.resource_type, h.id, h.version_id FROM resource_version h
        WHERE ${sql.and(where)}
          AND NOT EXISTS (SELECT 1 FROM provenance_target t JOIN provenance_link l ON l.provenance_rid = t.provenance_rid
                          WHERE t.target_rid = h.rid AND t.target_version = h.version_id)
        ORDER BY h.last_updated LIMIT ${MAX_ISSUES + 1}`
  );
  for (const row of result.rows) {
    report.add(problem('provenance-missing', `${row.resource_type}/${row.id}/_history/${row.version_id} has no Provenance`));
  }
}

/** The seq ranges of each chain that the scope selects (consecutive seqs merged). */
async function scopedRanges(ctx: RequestContext, scope: ChainScope): Promise<Map<number, [number, number][]>> {
  const where: Sql[] = [];
  if (scope.chain !== undefined) where.push(sql`chain = ${scope.chain}`);
  if (scope.patient) where.push(sql`compartments @> ARRAY[${scope.patient}]::text[]`);
  if (scope.start) where.push(sql`recorded >= ${scope.start}`);
  if (scope.end) where.push(sql`recorded <= ${scope.end}`);
  const result = await ctx.services.db.query<{ chain: number; seq: number }>(
    sql`SELECT chain, seq FROM provenance_link WHERE ${sql.and(where)} ORDER BY chain, seq`
  );
  const ranges = new Map<number, [number, number][]>();
  for (const row of result.rows) {
    const list = ranges.get(row.chain) ?? [];
    const last = list[list.length - 1];
    const seq = Number(row.seq);
    if (last && last[1] === seq - 1) last[1] = seq;
    else list.push([seq, seq]);
    ranges.set(row.chain, list);
  }
  return ranges;
}

export async function verifyChains(ctx: RequestContext, scope: ChainScope): Promise<Parameters> {
  if (ctx.access.readFilter('Provenance') !== undefined) {
    throw errors.forbidden('$verify-chain reads every Provenance of the chains it checks: it needs unrestricted read access to Provenance (system or admin); use $verify-signature on the resources you may read');
  }
  const { db } = ctx.services;
  const heads = new Map(
    (await db.query<Head>(sql`SELECT chain, seq, head_hash FROM provenance_chain ORDER BY chain`)).rows.map((h) => [h.chain, { ...h, seq: Number(h.seq) }])
  );
  // Links of chains without a head row (a head removed from the database) are checked against an empty head.
  for (const row of (await db.query<{ chain: number }>(sql`SELECT DISTINCT chain FROM provenance_link`)).rows) {
    if (!heads.has(row.chain)) heads.set(row.chain, { chain: row.chain, seq: 0, head_hash: null });
  }
  const narrowed = scope.patient !== undefined || scope.start !== undefined || scope.end !== undefined;
  let ranges: Map<number, [number, number][]>;
  if (narrowed) {
    ranges = await scopedRanges(ctx, scope);
  } else {
    ranges = new Map();
    const max = await db.query<{ chain: number; last: number }>(sql`SELECT chain, max(seq) AS last FROM provenance_link GROUP BY chain`);
    const lastOf = new Map(max.rows.map((r) => [r.chain, Number(r.last)]));
    for (const head of heads.values()) {
      if (scope.chain !== undefined && head.chain !== scope.chain) continue;
      const last = Math.max(head.seq, lastOf.get(head.chain) ?? 0);
      if (last > 0) ranges.set(head.chain, [[1, last]]);
    }
  }
  const report = new ChainReport();
  const parts: ParametersParameter[] = [];
  for (const [chain, list] of [...ranges.entries()].sort((a, b) => a[0] - b[0])) {
    const head = heads.get(chain) as Head;
    const before = report.errors;
    let checked = 0;
    for (const [from, to] of list) {
      checked += await walk(ctx, head, from, to, report);
    }
    report.checked += checked;
    parts.push({
      name: 'chain',
      part: [
        { name: 'id', valueInteger: chain },
        { name: 'length', valueInteger: head.seq },
        ...(head.head_hash ? [{ name: 'head', valueString: head.head_hash }] : []),
        { name: 'checked', valueInteger: checked },
        { name: 'result', valueBoolean: report.errors === before },
      ],
    });
  }
  if (scope.chain === undefined) {
    await unprovenanced(ctx, scope, report);
  }
  if (report.errors > report.issues.length) {
    report.issues.push(problem('chain-broken', `${report.errors - report.issues.length} more problems are not listed`));
  }
  parts.unshift({ name: 'checked', valueInteger: report.checked });
  return verificationParameters(parts, report.issues, `${report.checked} Provenance(s) in ${parts.length - 1} chain(s) checked: every chain is whole and every signature verifies`);
}
