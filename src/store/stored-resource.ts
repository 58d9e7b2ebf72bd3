/**
 * A resource as a search read it from PostgreSQL: its JSON text, parsed only when something
 * reads its content.
 *
 * Why: a search page is mostly passed through. Parsing each row's JSON into objects and
 * serializing the Bundle back into JSON was about 40% of the server's CPU for a search that
 * returns some fifty resources with their _include targets (the strings are UTF-16 inside V8
 * as soon as a name is not ASCII, so each direction also converts). The text PostgreSQL sends
 * is already the resource's JSON: the response can carry it as it is (see fhir/json-body.ts),
 * while anything that needs the content (audit, _summary, a nested Bundle) still gets it,
 * parsed on first use.
 *
 * The query asks pg for the jsonb column as text (Sql.jsonAsText), so PostgreSQL does no more
 * work than before. json() moves resourceType first, as every other response of the server
 * has it (jsonb orders keys by length, then bytes).
 */
import type { Resource } from '@medplum/fhirtypes';
import { sql } from './sql';
import { orderResourceKeys } from './repository';

/** The columns StoredResource.fromRow reads, from `resource r`, for a query run jsonAsText(). */
export const STORED_COLUMNS = sql.raw('r.resource_type, r.id, r.content, r.compartments');

const RESOURCE_TYPE_KEY = '"resourceType": ';

/**
 * Where the resource's own `"resourceType": "<type>"` starts in jsonb's text, or -1. jsonb
 * writes keys by length, so shorter ones (id, meta, text, contained, ...) come first, and a
 * contained resource can carry the same pair: the match must be at depth 1, outside strings.
 * (Inside a string the quotes would be escaped, so the pair never matches there.)
 */
function ownResourceTypeAt(text: string, pair: string): number {
  let depth = 0;
  let inString = false;
  let pos = 0;
  for (let from = 0; ; ) {
    const at = text.indexOf(pair, from);
    if (at < 0) return -1;
    for (; pos < at; pos++) {
      const c = text.charCodeAt(pos);
      if (inString) {
        if (c === 0x5c) pos++;
        else if (c === 0x22) inString = false;
      } else if (c === 0x22) inString = true;
      else if (c === 0x7b || c === 0x5b) depth++;
      else if (c === 0x7d || c === 0x5d) depth--;
    }
    if (pos === at && !inString && depth === 1) return at;
    from = at + 1;
  }
}

export class StoredResource {
  private parsed?: Resource;

  constructor(
    readonly resourceType: string,
    readonly id: string,
    /** The resource's JSON text, as PostgreSQL wrote it. */
    private readonly body: string,
    /** The patient compartments the row belongs to (as written: patientCompartments of the content). */
    readonly compartments: readonly string[] = []
  ) {}

  /** ownResourceTypeAt, without the scan when the text holds a single resourceType key. */
  private ownResourceTypeAt(pair: string): number {
    const first = this.body.indexOf(RESOURCE_TYPE_KEY);
    if (first >= 0 && this.body.indexOf(RESOURCE_TYPE_KEY, first + 1) < 0) {
      return this.body.startsWith(pair, first) ? first : -1;
    }
    return ownResourceTypeAt(this.body, pair);
  }

  static fromRow(row: Record<string, unknown>): StoredResource {
    return new StoredResource(row.resource_type as string, row.id as string, row.content as string, (row.compartments as string[] | null) ?? []);
  }

  /** The content, parsed on first use (the same object afterwards). */
  get resource(): Resource {
    this.parsed ??= orderResourceKeys(JSON.parse(this.body) as Resource);
    return this.parsed;
  }

  /** The resource as JSON text, resourceType first, without parsing it. */
  json(): string {
    const pair = `"resourceType": ${JSON.stringify(this.resourceType)}`;
    const at = this.ownResourceTypeAt(pair);
    // Not where jsonb puts it (never expected): the parsed content, serialized.
    if (at < 0) return JSON.stringify(this.resource);
    const before = this.body.slice(1, at);
    const after = this.body.slice(at + pair.length);
    // The pair's neighbours: `{..., "resourceType": "X", ...}`; drop one comma with it.
    const rest = after.startsWith(', ') ? before + after.slice(2) : before.endsWith(', ') ? before.slice(0, -2) + after : before + after;
    return rest === '}' ? `{${pair}}` : `{${pair}, ${rest}`;
  }
}
