/**
 * REQUIRED_PROFILES: the profiles every resource of a type must conform to. Each item of the
 * comma-separated list is
 *  - the canonical URL of a StructureDefinition (built in, in the pack, or stored): it applies
 *    to resources of its type; or
 *  - an ImplementationGuide in the profile pack, named by its canonical URL, id, packageId or
 *    name (`REQUIRED_PROFILES=national`): every ImplementationGuide.global entry (a type and
 *    the profile all resources of that type must conform to) applies. The word `national`
 *    names the pack's national guide: the one ImplementationGuide whose jurisdiction is a
 *    country (urn:iso:std:iso:3166), so the setting needs no knowledge of the pack's ids.
 * Anything that cannot be resolved stops the server at start-up: a typo must not silently
 * switch validation off.
 */
import type { ImplementationGuide } from '@medplum/fhirtypes';
import { isKnownResourceType } from '../fhir/definitions';
import type { PackResource } from '../fhir/profile-folder';
import type { ProfileRegistry } from './profiles';

/** The ImplementationGuides of the pack. */
export function packGuides(pack: PackResource[]): ImplementationGuide[] {
  return pack.filter((r) => r.resource.resourceType === 'ImplementationGuide').map((r) => r.resource as ImplementationGuide);
}

const COUNTRY_SYSTEM = 'urn:iso:std:iso:3166';

/** The pack's ImplementationGuide for a country; undefined when none or several claim one. */
function nationalGuide(guides: ImplementationGuide[]): ImplementationGuide | undefined {
  const national = guides.filter((ig) => ig.jurisdiction?.some((j) => j.coding?.some((c) => c.system === COUNTRY_SYSTEM && c.code)));
  return national.length === 1 ? national[0] : undefined;
}

function findGuide(token: string, guides: ImplementationGuide[]): ImplementationGuide | undefined {
  const lower = token.toLowerCase();
  if (lower === 'national') return nationalGuide(guides);
  return guides.find((ig) => ig.url === token || ig.id === token || ig.packageId === token || ig.name?.toLowerCase() === lower);
}

/** Resource type -> required profile URLs; throws with a clear message for anything unresolvable. */
export async function resolveRequiredProfiles(
  tokens: string[],
  registry: ProfileRegistry,
  guides: ImplementationGuide[]
): Promise<Map<string, string[]>> {
  const required = new Map<string, string[]>();
  const session = registry.session();
  const add = async (url: string, origin: string, expectedType?: string) => {
    const found = await registry.resolve(url, session);
    if (!found.profile) throw new Error(`REQUIRED_PROFILES: ${origin}: ${found.message}`);
    const type = found.profile.type;
    if (!isKnownResourceType(type)) throw new Error(`REQUIRED_PROFILES: ${origin}: ${url} is a profile of ${type}, not of a resource type`);
    if (expectedType && expectedType !== type) {
      throw new Error(`REQUIRED_PROFILES: ${origin} lists ${url} for ${expectedType}, but it is a profile of ${type}`);
    }
    const list = required.get(type) ?? [];
    if (!list.includes(url)) list.push(url);
    required.set(type, list);
  };
  for (const token of tokens) {
    const guide = findGuide(token, guides);
    if (guide) {
      const globals = (guide.global ?? []).filter((g) => g.type && g.profile);
      if (!globals.length) throw new Error(`REQUIRED_PROFILES: the ImplementationGuide ${token} has no global profiles (ImplementationGuide.global)`);
      for (const g of globals) await add(g.profile as string, `ImplementationGuide ${guide.url ?? guide.id}`, g.type);
      continue;
    }
    if (!/^[a-z][a-z0-9+.-]*:/i.test(token)) {
      throw new Error(`REQUIRED_PROFILES: "${token}" names no ImplementationGuide in the profile pack (by id, packageId or name; "national": the one guide with a country jurisdiction) and is not a canonical URL`);
    }
    await add(token, `"${token}"`);
  }
  return required;
}
