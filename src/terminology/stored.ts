/**
 * Terminology resources that clients create and update through the REST API, found through
 * the search engine (url, version, source-system, NamingSystem value), and cached per
 * "generation".
 *
 * Why a generation counter: every write of a CodeSystem, ValueSet, ConceptMap or NamingSystem
 * bumps one row (terminology_generation), inside the write's own transaction (a write hook),
 * so the new generation becomes visible exactly when the new content does. Each process
 * (WORKERS > 1 runs several) reads that one row before it uses anything stored: one
 * index-free single-row query, whatever the number of resources involved. When it has not
 * changed, everything looked up and linked for it is still exact; when it has, this process
 * starts a new cache, so a client sees its update on its very next request, whichever worker
 * serves it. A TTL would have been cheaper but would show stale expansions after an update,
 * and LISTEN/NOTIFY arrives asynchronously, after the client may already have asked again.
 *
 * Built-in content (R4 base, profiles/) never needs this check: it cannot change. Stored content
 * is read on services.lookupDb, because validation asks for it inside write transactions.
 *
 * The counter is shared with validation, whose stored StructureDefinitions follow writes the
 * same way (src/validation/stored.ts): one counter for every stored conformance resource a
 * cache depends on, read with one query.
 */
import type { ConceptMap, NamingSystem, Resource } from '@medplum/fhirtypes';
import { lookupContext } from '../fhir/system-context';
import type { Services, WriteHook } from '../services';
import { sql } from '../store/sql';
import type { WriteTx } from '../store/write-tx';
import { idForms, namingSystemIds, TERMINOLOGY_TYPES, type CanonicalResource, type TerminologyType } from './builtin';
import type { LinkedValueSet } from './value-set';

/** Most versions of one canonical URL considered; more is a data problem, not a lookup. */
const MAX_MATCHES = 100;

function latest<T extends Resource>(resources: T[]): T | undefined {
  return [...resources].sort((a, b) => (b.meta?.lastUpdated ?? '').localeCompare(a.meta?.lastUpdated ?? ''))[0];
}

/** What is stored, as of one generation. Lookups are memoized for as long as the generation holds. */
export class Generation {
  private readonly lookups = new Map<string, Promise<Resource[]>>();
  /** Value sets linked against this generation's content. */
  readonly linked = new Map<string, LinkedValueSet>();

  constructor(
    readonly value: number,
    private readonly services: Services
  ) {}

  private search<T extends Resource>(type: TerminologyType, params: [string, string][]): Promise<T[]> {
    const key = `${type}?${new URLSearchParams(params).toString()}`;
    let found = this.lookups.get(key);
    if (!found) {
      found = this.services.search.match(lookupContext(this.services), type, params, MAX_MATCHES);
      // A failed query must not stay cached as the answer.
      found.catch(() => this.lookups.delete(key));
      this.lookups.set(key, found);
    }
    return found as Promise<T[]>;
  }

  /** The stored resource with this canonical URL (the given version, or the latest stored). */
  async byUrl<T extends CanonicalResource>(type: T['resourceType'], url: string, version?: string): Promise<T | undefined> {
    const all = await this.search<T>(type, [['url', url]]);
    const exact = all.filter((r) => r.url === url);
    return version === undefined ? latest(exact) : latest(exact.filter((r) => r.version === version));
  }

  /** Versions stored for a canonical URL, for error messages. */
  async versionsOf(type: TerminologyType, url: string): Promise<string[]> {
    const all = await this.search<CanonicalResource>(type, [['url', url]]);
    return all.filter((r) => r.url === url).map((r) => r.version ?? '(none)');
  }

  async conceptMapsFor(system: string, reverse: boolean): Promise<ConceptMap[]> {
    const maps = await this.search<ConceptMap>('ConceptMap', [[reverse ? 'target-system' : 'source-system', system]]);
    return maps.filter((m) => (m.group ?? []).some((g) => (reverse ? g.target : g.source) === system));
  }

  async namingSystemsFor(id: string): Promise<NamingSystem[]> {
    const found = await this.search<NamingSystem>('NamingSystem', [['value:exact', id]]);
    return found.filter((ns) => (ns.uniqueId ?? []).some((u) => u.value === id));
  }

  /** The other names stored NamingSystems give the code system named `system`, preferred first. */
  async aliases(system: string): Promise<string[]> {
    const forms = idForms(system);
    const found: string[] = [];
    for (const id of forms) {
      for (const ns of await this.namingSystemsFor(id)) {
        found.push(...namingSystemIds(ns).filter((other) => !forms.includes(other)));
      }
    }
    return [...new Set(found)];
  }
}

/** Generation reads shared by the validations of one scope (see readGeneration). */
const scopedReads = new WeakMap<object, Promise<number>>();

/**
 * The current value of the generation counter. With a scope (the WriteTx of a transaction
 * Bundle), it is read once for the whole scope: the entries of one transaction are checked
 * against one state of the stored content (which its own uncommitted writes cannot change,
 * since lookups run on another connection), instead of one read per resource validated.
 */
export function readGeneration(db: Pick<Services['db'], 'query'>, scope?: object): Promise<number> {
  if (!scope) return queryGeneration(db);
  let read = scopedReads.get(scope);
  if (!read) {
    read = queryGeneration(db);
    scopedReads.set(scope, read);
    // A failed read must not stay the scope's answer.
    read.catch(() => scopedReads.delete(scope));
  }
  return read;
}

async function queryGeneration(db: Pick<Services['db'], 'query'>): Promise<number> {
  const result = await db.query<{ generation: number }>(sql`SELECT generation FROM terminology_generation`.prepared('generation'));
  return Number(result.rows[0]?.generation ?? 0);
}

/** Bumps the counter inside a write's transaction, so it commits (or not) with the write. */
export async function bumpGeneration(tx: Pick<WriteTx, 'query'>): Promise<void> {
  await tx.query(sql`UPDATE terminology_generation SET generation = generation + 1`);
}

export class StoredTerminology {
  private current?: Generation;

  constructor(private readonly services: Services) {}

  /** The current generation: one single-row query (one per scope), and a fresh cache when something changed. */
  async generation(scope?: object): Promise<Generation> {
    const value = await readGeneration(this.services.lookupDb, scope);
    if (this.current?.value !== value) {
      this.current = new Generation(value, this.services);
    }
    return this.current;
  }
}

/** Bumps the generation inside the write's transaction, so it commits (or not) with the write. */
export const generationHook: WriteHook = {
  async afterWrite(_ctx, tx, event) {
    if (TERMINOLOGY_TYPES.has(event.resourceType)) await bumpGeneration(tx);
  },
};
