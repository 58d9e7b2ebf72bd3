/**
 * Finds and compiles what the operations and the TerminologyService need, from the built-in
 * catalog first and the database second, and keeps what it compiled:
 *
 * - built-in code systems, concept maps, and value sets linked only against built-in content:
 *   for the life of the process (they cannot change), so a binding check is a few map lookups;
 * - stored code systems and concept maps: by id and version id (a new version is a new key);
 * - everything linked against stored content: for the current generation (see stored.ts).
 *
 * Precedence: a built-in resource wins over a stored one with the same URL, because the R4
 * base and the profile pack define those URLs; the exceptions are built-in stubs without
 * content (SNOMED CT's CodeSystem has content "not-present"), which a stored code system may
 * fill, and versions that only the database has.
 */
import type { CodeSystem, ConceptMap, ValueSet } from '@medplum/fhirtypes';
import type { BuiltinCatalog } from './builtin';
import { splitCanonical } from './builtin';
import { CompiledCodeSystem } from './code-system';
import { CompiledConceptMap } from './concept-map';
import type { Generation, StoredTerminology } from './stored';
import { linkValueSet, type LinkContext, type LinkedValueSet } from './value-set';

/** Compiled stored resources kept across generations (by id and version). */
const MAX_STORED_COMPILED = 500;

class BoundedCache<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  set(key: string, value: V): void {
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value as string);
    this.map.set(key, value);
  }
}

export class Terminology {
  /** Compiled built-in resources, by the resource object (which lives as long as the process). */
  private readonly builtinCompiled = new WeakMap<CodeSystem | ConceptMap, CompiledCodeSystem | CompiledConceptMap>();
  /** Compiled stored resources, by type, id and version id: a new version is a new key. */
  private readonly storedCompiled = new BoundedCache<CompiledCodeSystem | CompiledConceptMap>(MAX_STORED_COMPILED);
  /** Built-in value sets linked only against built-in content, by url|version. */
  readonly pureValueSets = new Map<string, LinkedValueSet>();
  /** Built-in value sets that depend on something not built in. */
  readonly impureValueSets = new Set<string>();

  private catalog?: BuiltinCatalog;

  constructor(
    private readonly loadBuiltin: () => BuiltinCatalog,
    readonly stored: StoredTerminology,
    readonly maxExpansion: number
  ) {}

  /** Read on first use, not at start-up: a server that never checks a code never pays for it. */
  get builtin(): BuiltinCatalog {
    this.catalog ??= this.loadBuiltin();
    return this.catalog;
  }

  session(scope?: object): Session {
    return new Session(this, scope);
  }

  compileCodeSystem(resource: CodeSystem, builtin: boolean): CompiledCodeSystem {
    return this.compile(resource, builtin, () => new CompiledCodeSystem(resource));
  }

  compileConceptMap(resource: ConceptMap, builtin: boolean): CompiledConceptMap {
    return this.compile(resource, builtin, () => new CompiledConceptMap(resource));
  }

  private compile<R extends CodeSystem | ConceptMap, C extends CompiledCodeSystem | CompiledConceptMap>(resource: R, builtin: boolean, make: () => C): C {
    const key = `${resource.resourceType}/${resource.id}/${resource.meta?.versionId}`;
    let compiled = (builtin ? this.builtinCompiled.get(resource) : this.storedCompiled.get(key)) as C | undefined;
    if (!compiled) {
      compiled = make();
      if (builtin) this.builtinCompiled.set(resource, compiled);
      else this.storedCompiled.set(key, compiled);
    }
    return compiled;
  }
}

/**
 * One operation's view: it reads the generation at most once, so everything it looks up
 * in the database comes from one consistent state.
 */
export class Session implements LinkContext {
  private gen?: Promise<Generation>;

  constructor(
    readonly t: Terminology,
    /** Sessions of one scope (a transaction) share one generation read (see readGeneration). */
    private readonly scope?: object
  ) {}

  generation(): Promise<Generation> {
    this.gen ??= this.t.stored.generation(this.scope);
    return this.gen;
  }

  /** The URL of the code system a system identifier stands for (resolving OIDs and NamingSystem aliases). */
  async canonicalSystem(system: string): Promise<string> {
    const { builtin } = this.t;
    if (builtin.has('CodeSystem', system)) return system;
    const alias = builtin.alias(system);
    if (alias) return alias;
    const gen = await this.generation();
    if (await gen.byUrl<CodeSystem>('CodeSystem', system)) return system;
    for (const other of await gen.aliases(system)) {
      if (builtin.has('CodeSystem', other) || (await gen.byUrl<CodeSystem>('CodeSystem', other))) return other;
    }
    return system;
  }

  async codeSystem(
    system: string,
    version?: string,
    options: { builtinOnly?: boolean } = {}
  ): Promise<{ cs?: CompiledCodeSystem; missing?: string; pure: boolean }> {
    const { builtin } = this.t;
    const url = builtin.has('CodeSystem', system) ? system : (builtin.alias(system) ?? system);
    const own = builtin.find<CodeSystem>('CodeSystem', url, version);
    if (own && own.content !== 'not-present') {
      return { cs: this.t.compileCodeSystem(own, true), pure: true };
    }
    if (options.builtinOnly) {
      return { cs: own && this.t.compileCodeSystem(own, true), missing: `the code system ${system} is not loaded on this server`, pure: true };
    }
    const gen = await this.generation();
    let stored = await gen.byUrl<CodeSystem>('CodeSystem', url, version);
    if (!stored && !own) {
      // A stored NamingSystem may know it by another name.
      for (const other of await gen.aliases(url)) {
        const builtinOther = builtin.find<CodeSystem>('CodeSystem', other, version);
        if (builtinOther && builtinOther.content !== 'not-present') return { cs: this.t.compileCodeSystem(builtinOther, true), pure: false };
        stored = await gen.byUrl<CodeSystem>('CodeSystem', other, version);
        if (stored) break;
      }
    }
    if (stored) return { cs: this.t.compileCodeSystem(stored, false), pure: false };
    if (own) return { cs: this.t.compileCodeSystem(own, true), pure: false };
    const known = [...builtin.versionsOf('CodeSystem', url), ...(await gen.versionsOf('CodeSystem', url))];
    if (version !== undefined && known.length) {
      return { missing: `version ${version} of the code system ${url} is not known here (known: ${known.join(', ')})`, pure: false };
    }
    return { missing: `the code system ${system} is not known on this server`, pure: false };
  }

  async valueSet(canonical: string, stack: readonly string[] = []): Promise<{ vs?: LinkedValueSet; missing?: string; pure: boolean }> {
    const { url, version } = splitCanonical(canonical);
    const key = `${url}|${version ?? ''}`;
    if (stack.includes(url)) {
      return { missing: `the value set ${url} imports itself (through ${stack.join(' -> ')})`, pure: true };
    }
    const { t } = this;
    const pure = t.pureValueSets.get(key);
    if (pure) return { vs: pure, pure: true };
    const own = t.builtin.find<ValueSet>('ValueSet', url, version);
    if (own && !t.impureValueSets.has(key)) {
      const linked = await linkValueSet(own, this, t.maxExpansion, { builtin: true }, stack);
      if (linked.pure) {
        t.pureValueSets.set(key, linked);
        return { vs: linked, pure: true };
      }
      t.impureValueSets.add(key);
      (await this.generation()).linked.set(key, linked);
      return { vs: linked, pure: false };
    }
    const gen = await this.generation();
    const cached = gen.linked.get(key);
    if (cached) return { vs: cached, pure: false };
    const resource = own ?? (await gen.byUrl<ValueSet>('ValueSet', url, version));
    if (!resource) {
      const known = [...t.builtin.versionsOf('ValueSet', url), ...(await gen.versionsOf('ValueSet', url))];
      const missing =
        version !== undefined && known.length
          ? `version ${version} of the value set ${url} is not known here (known: ${known.join(', ')})`
          : `the value set ${url} is not known on this server`;
      return { missing, pure: false };
    }
    // A built-in value set keeps its built-in linking rules (see linkRule) when relinked here.
    const linked = await linkValueSet(resource, this, t.maxExpansion, { builtin: resource === own }, stack);
    gen.linked.set(key, linked);
    return { vs: linked, pure: false };
  }

  /** Links a value set given as a resource (POSTed): nothing to cache it by. */
  linkResource(resource: ValueSet): Promise<LinkedValueSet> {
    return linkValueSet(resource, this, this.t.maxExpansion, { builtin: false });
  }

  /** Links a stored value set read by id; kept for the generation under its id and version. */
  async linkStored(resource: ValueSet): Promise<LinkedValueSet> {
    const gen = await this.generation();
    const key = `ValueSet/${resource.id}/${resource.meta?.versionId}`;
    let linked = gen.linked.get(key);
    if (!linked) {
      linked = await this.linkResource(resource);
      gen.linked.set(key, linked);
    }
    return linked;
  }

  async conceptMap(canonical: string): Promise<CompiledConceptMap | undefined> {
    const { url, version } = splitCanonical(canonical);
    const own = this.t.builtin.find<ConceptMap>('ConceptMap', url, version);
    if (own) return this.t.compileConceptMap(own, true);
    const stored = await (await this.generation()).byUrl<ConceptMap>('ConceptMap', url, version);
    return stored ? this.t.compileConceptMap(stored, false) : undefined;
  }

  /** Every concept map with a group from this system (to it, when reverse). */
  async conceptMapsFor(system: string, reverse: boolean): Promise<CompiledConceptMap[]> {
    const builtin = this.t.builtin.conceptMapsFor(system, reverse).map((m) => this.t.compileConceptMap(m, true));
    const builtinUrls = new Set(builtin.map((m) => m.url));
    const stored = (await (await this.generation()).conceptMapsFor(system, reverse))
      .filter((m) => !m.url || !builtinUrls.has(m.url))
      .map((m) => this.t.compileConceptMap(m, false));
    return [...builtin, ...stored];
  }
}
