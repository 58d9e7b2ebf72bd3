/**
 * The context for work the server does on its own authority (writing its audit trail,
 * loading conformance resources at start-up): a system principal that sees everything.
 * Never used for a client's request.
 */
import { randomUUID } from 'node:crypto';
import type { Services } from '../services';
import type { WriteTx } from '../store/write-tx';
import { openAccess } from '../access/open-access';
import type { RequestContext } from './context';

/**
 * A system context whose queries run on the lookup pool (services.lookupDb): for reads of
 * stored conformance content made on behalf of a request that may hold a write transaction.
 */
export function lookupContext(services: Services): RequestContext {
  return systemContext({ ...services, db: services.lookupDb }, undefined, 'lookup-' + randomUUID());
}

export function systemContext(services: Services, tx?: WriteTx, requestId = 'system-' + randomUUID()): RequestContext {
  return {
    requestId,
    baseUrl: services.config.baseUrl,
    config: services.config,
    services,
    principal: { kind: 'system', scopes: [] },
    access: openAccess,
    prefer: {},
    tx,
    audit: [],
  };
}
