/**
 * The search module: indexes every write (in its transaction) and answers searches,
 * conditional interactions and Patient/$everything from the index tables.
 */
import type { ServerModule } from '../services';
import { invalidateCapabilityStatement } from '../fhir/capability';
import { getResourceTypeList } from '../fhir/definitions';
import { SqlSearchEngine } from './engine';
import { everythingOperation } from './everything';
import { SearchIndexer } from './indexer';
import { loadProfileSearchParameters, paramsOf } from './registry';
import { checkIndexState, searchParameterChangeHook, watchStoredSearchParameters } from './stored-params';

/** Two parameters must never share an index key; checked once at start-up. */
function assertDistinctKeys(): void {
  const seen = new Map<number, string>();
  for (const type of getResourceTypeList()) {
    for (const param of paramsOf(type).values()) {
      const name = `${type}.${param.code}`;
      const other = seen.get(param.key);
      if (other && other !== name) {
        throw new Error(`Search parameters ${other} and ${name} share the index key ${param.key}`);
      }
      seen.set(param.key, name);
    }
  }
}

export const searchModule: ServerModule = {
  name: 'search',
  async install(services) {
    loadProfileSearchParameters(services.config.profilesDir);
    assertDistinctKeys();
    services.search = new SqlSearchEngine(services.config.baseUrl);
    services.indexer = new SearchIndexer(services.config.baseUrl);
    services.operations.register(everythingOperation);
    services.writeHooks.push(searchParameterChangeHook);
    const stopWatching = await watchStoredSearchParameters(services.db, services.config.databaseUrl as string, () =>
      invalidateCapabilityStatement(services)
    );
    services.onClose.push(stopWatching);
    await checkIndexState(services.db);
  },
};
