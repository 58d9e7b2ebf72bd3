/**
 * Every setting the server reads, from the environment, once.
 * Each variable here is documented in the README's configuration table; keep the two in step.
 */
import os from 'node:os';
import path from 'node:path';

export interface Config {
  /** TCP port the HTTP server listens on. */
  port: number;
  /** Interface to bind. */
  host: string;
  /** Public base URL of the FHIR endpoint, without a trailing slash (e.g. http://localhost:8080/fhir). */
  baseUrl: string;
  /** PostgreSQL connection string; when absent an embedded PostgreSQL is started in dataDir. */
  databaseUrl?: string;
  /** Refuse to start without databaseUrl (production images never fall back to the embedded database). */
  requireDatabaseUrl: boolean;
  /** Folder for the embedded PostgreSQL cluster (and other local state). */
  dataDir: string;
  /** Maximum connections in the pg pool of each worker. */
  dbPoolSize: number;
  /** Seconds an idle pooled connection stays open; 0 keeps it until the server stops. */
  dbPoolIdleTimeout: number;
  /** Run the hot fixed-shape statements (read by id, vread, ...) as named prepared statements; off for poolers that cannot keep them. */
  dbPreparedStatements: boolean;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
  /** Number of HTTP worker processes (Node cluster); 1 runs everything in one process. */
  workers: number;
  /** Search page size when the client gives no _count, and the largest _count honoured. */
  defaultPageSize: number;
  maxPageSize: number;
  /** Record an AuditEvent for every interaction (turn off only to measure its cost). */
  auditEnabled: boolean;
  /** Minimum level of log lines written to stdout. */
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Folder of the national profile pack (StructureDefinitions, CodeSystems, ValueSets, ...). */
  profilesDir: string;
  /** Largest ValueSet expansion computed; larger ones are refused with too-costly. */
  terminologyMaxExpansion: number;
  /** Number of Provenance hash chains: writes of different patients rarely share (and wait for) one. */
  provenanceChains: number;
  /**
   * REQUIRED_PROFILES: profiles every resource of their type must conform to, as StructureDefinition
   * URLs or ImplementationGuides of the pack (URL, id, packageId or name); see src/validation/required.ts.
   */
  requiredProfiles: string[];
  /** SMART authorization (src/auth); lifetimes in seconds. */
  auth: AuthConfig;
}

export interface AuthConfig {
  /** AUTH_DISABLED=true: no token needed, everyone may do everything (local experiments only). */
  disabled: boolean;
  accessTokenLifetime: number;
  refreshTokenLifetime: number;
  codeLifetime: number;
  sessionLifetime: number;
  /** How long a process trusts its answer to "is this token revoked?" before asking the database again. */
  revocationCacheSeconds: number;
}

/**
 * Connections per process when PostgreSQL runs on this machine (the embedded database): the
 * PostgreSQL wiki's rule of about two per core in all, shared by the WORKERS processes. More
 * backends than that only take turns on the same cores: on 2 cores with 2 workers, pools of 3
 * instead of 10 gave 15-25% more reads and 5-8% more ingest for less PostgreSQL CPU.
 */
export function localPoolSize(workers: number, cores = os.cpus().length): number {
  return Math.max(2, Math.ceil((2 * cores + 1) / Math.max(1, workers)));
}

function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  }
  return value;
}

/** Parses sizes such as "16mb", "512kb" or a plain byte count. */
export function parseByteSize(raw: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(raw);
  if (!match) {
    throw new Error(`Invalid byte size "${raw}"`);
  }
  const unit = (match[2] ?? 'b').toLowerCase();
  const factor = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[unit] as number;
  return Math.floor(Number(match[1]) * factor);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = intFromEnv(env, 'PORT', 8080);
  const baseUrl = (env.BASE_URL || `http://localhost:${port}/fhir`).replace(/\/+$/, '');
  const logLevel = (env.LOG_LEVEL ?? 'info') as Config['logLevel'];
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) {
    throw new Error(`LOG_LEVEL must be one of debug, info, warn, error; got "${logLevel}"`);
  }
  const workers = Math.max(1, intFromEnv(env, 'WORKERS', 1));
  return {
    port,
    host: env.HOST || '0.0.0.0',
    baseUrl,
    databaseUrl: env.DATABASE_URL || undefined,
    requireDatabaseUrl: env.REQUIRE_DATABASE_URL === 'true',
    dataDir: path.resolve(env.DATA_DIR || './data'),
    // A server of its own (DATABASE_URL) may have more cores than this machine, and the network between.
    dbPoolSize: intFromEnv(env, 'DB_POOL_SIZE', env.DATABASE_URL ? 10 : localPoolSize(workers)),
    dbPoolIdleTimeout: intFromEnv(env, 'DB_POOL_IDLE_TIMEOUT', 0),
    dbPreparedStatements: env.DB_PREPARED_STATEMENTS !== 'false',
    maxBodyBytes: parseByteSize(env.MAX_BODY_SIZE || '16mb'),
    workers,
    defaultPageSize: intFromEnv(env, 'DEFAULT_PAGE_SIZE', 20),
    maxPageSize: intFromEnv(env, 'MAX_PAGE_SIZE', 1000),
    auditEnabled: env.AUDIT_ENABLED !== 'false',
    logLevel,
    profilesDir: path.resolve(env.PROFILES_DIR || path.join(__dirname, '..', 'profiles')),
    terminologyMaxExpansion: Math.max(1, intFromEnv(env, 'TERMINOLOGY_MAX_EXPANSION', 10_000)),
    provenanceChains: Math.min(65536, Math.max(1, intFromEnv(env, 'PROVENANCE_CHAINS', 64))),
    requiredProfiles: (env.REQUIRED_PROFILES ?? '').split(/[\s,]+/).filter(Boolean),
    auth: {
      disabled: env.AUTH_DISABLED === 'true',
      accessTokenLifetime: intFromEnv(env, 'ACCESS_TOKEN_LIFETIME', 3600),
      refreshTokenLifetime: intFromEnv(env, 'REFRESH_TOKEN_LIFETIME', 30 * 86400),
      codeLifetime: intFromEnv(env, 'AUTH_CODE_LIFETIME', 60),
      sessionLifetime: intFromEnv(env, 'LOGIN_SESSION_LIFETIME', 8 * 3600),
      revocationCacheSeconds: intFromEnv(env, 'REVOCATION_CACHE_SECONDS', 5),
    },
  };
}

/** The path part of the base URL ("/fhir"), where the FHIR API is mounted. */
export function basePath(config: Pick<Config, 'baseUrl'>): string {
  const pathname = new URL(config.baseUrl).pathname.replace(/\/+$/, '');
  return pathname || '/';
}
