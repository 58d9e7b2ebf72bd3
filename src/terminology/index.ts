/**
 * The terminology module: services.terminology (binding checks for validation, value set
 * expansion for search) and the terminology operations, over the built-in R4 and profile
 * pack content and the CodeSystem, ValueSet, ConceptMap and NamingSystem resources clients
 * store. See resolver.ts for what is cached and stored.ts for how caches follow writes.
 */
import type { ServerModule } from '../services';
import { builtinCatalog } from './builtin';
import { terminologyCapabilities } from './capabilities';
import { codeSystemOperations } from './operations/code-system';
import { conceptMapOperations } from './operations/concept-map';
import { valueSetOperations } from './operations/value-set';
import { Terminology } from './resolver';
import { TerminologyServiceImpl } from './service';
import { generationHook, StoredTerminology } from './stored';

export const terminologyModule: ServerModule = {
  name: 'terminology',
  install(services) {
    const { config } = services;
    const terminology = new Terminology(() => builtinCatalog(config.profilesDir), new StoredTerminology(services), config.terminologyMaxExpansion);
    services.terminology = new TerminologyServiceImpl(terminology);
    services.writeHooks.push(generationHook);
    services.terminologyCapabilities = (software) => terminologyCapabilities(terminology.builtin, config, software);
    for (const operation of [...codeSystemOperations(terminology), ...valueSetOperations(terminology), ...conceptMapOperations(terminology)]) {
      services.operations.register(operation);
    }
  },
};
