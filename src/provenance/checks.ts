/**
 * Checking one signature of a Provenance against the version it is about: the server's
 * verification signature (whole stored version, Provenance statement, chain position) and
 * authors' signatures (the client form, with the signer's registered key). Each check
 * answers valid or exactly what does not match.
 */
import { calculateJwkThumbprint, importJWK, type JWK, type KeyLike } from 'jose';
import type { Coding, Provenance, Reference, Signature } from '@medplum/fhirtypes';
import { USER_SIGNING_ALGS, UserStore } from '../auth/users';
import { referenceTarget } from '../fhir/references';
import type { KeyStore } from '../keys/keystore';
import type { Database } from '../store/database';
import { sql } from '../store/sql';
import { clientForm, serverForm, serverPayload, sha256, statementOf, type SignedVersion } from './canonical';
import { parseSignatureData, verifyDetached, type DetachedJws } from './jws';
import { JOSE, VERIFICATION_SIGNATURE } from './record';

/** How a signature fared; the codes of the README's verification table. */
export type SignatureResult =
  | 'valid'
  | 'malformed'
  | 'unsupported-format'
  | 'unknown-key'
  | 'target-missing'
  | 'digest-mismatch'
  | 'statement-mismatch'
  | 'bad-signature';

export interface SignatureCheck {
  index: number;
  role: 'server' | 'author';
  result: SignatureResult;
  message: string;
  type?: Coding[];
  who?: Reference;
  kid?: string;
  alg?: string;
  /** The public key that verified (author signatures), for outside verifiers. */
  jwk?: JWK;
}

type Queryable = Pick<Database, 'query'>;

/** The server's own signatures are verification signatures by this server (a Device named by its URL). */
export function isServerSignature(signature: Signature): boolean {
  return (
    (signature.type ?? []).some((t) => t.system === VERIFICATION_SIGNATURE.system && t.code === VERIFICATION_SIGNATURE.code) &&
    signature.who?.identifier?.system === 'urn:ietf:rfc:3986'
  );
}

/** The signer's user resource ("Practitioner/1") named by Signature.who, if it names one here. */
export function signerOf(signature: Signature, baseUrl: string): string | undefined {
  const reference = signature.who?.reference;
  const target = reference ? referenceTarget(reference, baseUrl) : undefined;
  return target?.local && target.id ? `${target.type}/${target.id}` : undefined;
}

function base(index: number, role: SignatureCheck['role'], signature: Signature, jws?: DetachedJws): Omit<SignatureCheck, 'result' | 'message'> {
  return {
    index,
    role,
    ...(signature.type && { type: signature.type }),
    ...(signature.who && { who: signature.who }),
    ...(typeof jws?.header.kid === 'string' && { kid: jws.header.kid }),
    ...(typeof jws?.header.alg === 'string' && { alg: jws.header.alg }),
  };
}

function parse(index: number, role: SignatureCheck['role'], signature: Signature): DetachedJws | SignatureCheck {
  if (signature.sigFormat !== JOSE) {
    return { ...base(index, role, signature), result: 'unsupported-format', message: `sigFormat must be ${JOSE}, got ${signature.sigFormat ?? 'none'}` };
  }
  const jws = parseSignatureData(signature.data);
  if (typeof jws === 'string') {
    return { ...base(index, role, signature), result: 'malformed', message: jws };
  }
  if (typeof jws.header.kid !== 'string' || typeof jws.header.alg !== 'string') {
    return { ...base(index, role, signature, jws), result: 'malformed', message: 'the JWS protected header needs "alg" and "kid"' };
  }
  return jws;
}

export interface AuthorKeySources {
  users: UserStore;
  /** At write time only the keys registered now count; afterwards also every key recorded when it verified. */
  recorded: boolean;
}

async function authorKeys(q: Queryable, sources: AuthorKeySources, signer: string, kid: string): Promise<JWK[]> {
  const current = (await sources.users.signingKeysOf(signer, q)).filter((key) => key.kid === kid);
  if (!sources.recorded) return current;
  const result = await q.query<{ jwk: JWK }>(
    sql`SELECT jwk FROM provenance_signer_key WHERE fhir_user = ${signer} AND kid = ${kid} ORDER BY first_used`
  );
  return [...result.rows.map((row) => row.jwk), ...current];
}

/** Keeps the key that verified an author signature, so that it verifies after the user replaces it. */
export async function recordAuthorKey(q: Queryable, signer: string, jwk: JWK): Promise<void> {
  const thumbprint = await calculateJwkThumbprint(jwk);
  await q.query(
    sql`INSERT INTO provenance_signer_key (fhir_user, kid, thumbprint, jwk)
        VALUES (${signer}, ${jwk.kid}, ${thumbprint}, ${JSON.stringify(jwk)}) ON CONFLICT DO NOTHING`
  );
}

/** An author's signature on a Provenance of several versions: it cannot be checked (it covers one version). */
export function authorSignatureOfSeveral(signature: Signature, index: number, provenanceId: string, targets: number): SignatureCheck {
  const info = base(index, 'author', signature);
  return { ...info, result: 'malformed', message: `an author's signature covers one version, but Provenance/${provenanceId} has ${targets} targets` };
}

/** An author's signature over the client form of the version (undefined version: it is not stored). */
export async function checkAuthorSignature(
  q: Queryable,
  sources: AuthorKeySources,
  baseUrl: string,
  signature: Signature,
  index: number,
  version: SignedVersion | undefined,
  target: string
): Promise<SignatureCheck> {
  const jws = parse(index, 'author', signature);
  if (!('compact' in jws)) return jws;
  const info = base(index, 'author', signature, jws);
  const alg = jws.header.alg as string;
  if (!USER_SIGNING_ALGS.includes(alg)) {
    return { ...info, result: 'malformed', message: `alg ${alg} is not accepted (${USER_SIGNING_ALGS.join(', ')})` };
  }
  const signer = signerOf(signature, baseUrl);
  if (!signer) {
    return { ...info, result: 'malformed', message: "signature.who must reference the signer's own resource on this server (their user's fhirUser, e.g. Practitioner/1)" };
  }
  if (!version) {
    return { ...info, result: 'target-missing', message: `${target} is not stored` };
  }
  const form = clientForm(version);
  if (form === undefined) {
    return { ...info, result: 'malformed', message: `${target} records a deletion, which has no content to sign` };
  }
  const keys = await authorKeys(q, sources, signer, jws.header.kid as string);
  if (keys.length === 0) {
    return { ...info, result: 'unknown-key', message: `no signing key with kid "${jws.header.kid}" is registered for ${signer}` };
  }
  for (const jwk of keys) {
    let key: KeyLike | Uint8Array;
    try {
      key = await importJWK(jwk, alg);
    } catch {
      continue;
    }
    if (await verifyDetached(jws, form, key, [alg])) {
      return { ...info, result: 'valid', message: `${signer}'s signature (kid "${jwk.kid}") verifies over the client form of ${target}`, jwk };
    }
  }
  return {
    ...info,
    result: 'bad-signature',
    message: `${signer}'s signature (kid "${jws.header.kid}", ${alg}) does not verify over the client form of ${target} as stored (canonical SHA-256 ${sha256(form)})`,
  };
}

/** A target version of a Provenance as the verifier found it (version undefined: not stored). */
export interface SignedTarget {
  reference: string;
  version?: SignedVersion;
}

function listed(references: string[]): string {
  return references.length === 1 ? references[0] : `${references.length} versions (${references.join(', ')})`;
}

/**
 * The server's verification signature: target digests, Provenance statement, key, signature.
 * `tgt` in its header is one version reference (the payload is that version's server form) or
 * an array of them (the payload is the array of their forms, see serverPayload).
 */
export async function checkServerSignature(
  keys: KeyStore,
  provenance: Provenance,
  index: number,
  targets: SignedTarget[]
): Promise<SignatureCheck & { header?: DetachedJws['header'] }> {
  const signature = (provenance.signature ?? [])[index];
  const jws = parse(index, 'server', signature);
  if (!('compact' in jws)) return jws;
  const info = { ...base(index, 'server', signature, jws), header: jws.header };
  const references = targets.map((t) => t.reference);
  const several = Array.isArray(jws.header.tgt);
  const signed: unknown[] = several ? (jws.header.tgt as unknown[]) : [jws.header.tgt];
  if (signed.length !== references.length || signed.some((tgt, i) => tgt !== references[i])) {
    return {
      ...info,
      result: 'statement-mismatch',
      message: `the signature is about ${signed.map(String).join(', ')}, but the Provenance's target is ${references.join(', ')}`,
    };
  }
  const missing = targets.filter((t) => !t.version).map((t) => t.reference);
  if (missing.length) {
    return { ...info, result: 'target-missing', message: `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not stored (removed from the database, or expunged)` };
  }
  const forms = targets.map((t) => serverForm(t.version as SignedVersion));
  const payload = serverPayload(forms, several);
  const digests = several ? forms.map(sha256) : [sha256(payload)];
  const signedDigests: unknown[] = several ? (Array.isArray(jws.header.dig) ? jws.header.dig : []) : [jws.header.dig];
  const changed = digests.flatMap((digest, i) =>
    signedDigests[i] === digest
      ? []
      : [`${references[i]} as stored is not what was signed: its canonical SHA-256 is ${digest}, the signature covers ${String(signedDigests[i])}`]
  );
  if (changed.length) {
    return { ...info, result: 'digest-mismatch', message: changed.join('; ') };
  }
  const statement = sha256(statementOf(provenance, index));
  if (jws.header.stm !== statement) {
    return {
      ...info,
      result: 'statement-mismatch',
      message: `Provenance/${provenance.id} was altered after it was signed (its statement hashes to ${statement}, the signature covers ${String(jws.header.stm)})`,
    };
  }
  const key = await keys.verificationKey(jws.header.kid as string);
  if (!key) {
    return { ...info, result: 'unknown-key', message: `no server key with kid "${jws.header.kid}" is known (not in the JWKS)` };
  }
  if (!(await verifyDetached(jws, payload, key.key, [key.alg]))) {
    return {
      ...info,
      result: 'bad-signature',
      message: `the server signature (kid "${key.kid}") does not verify although ${listed(references)} and the Provenance match their digests: the signature data was altered`,
    };
  }
  return { ...info, result: 'valid', message: `the server signature (kid "${key.kid}", ${key.alg}) verifies over ${listed(references)} as stored` };
}
