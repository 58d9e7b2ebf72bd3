/**
 * The composition root: builds the services every request uses, installs each module's
 * implementation, and starts or stops an HTTP server around them. main.ts adds the
 * process concerns (embedded database, cluster workers, signals); tests call startServer.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config';
import { openAuthenticator } from './access/open-access';
import { loadDefinitions } from './fhir/definitions';
import { errors } from './fhir/outcome';
import { registerMetaOperations } from './fhir/operations/meta';
import { OperationRegistry } from './fhir/operations/registry';
import { createApp, type RouterFactory } from './http/app';
import { answerClientError, answerConnect, answerExpectation } from './http/client-error';
import { MODULES } from './modules';
import { logger } from './logger';
import type { Services } from './services';
import type { KeyStore } from './keys/keystore';
import { Database } from './store/database';
import { Repository } from './store/repository';
import { usePreparedStatements } from './store/sql';
import { baseValidator } from './validation/base-validator';

/** Until the terminology module is installed, no code can be decided. */
const unknownTerminology: Services['terminology'] = {
  validateCode: async (url) => ({ result: false, unknown: true, message: `Value set ${url} is not known` }),
  validateCodeInSystem: async (code) => ({ result: false, unknown: true, message: `Code system ${code.system} is not known` }),
  expandCodes: async () => undefined,
  checker: () => unknownTerminology,
};

/** Connections of the lookup pool (services.lookupDb) per process. */
const LOOKUP_POOL_SIZE = 2;

export function createServices(config: Config, db: Database): Services {
  loadDefinitions();
  const lookupDb = new Database(config.databaseUrl ?? '', LOOKUP_POOL_SIZE, config.dbPoolIdleTimeout * 1000);
  const services: Services = {
    config,
    db,
    lookupDb,
    repo: undefined as unknown as Repository,
    indexer: { index: async () => undefined },
    validator: undefined as unknown as Services['validator'],
    search: {
      search: async () => {
        throw errors.notSupported('Search is not installed');
      },
      match: async () => {
        throw errors.notSupported('Search is not installed');
      },
      capability: () => ({ searchParam: [], searchInclude: [], searchRevInclude: [] }),
      criteriaFilter: () => {
        throw errors.notSupported('Search is not installed');
      },
    },
    operations: new OperationRegistry(),
    terminology: unknownTerminology,
    keys: undefined as unknown as KeyStore,
    writeHooks: [],
    authenticator: openAuthenticator,
    accessRules: [],
    audit: { write: async () => undefined },
    immutableTypes: new Set(),
    capabilityContributors: [],
    onClose: [() => lookupDb.close()],
  };
  services.repo = new Repository(services);
  services.validator = baseValidator(config, () => services.terminology);
  registerMetaOperations(services.operations);
  return services;
}

export interface RunningServer {
  services: Services;
  server: http.Server;
  /** The FHIR base URL the server answers on. */
  baseUrl: string;
  close(): Promise<void>;
}

/**
 * Starts the HTTP server on config.port (0 picks a free port; the base URL then follows the
 * port actually bound, unless BASE_URL was given explicitly).
 */
export async function startServer(config: Config, options: { explicitBaseUrl?: boolean } = {}): Promise<RunningServer> {
  if (!config.databaseUrl) {
    throw new Error('startServer needs config.databaseUrl (main.ts starts the embedded database)');
  }
  usePreparedStatements(config.dbPreparedStatements);
  const db = new Database(config.databaseUrl, config.dbPoolSize, config.dbPoolIdleTimeout * 1000);
  // The port must be bound before the services exist (port 0 decides the base URL), but
  // modules install asynchronously: requests that arrive meanwhile (a cluster worker gets
  // connections as soon as it listens) wait for the app instead of hanging unanswered.
  let resolveApp!: (app: http.RequestListener) => void;
  const appReady = new Promise<http.RequestListener>((resolve) => (resolveApp = resolve));
  const server = http.createServer((req, res) => void appReady.then((app) => app(req, res)));
  server.on('clientError', answerClientError);
  server.on('connect', answerConnect);
  server.on('checkExpectation', answerExpectation);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const effective: Config =
    config.port === 0 && !options.explicitBaseUrl
      ? { ...config, port, baseUrl: config.baseUrl.replace(/:0(\/|$)/, `:${port}$1`) }
      : config;
  const services = createServices(effective, db);
  const routers: RouterFactory[] = [];
  try {
    for (const module of MODULES) {
      routers.push(...((await module.install(services)) ?? []));
    }
    for (const module of MODULES) {
      await module.start?.(services);
    }
  } catch (err) {
    // A module that cannot start (a configuration error) must not leave a port or pool open.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    for (const close of services.onClose) await close().catch(() => undefined);
    await db.close();
    throw err;
  }
  resolveApp(createApp(services, routers));
  // Keep-alive longer than typical load balancer idle timeouts.
  server.keepAliveTimeout = 65_000;
  logger.info('listening', { port, baseUrl: effective.baseUrl });
  return {
    services,
    server,
    baseUrl: effective.baseUrl,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      for (const close of services.onClose) {
        await close();
      }
      await db.close();
    },
  };
}
