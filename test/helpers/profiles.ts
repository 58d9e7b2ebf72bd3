/**
 * The national pack as the unit tests read it (the committed files in profiles/), and
 * validation against its profiles with @medplum/core: the resource against the profile's
 * snapshot, and each extension of the pack found in the resource against the extension's
 * definition (medplum's validator does not follow extension profiles by itself).
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadDataType, OperationOutcomeError, validateResource, validateTypedValue } from '@medplum/core';
import type { OperationOutcomeIssue, Resource, StructureDefinition } from '@medplum/fhirtypes';
import { loadDefinitions } from '../../src/fhir/definitions';

export const PROFILES_DIR = path.resolve(__dirname, '..', '..', 'profiles');
export const PROFILE_FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'profiles');

/** Every JSON file under profiles/, by path relative to it. */
export function packFiles(): Map<string, unknown> {
  const files = new Map<string, unknown>();
  const visit = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(full);
      else if (entry.name.endsWith('.json')) {
        files.set(path.relative(PROFILES_DIR, full).split(path.sep).join('/'), JSON.parse(fs.readFileSync(full, 'utf8')));
      }
    }
  };
  visit(PROFILES_DIR);
  return files;
}

export function packResources(files = packFiles()): Resource[] {
  return [...files.values()].filter((f): f is Resource => typeof (f as Resource).resourceType === 'string');
}

let loaded: Map<string, StructureDefinition> | undefined;

/**
 * Loads the R4 base (as the server does) and the pack's StructureDefinitions into @medplum/core's
 * registry, once per test file. Profiles are registered under their own URL and never replace a
 * base type.
 */
export function loadPack(): Map<string, StructureDefinition> {
  if (!loaded) {
    loadDefinitions();
    loaded = new Map();
    for (const r of packResources()) {
      if (r.resourceType === 'StructureDefinition') {
        const sd = r as StructureDefinition;
        loadDataType(sd);
        loaded.set(sd.url as string, sd);
      }
    }
  }
  return loaded;
}

function issuesOf(run: () => OperationOutcomeIssue[]): OperationOutcomeIssue[] {
  try {
    return run();
  } catch (err) {
    if (err instanceof OperationOutcomeError) return err.outcome.issue ?? [];
    throw err;
  }
}

/** Every extension (with its FHIRPath-like location) in a resource, primitive extensions included. */
function extensionsIn(value: unknown, at: string, found: { url: string; value: object; at: string }[] = []) {
  if (Array.isArray(value)) value.forEach((v, i) => extensionsIn(v, `${at}[${i}]`, found));
  else if (value && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      const name = key.startsWith('_') ? key.slice(1) : key;
      if (key === 'extension' && Array.isArray(child)) {
        child.forEach((ext, i) => found.push({ url: ext?.url, value: ext, at: `${at}.extension[${i}]` }));
      }
      extensionsIn(child, `${at}.${name}`, found);
    }
  }
  return found;
}

export const errorsOf = (issues: OperationOutcomeIssue[]) => issues.filter((i) => i.severity === 'error');

/** Validation of a resource against a profile of the pack: every issue, errors and warnings. */
export function validateAgainst(profileUrl: string, resource: Resource): OperationOutcomeIssue[] {
  const definitions = loadPack();
  const profile = definitions.get(profileUrl);
  if (!profile) throw new Error(`no profile ${profileUrl} in profiles/`);
  const issues = issuesOf(() => validateResource(resource, { profile }));
  for (const ext of extensionsIn(resource, resource.resourceType)) {
    const definition = definitions.get(ext.url);
    if (!definition) continue;
    const found = issuesOf(() => validateTypedValue({ type: 'Extension', value: ext.value }, { profile: definition }));
    issues.push(...found.map((i) => ({ ...i, expression: (i.expression ?? []).map((e) => e.replace(/^Extension/, ext.at)) })));
  }
  return issues;
}

export function fixture(profile: string, name: string): Resource {
  return JSON.parse(fs.readFileSync(path.join(PROFILE_FIXTURES, profile, `${name}.json`), 'utf8'));
}

/** A fixture as a client would send it: without the id it has in the pack's examples. */
export function instance(profile: string, name: string): any {
  const resource = structuredClone(fixture(profile, name)) as any;
  delete resource.id;
  return resource;
}

export function fixtureNames(profile: string): string[] {
  return fs
    .readdirSync(path.join(PROFILE_FIXTURES, profile))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5))
    .sort();
}
