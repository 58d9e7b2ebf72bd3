/**
 * The plain values that travel from the HTTP layer through interactions to storage:
 * who is asking (Principal), what they may do (AccessPolicy), the request itself
 * (FhirRequest) and what comes back (FhirResponse).
 */
import type { OperationOutcome, Resource } from '@medplum/fhirtypes';
import type { Config } from '../config';
import type { Sql } from '../store/sql';
import type { WriteTx } from '../store/write-tx';
import type { Services } from '../services';

/** The authenticated caller, as the auth layer established it. */
export interface Principal {
  kind: 'anonymous' | 'user' | 'client' | 'system';
  clientId?: string;
  userId?: string;
  /** Reference to the user's FHIR resource: "Practitioner/123", "Patient/456". */
  fhirUser?: string;
  /** Id of the Organization the user or client acts for. */
  organization?: string;
  scopes: string[];
  /** Launch context. */
  patient?: string;
  encounter?: string;
  /** Purpose of use codes (v3 ActReason), from the token or the request. */
  purposeOfUse?: string[];
  /** Id of the access token (jti), for audit. */
  tokenId?: string;
}

export type Interaction =
  | 'read'
  | 'vread'
  | 'search'
  | 'history'
  | 'create'
  | 'update'
  | 'patch'
  | 'delete'
  | 'operation';

/** What access control needs of a stored row (resource or resource_version). */
export interface RowAccessInfo {
  resourceType: string;
  id: string;
  compartments: string[];
  custodian?: string;
}

/**
 * The one place that decides access. Implemented by the access module; interactions and
 * search call it, and never decide access themselves.
 */
export interface AccessPolicy {
  /** Throws FhirError 403 when the caller may never do `interaction` on resources of this type. */
  assertInteraction(interaction: Interaction, resourceType: string, operation?: string): void;
  /**
   * A SQL condition over the table alias `r` (resource or resource_version row: resource_type,
   * compartments, custodian, content) that keeps only what the caller may see, or undefined
   * when everything is visible. resourceType is undefined for system-level queries over all
   * types. Search, history, _include and reads all use it.
   */
  readFilter(resourceType: string | undefined): Sql | undefined;
  /** Throws FhirError 403 when the caller may not write this content (or change this stored row). */
  assertWrite(interaction: Interaction, resource: Resource | undefined, stored: RowAccessInfo | undefined): void;
}

export interface Prefer {
  return?: 'minimal' | 'representation' | 'OperationOutcome';
  handling?: 'strict' | 'lenient';
}

export interface RequestContext {
  requestId: string;
  /** Public base URL of the FHIR endpoint, no trailing slash. */
  baseUrl: string;
  config: Config;
  services: Services;
  principal: Principal;
  access: AccessPolicy;
  prefer: Prefer;
  remoteAddress?: string;
  /** Set while a transaction Bundle runs: every interaction joins this database transaction. */
  tx?: WriteTx;
  /** Events for the audit trail, written before the response leaves. */
  audit: AuditRecord[];
}

/**
 * Security events of the authorization server: a user's login or logout, and a token issued
 * or refused (token endpoint, or a bearer token the FHIR endpoint did not accept).
 */
export type SecurityEvent = 'login' | 'logout' | 'token';

/** One interaction as the audit trail sees it (the audit module turns it into an AuditEvent). */
export interface AuditRecord {
  interaction: Interaction | 'batch' | 'transaction' | 'capabilities' | SecurityEvent;
  operation?: string;
  resourceType?: string;
  id?: string;
  versionId?: string;
  /** Patients concerned, as ids. */
  patients?: string[];
  /** Query string of a search. */
  query?: string;
  /** HTTP status of the outcome. */
  status: number;
  outcomeText?: string;
  method: string;
  url: string;
  /** The compartment of a compartment search (GET /Patient/1/Observation). */
  compartment?: { resourceType: string; id: string };
  /** The response body (resource, Bundle or OperationOutcome); not stored, read by the audit module. */
  response?: Resource;
  /** The resource read or written and the patients concerned, when the interaction knows them. */
  audited?: FhirResponse['audited'];
}

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A FHIR interaction request, from HTTP or from a Bundle entry. */
export interface FhirRequest {
  method: HttpMethod;
  /** Path below the base URL, no leading slash: "Patient/1/_history/2", "", "Patient/$validate". */
  path: string;
  /** Query parameters in order; repetition is meaningful (AND in search). */
  params: [string, string][];
  body?: unknown;
  /** Media type of the body without parameters, e.g. "application/json-patch+json". */
  contentType?: string;
  ifMatch?: string;
  ifNoneMatch?: string;
  ifNoneExist?: string;
  ifModifiedSince?: string;
  /** The full URL as received, for Bundle.link self and the audit trail. */
  url: string;
  /** For a create inside a transaction: the id the server already chose (so references could be rewritten). */
  assignedId?: string;
  /** For an entry of a batch or transaction Bundle: its index in Bundle.entry (entries run in FHIR's order, not theirs). */
  entry?: number;
  /**
   * A Provenance the client sent with this write: the X-Provenance header (parsed JSON), or a
   * Provenance entry of the same transaction Bundle that targets this entry. The provenance
   * module verifies its signatures and completes it into the Provenance of the write.
   */
  provenance?: ClientProvenance;
}

export interface ClientProvenance {
  /** The parsed JSON, as sent (not yet checked to be a Provenance). */
  resource: unknown;
  /** Where it came from, for error messages: "X-Provenance header", "Bundle.entry[3]". */
  source: string;
  /** The id the stored Provenance takes (a transaction entry's, so that its response can name it). */
  id?: string;
}

export interface FhirResponse {
  status: number;
  /** The body: a resource, a Bundle, or an OperationOutcome. */
  resource?: Resource;
  /** An outcome to report (warnings; Prefer: return=OperationOutcome). */
  outcome?: OperationOutcome;
  location?: string;
  /** The version id; rendered as ETag W/"<versionId>". */
  versionId?: string;
  lastModified?: string;
  headers?: Record<string, string>;
  /** What the audit trail records as the subject of the interaction, whatever the body carries. */
  audited?: { resource?: Resource; patients?: string[] };
}
