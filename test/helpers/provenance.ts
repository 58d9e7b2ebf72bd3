/**
 * What an outside verifier (or an EHR vendor signing resources) does, written from the README
 * and RFCs with plain `jose`, independently of the server's own code: canonical JSON, the
 * detached JWS in Signature.data, verification against the published JWKS.
 */
import { CompactSign, createLocalJWKSet, flattenedVerify, type JWK, type KeyLike } from 'jose';
import type { TestServer } from './server';

/**
 * RFC 8785 for FHIR resources: keys sorted by UTF-16 code units, ECMAScript number and string
 * forms (JSON.stringify). Enough for resources (no integer-like keys, which JS objects reorder).
 */
export function jcs(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(jcs).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${jcs(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The form a client signs (README): no meta.versionId/lastUpdated/source, no id for a POST create. */
export function clientSigningForm(resource: any, createdByPost: boolean): string {
  const copy = structuredClone(resource);
  if (createdByPost) delete copy.id;
  if (copy.meta) {
    delete copy.meta.versionId;
    delete copy.meta.lastUpdated;
    delete copy.meta.source;
    if (Object.keys(copy.meta).length === 0) delete copy.meta;
  }
  return jcs(copy);
}

/** A detached JWS over the canonical text, as Signature.data (base64 of "<header>..<signature>"). */
export async function detachedSignature(canonical: string, key: KeyLike, header: { alg: string; kid: string }): Promise<string> {
  const compact = await new CompactSign(new TextEncoder().encode(canonical)).setProtectedHeader(header).sign(key);
  const [h, , s] = compact.split('.');
  return Buffer.from(`${h}..${s}`).toString('base64');
}

export function authorSignature(data: string, who: string) {
  return {
    type: [{ system: 'urn:iso-astm:E1762-95:2013', code: '1.2.840.10065.1.12.1.1' }],
    when: new Date().toISOString(),
    who: { reference: who },
    sigFormat: 'application/jose',
    data,
  };
}

export async function publishedJwks(server: TestServer): Promise<{ keys: JWK[] }> {
  const res = await fetch(`${server.baseUrl}/.well-known/jwks.json`);
  return (await res.json()) as { keys: JWK[] };
}

/** Verifies Signature.data over the canonical text with the server's JWKS; the protected header when valid. */
export async function verifyWithJwks(server: TestServer, data: string, canonical: string): Promise<Record<string, unknown>> {
  const [protectedHeader, payload, signature] = Buffer.from(data, 'base64').toString('ascii').split('.');
  expect(payload).toBe('');
  const jwks = createLocalJWKSet(await publishedJwks(server));
  const result = await flattenedVerify(
    { protected: protectedHeader, payload: Buffer.from(canonical).toString('base64url'), signature },
    jwks
  );
  return result.protectedHeader as Record<string, unknown>;
}

/** The stored content of a version, straight from the database (what the server signed). */
export async function storedVersion(server: TestServer, type: string, id: string, version: number): Promise<any> {
  const rows = await server.pool.query('SELECT content FROM resource_version WHERE resource_type = $1 AND id = $2 AND version_id = $3', [type, id, version]);
  return rows.rows[0]?.content;
}

/** The server-written Provenance(s) whose target is Type/id/_history/v. */
export async function provenancesOf(server: TestServer, target: string): Promise<any[]> {
  const rows = await server.pool.query(
    `SELECT content FROM resource WHERE resource_type = 'Provenance' AND content->'target' @> jsonb_build_array(jsonb_build_object('reference', $1::text))`,
    [target]
  );
  return rows.rows.map((r) => r.content);
}

export const param = (body: any, name: string) => body?.parameter?.find((p: any) => p.name === name);
export const parts = (p: any, name: string) => (p?.part ?? []).filter((q: any) => q.name === name);
export const partValue = (p: any, name: string) => {
  const q = p?.part?.find((x: any) => x.name === name);
  return q && Object.entries(q).find(([k]) => k.startsWith('value'))?.[1];
};
/** The issues of a verification answer as [code, diagnostics]. */
export function problems(body: any): [string, string][] {
  const outcome = param(body, 'issues')?.resource;
  return (outcome?.issue ?? [])
    .filter((i: any) => i.severity === 'error')
    .map((i: any) => [i.details?.coding?.[0]?.code, i.diagnostics]);
}
