/**
 * References: the type a reference points to (from its URL, its "#id" contained target or
 * Reference.type) must be one the element allows (ElementDefinition.type.targetProfile), and
 * every contained resource must be referenced from its container (dom-3).
 *
 * A reference whose target type cannot be known (urn:uuid, a logical reference by identifier,
 * an absolute URL that does not end in Type/id) is not judged.
 */
import type { Resource } from '@medplum/fhirtypes';
import { isKnownResourceType } from '../fhir/definitions';
import { referenceTarget } from '../fhir/references';
import type { ElementNode } from './compile';
import { HL7_SD } from './profiles';
import type { Frame, Walk } from './walker';

/** The resource types an element's Reference may point to; undefined when any (or unknown). */
async function allowedTargets(walk: Walk, el: ElementNode): Promise<Set<string> | undefined> {
  const key = 'targets';
  if (el.cache.has(key)) return el.cache.get(key) as Set<string> | undefined;
  const profiles = el.types.filter((t) => t.code === 'Reference').flatMap((t) => t.targetProfiles);
  let allowed: Set<string> | undefined = new Set();
  let cacheable = true;
  for (const url of profiles) {
    const type = url.startsWith(HL7_SD) ? url.slice(HL7_SD.length) : undefined;
    if (type === 'Resource' || type === 'DomainResource') {
      allowed = undefined;
      break;
    }
    if (type && isKnownResourceType(type)) {
      allowed.add(type);
      continue;
    }
    const found = walk.registry.builtin(url) ?? (await walk.registry.resolve(url, walk.session));
    if (!found.builtin) cacheable = false;
    if (!found.profile) {
      // A target profile that is not known here: the target cannot be judged.
      allowed = undefined;
      break;
    }
    allowed.add(found.profile.type);
  }
  if (allowed && !allowed.size) allowed = undefined;
  if (cacheable) el.cache.set(key, allowed);
  return allowed;
}

export async function checkReference(walk: Walk, el: ElementNode, value: Record<string, unknown>, path: string, frame: Frame): Promise<void> {
  const reference = value.reference;
  const declared = typeof value.type === 'string' ? value.type : undefined;
  let targetType: string | undefined;
  if (typeof reference === 'string') {
    if (reference.startsWith('#')) {
      if (reference === '#') {
        targetType = frame.container.resourceType;
      } else {
        const id = reference.slice(1);
        const contained = ((frame.container as { contained?: Resource[] }).contained ?? []).find((r) => r?.id === id);
        if (!contained) {
          walk.report('error', 'not-found', `The reference "${reference}" names no contained resource`, `${path}.reference`);
          return;
        }
        targetType = contained.resourceType;
      }
    } else {
      targetType = referenceTarget(reference)?.type;
    }
  }
  if (declared) {
    const declaredType = declared.startsWith(HL7_SD) ? declared.slice(HL7_SD.length) : declared;
    if (targetType && declaredType !== targetType) {
      walk.report('error', 'structure', `Reference.type says ${declared}, but the reference points to a ${targetType}`, `${path}.type`);
      return;
    }
    if (isKnownResourceType(declaredType)) targetType ??= declaredType;
  }
  if (!targetType) return;
  const allowed = await allowedTargets(walk, el);
  if (allowed && !allowed.has(targetType)) {
    walk.report(
      'error',
      'structure',
      `${el.path} may refer to ${[...allowed].sort().join(', ')}, not to ${targetType} (${typeof reference === 'string' ? reference : declared})`,
      path
    );
  }
}

/** Every string anywhere in a value that starts with "#" (references, canonicals, uris). */
function localReferences(value: unknown, into: Set<string>): void {
  if (typeof value === 'string') {
    if (value.startsWith('#')) into.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) localReferences(v, into);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) localReferences(v, into);
  }
}

/** Ids of contained resources nothing in the resource refers to, and which do not refer to it (dom-3). */
export function uncitedContained(resource: Resource): string[] {
  const contained = (resource as { contained?: Resource[] }).contained;
  if (!Array.isArray(contained) || !contained.length) return [];
  const cited = new Set<string>();
  const { contained: _, ...rest } = resource as Resource & { contained?: unknown };
  localReferences(rest, cited);
  const own = contained.map((r) => {
    const refs = new Set<string>();
    localReferences(r, refs);
    return refs;
  });
  own.forEach((refs) => refs.forEach((r) => cited.add(r)));
  return contained
    .map((r, i) => ({ id: r?.id, refs: own[i] }))
    .filter(({ id, refs }) => typeof id === 'string' && !cited.has('#' + id) && !refs.has('#'))
    .map(({ id }) => id as string);
}
