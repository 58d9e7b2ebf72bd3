/**
 * The storage key of a resource (rid), a pure function of "<resourceType>/<id>" so that reads
 * and references need no lookup and no sequence.
 *
 * Ids the server assigns are UUIDv7 (RFC 9562) in a form that is its own key:
 *
 *     tttttttt-tttt-7TTT-b1d9-rrrrrrrrrrrr
 *
 * t: 48-bit Unix time in ms; 7: the version; TTT: the type's tag (rid-types.ts); b1d9: the
 * variant bits and a fixed marker; r: 48 random bits. Its rid is the id itself, so new rows
 * land at the right-hand end of every rid-keyed index (the primary keys, the history and each
 * search-index table's rid index) instead of on a random leaf page: a bulk load touches,
 * dirties and logs a few hot pages rather than one cold page per index per resource.
 *
 * Every other id (client-assigned, or from before) gets a UUIDv5 of "<resourceType>/<id>" in
 * this server's namespace. The two never meet: a v5 key has version 5, these have 7. Within the
 * v7 form, the key is the id and the tag names the type, so two different (type, id) pairs
 * cannot share a key; the id must be lowercase, as FHIR ids are case-sensitive. A client id
 * that happens to have this exact form (about 1 in 2^26 random UUIDv7) gets the same
 * treatment: harmless for new rows, but such a row stored before minted ids existed would no
 * longer be found under its v5 key.
 */
import { createHash, randomBytes } from 'node:crypto';
import { RID_TYPES } from './rid-types';

// A fixed random namespace; changing it would orphan every stored row.
const NAMESPACE = Buffer.from('6f1c6a4e3b2d4c8e9a7f0d5b1e2c3a49', 'hex');

/** Variant bits 10 and a 14-bit marker: bytes 8-9 of every minted id. */
const MARKER = 'b1d9';

const TAGS = new Map(RID_TYPES.map((type, index) => [type, (index + 1).toString(16).padStart(3, '0')]));

const MINTED = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-b1d9-[0-9a-f]{12}$/;

export function ridOf(resourceType: string, id: string): string {
  if (id.length === 36 && id.charCodeAt(14) === 0x37 && MINTED.test(id) && id.slice(15, 18) === TAGS.get(resourceType)) {
    return id;
  }
  return uuidV5(resourceType + '/' + id);
}

/** A new server-assigned id for a resource of this type: time-ordered, and its own rid. */
export function mintId(resourceType: string): string {
  const tag = TAGS.get(resourceType);
  if (!tag) {
    // Not an R4 type the list knows (the server stores no others): a plain random UUID.
    return uuidText(randomBytes(16), 4);
  }
  const time = Date.now().toString(16).padStart(12, '0');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${tag}-${MARKER}-${randomBytes(6).toString('hex')}`;
}

function uuidV5(name: string): string {
  return uuidText(createHash('sha1').update(NAMESPACE).update(name).digest(), 5);
}

function uuidText(bytes: Buffer, version: number): string {
  bytes[6] = (bytes[6] & 0x0f) | (version << 4);
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
