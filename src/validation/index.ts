/**
 * The validation module: services.validator for every create, update and patch (and each
 * entry of a batch or transaction), the $validate operation, the profile pack stored and
 * served at start-up, REQUIRED_PROFILES, and the pack's profiles in the CapabilityStatement.
 * See validator.ts for what is checked and profiles.ts for where profiles come from.
 */
import { logger } from '../logger';
import type { PackResource } from '../fhir/profile-folder';
import type { ServerModule, Services } from '../services';
import { validateOperation } from './operation';
import { packProfilesByType, profileContributor, readPack, storePack } from './pack';
import { ProfileRegistry } from './profiles';
import { packGuides, resolveRequiredProfiles } from './required';
import { profileGenerationHook, StoredProfiles } from './stored';
import { Validator } from './validator';

/** The pack read at install, until start() has stored it (after every write hook is installed). */
const packs = new WeakMap<Services, PackResource[]>();

export const validationModule: ServerModule = {
  name: 'validation',
  async install(services) {
    const { config } = services;
    const pack = readPack(config.profilesDir);
    const registry = new ProfileRegistry(config.profilesDir, new StoredProfiles(services), pack);
    // Resolved before anything is written: a REQUIRED_PROFILES typo stops the start-up.
    const required = await resolveRequiredProfiles(config.requiredProfiles, registry, packGuides(pack));
    const validator = new Validator(registry, () => services.terminology, required);
    services.validator = validator;
    services.writeHooks.push(profileGenerationHook);
    services.operations.register(validateOperation(validator));
    services.capabilityContributors.push(profileContributor(packProfilesByType(registry.pack.values()), required));
    if (required.size) {
      logger.info('required profiles', Object.fromEntries(required));
    }
    packs.set(services, pack);
  },
  async start(services) {
    // The server's own OperationDefinitions are stored with the pack (operations are all
    // registered by now: every module installs before any starts).
    const operationDefinitions = services.operations
      .list()
      .flatMap((op) => (op.operationDefinition ? [{ resource: op.operationDefinition, file: `operation $${op.name}` }] : []));
    const stored = await storePack(services, [...(packs.get(services) ?? []), ...operationDefinitions]);
    packs.delete(services);
    if (stored.written.length || stored.unchanged) {
      logger.info('profile pack stored', { written: stored.written.length, unchanged: stored.unchanged });
    }
  },
};
