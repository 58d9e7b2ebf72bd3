/**
 * StructureDefinitions that clients store (POST a profile, then write resources that claim
 * it), seen by every server process on its very next validation.
 *
 * The mechanism is terminology's (src/terminology/stored.ts), and so is the counter: every
 * write of a StructureDefinition bumps the same generation, in the write's own transaction.
 * A validation that needs a stored profile reads the counter once (one single-row query);
 * while it is unchanged, every lookup made for it still holds; when it changed, the lookups
 * start afresh. Compiled profiles are kept by id and version, so an unchanged profile is
 * never compiled twice. These reads run on services.lookupDb: a validation inside a transaction
 * Bundle must not wait for a connection the other transactions hold.
 */
import type { StructureDefinition } from '@medplum/fhirtypes';
import { lookupContext } from '../fhir/system-context';
import type { Services, WriteHook } from '../services';
import { bumpGeneration, readGeneration } from '../terminology/stored';

/** Most versions of one canonical URL considered. */
const MAX_MATCHES = 100;

function latest(resources: StructureDefinition[]): StructureDefinition | undefined {
  return [...resources].sort((a, b) => (b.meta?.lastUpdated ?? '').localeCompare(a.meta?.lastUpdated ?? ''))[0];
}

/** The stored StructureDefinitions as of one generation; lookups memoized while it holds. */
export class StoredGeneration {
  private readonly lookups = new Map<string, Promise<StructureDefinition[]>>();

  constructor(
    readonly value: number,
    private readonly services: Services
  ) {}

  private byUrlAll(url: string): Promise<StructureDefinition[]> {
    let found = this.lookups.get(url);
    if (!found) {
      found = this.services.search.match(lookupContext(this.services), 'StructureDefinition', [['url', url]], MAX_MATCHES) as Promise<
        StructureDefinition[]
      >;
      found.catch(() => this.lookups.delete(url));
      this.lookups.set(url, found);
    }
    return found;
  }

  /** The stored StructureDefinition with this URL (that version, or the latest stored). */
  async byUrl(url: string, version?: string): Promise<StructureDefinition | undefined> {
    const all = (await this.byUrlAll(url)).filter((sd) => sd.url === url);
    return latest(version === undefined ? all : all.filter((sd) => sd.version === version));
  }

  async versionsOf(url: string): Promise<string[]> {
    return (await this.byUrlAll(url)).filter((sd) => sd.url === url).map((sd) => sd.version ?? '(none)');
  }
}

export class StoredProfiles {
  private current?: StoredGeneration;

  constructor(private readonly services: Services) {}

  async generation(scope?: object): Promise<StoredGeneration> {
    const value = await readGeneration(this.services.lookupDb, scope);
    if (this.current?.value !== value) this.current = new StoredGeneration(value, this.services);
    return this.current;
  }
}

/** A write of a StructureDefinition starts a new generation when (and only if) it commits. */
export const profileGenerationHook: WriteHook = {
  async afterWrite(_ctx, tx, event) {
    if (event.resourceType === 'StructureDefinition') await bumpGeneration(tx);
  },
};
