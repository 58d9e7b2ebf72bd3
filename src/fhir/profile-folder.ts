/**
 * The one reader of the profile pack folder (PROFILES_DIR): every resource in the JSON files
 * under it, recursively, with the entries of Bundles unpacked. Terminology, search and
 * validation each take the resource types they need from it; the files are read afresh on
 * every call, so callers may change what they get.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { logger } from '../logger';

export interface PackResource {
  resource: Resource;
  /** The file it was read from, for log messages. */
  file: string;
}

function collect(json: unknown, file: string, into: PackResource[]): void {
  const resource = json as Resource | undefined;
  if (!resource || typeof resource !== 'object' || typeof resource.resourceType !== 'string') return;
  if (resource.resourceType === 'Bundle') {
    for (const entry of (resource as Bundle).entry ?? []) collect(entry.resource, file, into);
  } else {
    into.push({ resource, file });
  }
}

/** Every resource under dir, in a stable order (files sorted by name, depth first). */
export function readProfileFolder(dir: string, accept?: (resourceType: string) => boolean): PackResource[] {
  const found: PackResource[] = [];
  const visit = (folder: string) => {
    if (!fs.existsSync(folder)) return;
    for (const entry of fs.readdirSync(folder, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) visit(full);
      else if (entry.name.endsWith('.json')) {
        try {
          collect(JSON.parse(fs.readFileSync(full, 'utf8')), full, found);
        } catch (err) {
          logger.warn('unreadable JSON file in the profiles folder', { file: full, error: (err as Error).message });
        }
      }
    }
  };
  visit(path.resolve(dir));
  return accept ? found.filter((r) => accept(r.resource.resourceType)) : found;
}
