/**
 * The normal form of text for string search: FHIR's default string match is case- and
 * accent-insensitive, so values and queries are both lower-cased and stripped of combining
 * marks (NFD). CJK text is unchanged by this, as it should be.
 */
export function normalizeText(text: string): string {
  return text.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}

/** Escapes LIKE wildcards so user text matches literally. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => '\\' + c);
}
