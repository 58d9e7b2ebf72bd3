/**
 * The storage key of a resource: a UUIDv5 (RFC 9562) of "<resourceType>/<id>" in this server's
 * namespace. Deterministic, so it needs no lookup and no sequence.
 */
import { createHash } from 'node:crypto';

// A fixed random namespace; changing it would orphan every stored row.
const NAMESPACE = Buffer.from('6f1c6a4e3b2d4c8e9a7f0d5b1e2c3a49', 'hex');

export function ridOf(resourceType: string, id: string): string {
  const hash = createHash('sha1').update(NAMESPACE).update(resourceType + '/' + id).digest();
  hash[6] = (hash[6] & 0x0f) | 0x50;
  hash[8] = (hash[8] & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
