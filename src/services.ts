/**
 * The parts of the server and the seams between them. Each module (search, validation,
 * terminology, auth, audit, provenance) installs its implementation here at start-up
 * (see server.ts); interactions only ever talk to these interfaces.
 */
import type {
  Bundle,
  CapabilityStatement,
  CapabilityStatementRestResourceSearchParam,
  OperationOutcomeIssue,
  Resource,
  TerminologyCapabilities,
} from '@medplum/fhirtypes';
import type { PoolClient } from 'pg';
import type { Request } from 'express';
import type { AccessRule } from './access/rules';
import type { Config } from './config';
import type { AccessPolicy, AuditRecord, FhirRequest, FhirResponse, Principal, RequestContext } from './fhir/context';
import type { OperationRegistry } from './fhir/operations/registry';
import type { KeyStore } from './keys/keystore';
import type { Database } from './store/database';
import type { Repository } from './store/repository';
import type { Sql } from './store/sql';
import type { WriteTx } from './store/write-tx';

/** A resource whose search index rows must be (re)written; no resource means remove them. */
export interface IndexItem {
  rid: string;
  resourceType: string;
  resource?: Resource;
  /** True when the resource has never been indexed (nothing to delete first). */
  isNew: boolean;
}

export interface ResourceIndexer {
  /** Writes the index rows of a batch of resources, inside the caller's transaction. */
  index(client: PoolClient, items: IndexItem[]): Promise<void>;
  /**
   * The data-modifying statements index() would run, for a caller that sends them together
   * with its own writes in one statement (as WITH parts), saving round trips.
   */
  statements?(items: IndexItem[]): Sql[];
}

export interface ValidationOptions {
  mode: 'create' | 'update' | 'delete';
  /** Canonical URLs of profiles to check in addition to meta.profile and the required ones. */
  profiles?: string[];
  /**
   * Validations given the same scope (the WriteTx of a transaction Bundle) see the stored
   * conformance resources as of one read of their generation counter, instead of one read each.
   */
  scope?: object;
}

export interface ResourceValidator {
  /** Every issue found; any issue of severity error or fatal means the resource is not stored. */
  validate(resource: Resource, options: ValidationOptions): Promise<OperationOutcomeIssue[]>;
}

/** A code to check, as found in a Coding (or a code with its system). */
export interface CodeToCheck {
  system?: string;
  code?: string;
  display?: string;
  version?: string;
}

export interface CodeCheck {
  /** True when the code is in the value set (or code system). */
  result: boolean;
  /** Why not, or a remark (wrong display); for OperationOutcome diagnostics. */
  message?: string;
  /** The display the code system gives the code, when known. */
  display?: string;
  /**
   * True when the answer could not be decided: the value set or code system is unknown here,
   * or needs an external terminology (SNOMED CT, LOINC) that is not loaded. Validation then
   * reports at most a warning, never an error.
   */
  unknown?: boolean;
}

/** Code checks that share one view of the stored terminology (see TerminologyService.checker). */
export type CodeChecker = Pick<TerminologyService, 'validateCode' | 'validateCodeInSystem'>;

/** Terminology answers that validation (bindings) and search (:in, :not-in, :below) need. */
export interface TerminologyService {
  /** Is the code in the value set (canonical URL, optionally |version)? */
  validateCode(valueSetUrl: string, code: CodeToCheck): Promise<CodeCheck>;
  /** Does the code exist in its code system (system required), and is the display right? */
  validateCodeInSystem(code: CodeToCheck): Promise<CodeCheck>;
  /** Every system|code of a value set's expansion, or undefined when it cannot be expanded here. */
  expandCodes(valueSetUrl: string): Promise<{ system: string; code: string }[] | undefined>;
  /**
   * For many checks in a row (the codes of one resource): they share one view of the stored
   * terminology, so it is looked up at most once however many codes are checked.
   */
  checker(scope?: object): CodeChecker;
}

export interface SearchRequest {
  /** Undefined for a system-level search. */
  resourceType?: string;
  params: [string, string][];
  /** Compartment search: GET /Patient/123/Observation. */
  compartment?: { resourceType: string; id: string };
  /** The request URL, for the Bundle's self link. */
  url: string;
}

/** What search supports for one resource type, as the CapabilityStatement states it. */
export interface SearchCapability {
  searchParam: CapabilityStatementRestResourceSearchParam[];
  searchInclude: string[];
  searchRevInclude: string[];
}

export interface SearchEngine {
  search(ctx: RequestContext, request: SearchRequest): Promise<Bundle>;
  /** The search parameters that work for a type (undefined type: system-level parameters). */
  capability(resourceType: string | undefined): SearchCapability;
  /** Resources matching search criteria, for conditional interactions; at most `limit`. */
  match(ctx: RequestContext, resourceType: string, params: [string, string][], limit: number): Promise<Resource[]>;
  /**
   * A SQL condition over the table alias `r` (a resource row) that holds when the row matches
   * the criteria, e.g. for granular SMART scopes (patient/Observation.rs?category=laboratory).
   */
  criteriaFilter(resourceType: string, params: [string, string][]): Sql;
}

/** What a write hook learns of a write. */
export interface WriteEvent {
  interaction: 'create' | 'update' | 'patch' | 'delete';
  /** The method history records for the version: POST (server-assigned id), PUT, PATCH or DELETE. */
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  resourceType: string;
  id: string;
  versionId: string;
  lastUpdated: string;
  /** The stored new version; undefined for a delete. */
  resource?: Resource;
  /** The version it replaces, if any. */
  previous?: Resource;
  /** The patient compartments of the row written (for a delete: of the version deleted). */
  compartments: string[];
  /** Headers of the request that caused the write (e.g. X-Provenance). */
  request?: FhirRequest;
  /** The server's own record (AuditEvent, Provenance), not a client's write. */
  internal?: boolean;
}

/**
 * Runs inside the write's database transaction. beforeWrite may refuse the write by
 * throwing a FhirError (retention, signatures); afterWrite adds records that must commit
 * with it (Provenance).
 */
export interface WriteHook {
  beforeWrite?(ctx: RequestContext, tx: WriteTx, event: WriteEvent): Promise<void>;
  afterWrite?(ctx: RequestContext, tx: WriteTx, event: WriteEvent): Promise<void>;
}

export interface Authenticator {
  /** Establishes who is calling; throws FhirError 401 for a missing or invalid credential. */
  authenticate(req: Request, config: Config): Promise<{ principal: Principal; access: AccessPolicy }>;
}

export interface AuditSink {
  /** Stores the records durably; resolves only once they are committed. */
  write(ctx: RequestContext, records: AuditRecord[]): Promise<void>;
}

export interface Services {
  config: Config;
  db: Database;
  /**
   * A small pool of its own for single reads of stored conformance content (the generation
   * counter, stored profiles and terminology) that validation makes while its request may
   * hold a write transaction: were they taken from `db`, transactions holding every
   * connection would wait forever for each other's lookups.
   */
  lookupDb: Database;
  repo: Repository;
  indexer: ResourceIndexer;
  validator: ResourceValidator;
  search: SearchEngine;
  operations: OperationRegistry;
  terminology: TerminologyService;
  /** The server's persistent signing keys (tokens, Provenance signatures). */
  keys: KeyStore;
  writeHooks: WriteHook[];
  authenticator: Authenticator;
  /** Rules that narrow what a caller's scopes permit (Consent, ...), composed by the access policy. */
  accessRules: AccessRule[];
  audit: AuditSink;
  /** Types whose resources can be created and read but never updated, patched or deleted (AuditEvent). */
  immutableTypes: Set<string>;
  /** Additions to the CapabilityStatement from modules (security, supported profiles). */
  capabilityContributors: ((statement: CapabilityStatement, config: Config) => void)[];
  /** GET /metadata?mode=terminology, from the terminology module; unset: that mode is refused (400). */
  terminologyCapabilities?: (software: { name: string; version: string }) => TerminologyCapabilities;
  /** Run before the server stops (close pools, flush queues). */
  onClose: (() => Promise<void>)[];
}

/**
 * A part of the server (search, validation, terminology, auth, audit, provenance). install()
 * puts its implementations into the services and returns the Express routers it serves
 * outside the FHIR endpoint (OAuth endpoints, login pages).
 */
export interface ServerModule {
  name: string;
  install(services: Services): Promise<ModuleRouter[] | void> | ModuleRouter[] | void;
  /**
   * Runs once every module is installed, before the first request is served: start-up work
   * that writes data, which must pass through every module's write hooks (Provenance, Consent).
   */
  start?(services: Services): Promise<void>;
}

export type ModuleRouter = (services: Services) => import('express').Router;

export type InteractionHandler = (ctx: RequestContext, req: FhirRequest) => Promise<FhirResponse>;
