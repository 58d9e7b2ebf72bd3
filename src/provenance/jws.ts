/**
 * JWS with a detached payload (RFC 7515, appendix F) as FHIR Signature.data carries it:
 * base64 of the compact serialization `<protected header>..<signature>`, whose payload (the
 * canonical JSON of the signed version) the verifier recomputes and puts back.
 *
 * The server signs with the standard encoding (b64 true): the signing input is
 * BASE64URL(header) "." BASE64URL(payload), so any JOSE library verifies it once the
 * payload is reinserted. Client signatures may also use the unencoded payload option
 * (RFC 7797, "b64": false with "crit": ["b64"]).
 *
 * Signing uses node:crypto directly (jose's sign path costs several times the ECDSA itself on
 * the write path); verification goes through jose, which checks algorithms and crit.
 */
import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import { flattenedVerify, type KeyLike } from 'jose';

export interface JwsHeader {
  alg?: string;
  kid?: string;
  b64?: boolean;
  crit?: string[];
  [name: string]: unknown;
}

export interface DetachedJws {
  /** The compact serialization, payload part empty. */
  compact: string;
  protectedB64: string;
  header: JwsHeader;
  signatureB64: string;
}

const DIGEST: Record<string, string> = { ES256: 'sha256', RS256: 'sha256', ES384: 'sha384', RS384: 'sha384' };

/** Signs payload (a canonical JSON text) and returns the detached compact JWS. */
export function signDetached(privateKey: KeyLike, header: JwsHeader & { alg: string }, payload: string): string {
  const digest = DIGEST[header.alg];
  if (!digest) {
    throw new Error(`The server does not sign with ${header.alg}`);
  }
  const protectedB64 = Buffer.from(JSON.stringify(header), 'utf8').toString('base64url');
  const input = protectedB64 + '.' + Buffer.from(payload, 'utf8').toString('base64url');
  const signature = cryptoSign(digest, Buffer.from(input, 'ascii'), {
    key: privateKey as KeyObject,
    // JWS carries ECDSA signatures as R || S, not DER (RFC 7518, 3.4).
    ...(header.alg.startsWith('ES') && { dsaEncoding: 'ieee-p1363' as const }),
  });
  return `${protectedB64}..${signature.toString('base64url')}`;
}

/** Signature.data (base64) as the compact JWS it must hold. */
export function toSignatureData(compact: string): string {
  return Buffer.from(compact, 'ascii').toString('base64');
}

/** Reads Signature.data; a message saying what is wrong when it is not a detached compact JWS. */
export function parseSignatureData(data: string | undefined): DetachedJws | string {
  if (!data) {
    return 'the signature has no data';
  }
  const compact = Buffer.from(data, 'base64').toString('latin1').trim();
  const parts = compact.split('.');
  if (parts.length !== 3 || !parts.every((p) => /^[A-Za-z0-9_-]*$/.test(p)) || !parts[0] || !parts[2]) {
    return 'the signature data is not a JWS compact serialization (base64 of "<header>..<signature>")';
  }
  if (parts[1] !== '') {
    return 'the JWS must have a detached payload (an empty middle part, RFC 7515 appendix F)';
  }
  let header: JwsHeader;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
  } catch {
    return 'the JWS protected header is not JSON';
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) {
    return 'the JWS protected header is not a JSON object';
  }
  return { compact, protectedB64: parts[0], header, signatureB64: parts[2] };
}

/** Whether the JWS verifies over payload with key; an algorithm outside `algorithms` never does. */
export async function verifyDetached(jws: DetachedJws, payload: string, key: KeyLike | Uint8Array, algorithms: string[]): Promise<boolean> {
  const unencoded = jws.header.b64 === false;
  try {
    await flattenedVerify(
      {
        protected: jws.protectedB64,
        payload: unencoded ? payload : Buffer.from(payload, 'utf8').toString('base64url'),
        signature: jws.signatureB64,
      },
      key,
      { algorithms }
    );
    return true;
  } catch {
    return false;
  }
}
