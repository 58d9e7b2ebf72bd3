/**
 * $verify-signature: recomputes the canonical form of the versions a Provenance is about, as
 * stored now, and checks every signature of the Provenance against them; on a resource, does
 * that for the Provenance of each of its versions (or of the one asked for).
 */
import type { OperationOutcomeIssue, Parameters, ParametersParameter, Provenance } from '@medplum/fhirtypes';
import { UserStore } from '../auth/users';
import type { RequestContext } from '../fhir/context';
import { errors } from '../fhir/outcome';
import { ridOf } from '../store/rid';
import { sql } from '../store/sql';
import { authorSignatureOfSeveral, checkAuthorSignature, checkServerSignature, isServerSignature, type SignatureCheck } from './checks';
import { problem, signatureIssue, signaturePart, verificationParameters } from './report';
import type { SignedVersion } from './canonical';
import { loadVersions, parseVersionReference, refKey, type VersionRef } from './versions';

export interface ProvenanceReport {
  valid: boolean;
  part: ParametersParameter;
  issues: OperationOutcomeIssue[];
  checks: SignatureCheck[];
  /** The chain header of the server signature, when there is one. */
  header?: Record<string, unknown>;
}

export interface CheckOptions {
  /** Target versions already loaded (batches). */
  loaded?: Map<string, SignedVersion>;
  /** Whether the server wrote it (has a chain link), when the caller already knows. */
  linked?: boolean;
}

/** Every signature of a Provenance against the versions it is about, as stored now. */
export async function checkProvenance(ctx: RequestContext, provenance: Provenance, options: CheckOptions = {}): Promise<ProvenanceReport> {
  const { loaded } = options;
  const { services, baseUrl } = ctx;
  const issues: OperationOutcomeIssue[] = [];
  const checks: SignatureCheck[] = [];
  let header: Record<string, unknown> | undefined;
  const name = `Provenance/${provenance.id}`;
  const parsed = (provenance.target ?? []).map((t) => parseVersionReference(t.reference, baseUrl));
  const refs = parsed.length && parsed.every((ref) => ref !== undefined) ? (parsed as VersionRef[]) : undefined;
  const targets = refs?.map(refKey) ?? [];
  const signatures = provenance.signature ?? [];
  if (!refs) {
    issues.push(problem('malformed', `${name} must have version-specific targets (Type/id/_history/v) to be verified`, 'Provenance.target'));
  } else if (signatures.length === 0) {
    issues.push(problem('malformed', `${name} has no signature`, 'Provenance.signature'));
  } else {
    const unloaded = refs.filter((ref) => !loaded?.has(refKey(ref)));
    const versions = unloaded.length ? new Map([...(loaded ?? []), ...(await loadVersions(services.db, unloaded))]) : (loaded as Map<string, SignedVersion>);
    const users = new UserStore(services.db);
    for (const [index, signature] of signatures.entries()) {
      if (isServerSignature(signature)) {
        const signed = targets.map((reference) => ({ reference, version: versions.get(reference) }));
        const { header: h, ...check } = await checkServerSignature(services.keys, provenance, index, signed);
        header = h;
        checks.push(check);
      } else if (targets.length > 1) {
        checks.push(authorSignatureOfSeveral(signature, index, provenance.id as string, targets.length));
      } else {
        checks.push(await checkAuthorSignature(services.db, { users, recorded: true }, baseUrl, signature, index, versions.get(targets[0]), targets[0]));
      }
    }
    // An author signature fails too when the version changed; the server's digest tells which it is.
    if (checks.some((c) => c.role === 'server' && c.result === 'digest-mismatch')) {
      for (const check of checks) {
        if (check.role === 'author' && check.result === 'bad-signature') {
          check.result = 'digest-mismatch';
          check.message = `${targets[0]} changed since it was signed (see the server signature's digest); ${check.message}`;
        }
      }
    }
    for (const check of checks) {
      const found = signatureIssue(provenance.id as string, check);
      if (found) issues.push(found);
    }
    const linked =
      options.linked ??
      ((await services.db.query(sql`SELECT 1 FROM provenance_link WHERE provenance_rid = ${ridOf('Provenance', provenance.id as string)}`)).rowCount ?? 0) > 0;
    if (linked && !checks.some((c) => c.role === 'server')) {
      issues.push(problem('malformed', `${name} was written by this server, but its verification signature is gone`, 'Provenance.signature'));
    }
  }
  const valid = issues.length === 0;
  const part: ParametersParameter = {
    name: 'provenance',
    part: [
      { name: 'reference', valueReference: { reference: name } },
      ...targets.map((reference) => ({ name: 'target', valueReference: { reference } })),
      { name: 'result', valueBoolean: valid },
      ...checks.map(signaturePart),
    ],
  };
  return { valid, part, issues, checks, header };
}

/** GET /Provenance/[id]/$verify-signature */
export async function verifyProvenanceInstance(ctx: RequestContext, id: string): Promise<Parameters> {
  const current = await ctx.services.repo.read(ctx, 'Provenance', id);
  const report = await checkProvenance(ctx, current.resource as Provenance);
  return verificationParameters([report.part], report.issues, `Every signature of Provenance/${id} verifies`);
}

/** GET /[type]/[id]/$verify-signature[?version=n]: the Provenance of each version (or of version n). */
export async function verifyResourceVersions(ctx: RequestContext, resourceType: string, id: string, version: string | undefined): Promise<Parameters> {
  const { services } = ctx;
  const current = await services.repo.currentRow(ctx, resourceType, id);
  if (!current || !current.visible) {
    throw errors.notFound(`Resource ${resourceType}/${id} is not known`);
  }
  if (version !== undefined && !/^[1-9][0-9]{0,8}$/.test(version)) {
    throw errors.badRequest(`version must be a version id of ${resourceType}/${id}`, 'version');
  }
  const rid = ridOf(resourceType, id);
  const wanted = version === undefined ? sql`` : sql` AND v = ${Number(version)}`;
  // Versions stored or that a Provenance records (a version removed from the database still has its Provenance).
  const versions = await services.db.query<{ v: number }>(
    sql`SELECT v FROM (SELECT version_id AS v FROM resource_version WHERE rid = ${rid}
                       UNION SELECT target_version FROM provenance_target WHERE target_rid = ${rid}) x
        WHERE TRUE${wanted} ORDER BY v`
  );
  if (versions.rows.length === 0) {
    throw errors.notFound(`Version ${version} of ${resourceType}/${id} is not known`);
  }
  const refs = versions.rows.map((row) => ({ resourceType, id, versionId: String(row.v) }));
  const loaded = await loadVersions(services.db, refs);
  const links = await services.db.query<{ target_version: number; provenance_id: string; content: Provenance | null }>(
    sql`SELECT t.target_version, l.provenance_id, h.content FROM provenance_target t
        JOIN provenance_link l ON l.provenance_rid = t.provenance_rid
        LEFT JOIN resource_version h ON h.rid = t.provenance_rid AND h.version_id = 1
        WHERE t.target_rid = ${rid} ORDER BY t.target_version, l.chain, l.seq`
  );
  const parts: ParametersParameter[] = [];
  const issues: OperationOutcomeIssue[] = [];
  let signatures = 0;
  // A Provenance shared by several versions of this resource (written in one transaction) is checked once.
  const checked = new Set<string>();
  for (const ref of refs) {
    const mine = links.rows.filter((row) => String(row.target_version) === ref.versionId);
    if (mine.length === 0) {
      issues.push(problem('provenance-missing', `${refKey(ref)} has no Provenance`));
      continue;
    }
    for (const row of mine) {
      if (!row.content) {
        issues.push(problem('provenance-missing', `Provenance/${row.provenance_id}, recorded for ${refKey(ref)}, is missing from the database`));
        continue;
      }
      if (checked.has(row.provenance_id)) continue;
      checked.add(row.provenance_id);
      const report = await checkProvenance(ctx, row.content, { loaded, linked: true });
      parts.push(report.part);
      issues.push(...report.issues);
      signatures += report.checks.length;
    }
  }
  return verificationParameters(parts, issues, `${refs.length} version(s) of ${resourceType}/${id}: every Provenance is present and its ${signatures} signature(s) verify`);
}
