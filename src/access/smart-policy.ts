/**
 * The access decision for a SMART token: what its scopes permit, confined by context.
 *
 * - `system/` scopes: everything of the named types the client was granted.
 * - `patient/` scopes: the launch patient's compartment (`r.compartments @> ARRAY[patient]`);
 *   of types outside the Patient compartment only directory and conformance resources
 *   (practitioners, organizations, medications, value sets, ...) can be read, never written.
 * - `user/` scopes: a patient user is confined like `patient/` to their own record; a
 *   practitioner user sees what the scopes name (the organization's whole record, as in an EHR)
 *   and access rules (Consent) narrow that further.
 * - v2 granular restrictions (`?category=laboratory`) become search criteria in the SQL filter
 *   (reads) and are matched against the new content (writes).
 *
 * Interactions need: read, vread, history: r; search: s; create: c; update, patch: u
 * (update that creates: c); delete: d; operations: r, or u when they change state; $expunge
 * also the admin scope. Reads are filtered by the union of the scopes that carry r or s.
 */
import { matchesSearchRequest, parseSearchRequest } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import type { AccessPolicy, Interaction, Principal, RowAccessInfo } from '../fhir/context';
import { patientCompartments } from '../fhir/compartments';
import { getResourceTypeList, patientCompartmentParams } from '../fhir/definitions';
import { errors } from '../fhir/outcome';
import type { Services } from '../services';
import { sql, type Sql } from '../store/sql';
import { ADMIN_SCOPE, type Permission, parseResourceScopes, type ResourceScope } from './scopes';

/** Types outside the Patient compartment that patient-confined callers may read: no patient's data. */
const DIRECTORY_TYPES = [
  'Practitioner', 'PractitionerRole', 'Organization', 'OrganizationAffiliation', 'Location', 'HealthcareService',
  'Endpoint', 'Medication', 'MedicationKnowledge', 'Substance', 'CodeSystem', 'ValueSet', 'ConceptMap',
  'NamingSystem', 'StructureDefinition', 'SearchParameter', 'OperationDefinition', 'CapabilityStatement',
  'ImplementationGuide', 'Questionnaire', 'PlanDefinition', 'ActivityDefinition', 'Library', 'Measure',
  'ObservationDefinition', 'SpecimenDefinition',
];
const DIRECTORY = new Set(DIRECTORY_TYPES);

export function inPatientCompartment(resourceType: string): boolean {
  return resourceType === 'Patient' || patientCompartmentParams(resourceType).length > 0;
}

let compartmentTypeList: string[] | undefined;
function compartmentTypes(): string[] {
  compartmentTypeList ??= getResourceTypeList().filter(inPatientCompartment);
  return compartmentTypeList;
}

/** Whether compartments name the patient and no other patient. */
function onlyIn(compartments: readonly string[], patient: string): boolean {
  return compartments.length > 0 && compartments.every((id) => id === patient);
}

const NEED: Record<Exclude<Interaction, 'operation'>, Permission> = {
  read: 'r',
  vread: 'r',
  history: 'r',
  search: 's',
  create: 'c',
  update: 'u',
  patch: 'u',
  delete: 'd',
};

export class SmartAccessPolicy implements AccessPolicy {
  private readonly scopes: ResourceScope[];
  private readonly filters = new Map<string, Sql | undefined>();

  constructor(
    private readonly principal: Principal,
    private readonly services: Pick<Services, 'search' | 'operations' | 'accessRules' | 'config'>
  ) {
    this.scopes = parseResourceScopes(principal.scopes);
  }

  /**
   * Every refusal of this policy is the token's scopes falling short: RFC 6750 §3 asks for
   * WWW-Authenticate with error="insufficient_scope" on such a 403.
   */
  private insufficientScope(message: string) {
    const realm = `Bearer realm="${this.services.config.baseUrl}"`;
    return errors.insufficientScope(message, `${realm}, error="insufficient_scope", error_description="${message.replace(/["\\]/g, "'")}"`);
  }

  /** The patient a scope confines its holder to; null: none (unrestricted); undefined: confined to nobody. */
  private confinement(scope: ResourceScope): string | null | undefined {
    if (scope.context === 'system') return null;
    if (scope.context === 'patient') return this.principal.patient;
    const user = this.principal.fhirUser ?? '';
    return user.startsWith('Patient/') ? user.slice('Patient/'.length) : null;
  }

  private scopesFor(resourceType: string, permission: Permission): ResourceScope[] {
    return this.scopes.filter(
      (s) => (resourceType === '*' || s.resourceType === '*' || s.resourceType === resourceType) && s.permissions.has(permission)
    );
  }

  assertInteraction(interaction: Interaction, resourceType: string, operation?: string): void {
    let need: Permission;
    if (interaction === 'operation') {
      const op = this.services.operations.list().find((o) => o.name === operation);
      need = op?.affectsState ? 'u' : 'r';
      if (operation === 'expunge') {
        need = 'd';
        if (!this.principal.scopes.includes(ADMIN_SCOPE)) {
          throw this.insufficientScope('$expunge needs the admin scope');
        }
      }
    } else {
      need = NEED[interaction];
    }
    if (this.scopesFor(resourceType, need).length === 0) {
      const what = interaction === 'operation' ? `$${operation}` : interaction;
      throw this.insufficientScope(
        `The access token's scopes do not permit ${what} on ${resourceType === '*' ? 'any resource type' : resourceType} (needs "${need}")`
      );
    }
  }

  readFilter(resourceType: string | undefined): Sql | undefined {
    const key = resourceType ?? '*';
    if (!this.filters.has(key)) {
      this.filters.set(key, this.buildReadFilter(resourceType));
    }
    return this.filters.get(key);
  }

  private buildReadFilter(resourceType: string | undefined): Sql | undefined {
    const readable = this.scopes.filter(
      (s) => (s.permissions.has('r') || s.permissions.has('s')) && (!resourceType || s.resourceType === '*' || s.resourceType === resourceType)
    );
    const alternatives: Sql[] = [];
    let unrestricted = false;
    for (const scope of readable) {
      const condition = this.scopeCondition(scope, resourceType);
      if (condition === undefined) {
        unrestricted = true;
        break;
      }
      alternatives.push(condition);
    }
    const parts: Sql[] = [];
    if (!unrestricted) parts.push(sql.or(alternatives));
    for (const rule of this.services.accessRules) {
      const extra = rule.readFilter?.(this.principal, resourceType);
      if (extra) parts.push(sql`(${extra})`);
    }
    return parts.length ? sql.and(parts) : undefined;
  }

  /** The rows one scope lets its holder see; undefined when it restricts nothing. */
  private scopeCondition(scope: ResourceScope, resourceType: string | undefined): Sql | undefined {
    const conditions: Sql[] = [];
    // Over all types, a scope of one type admits only rows of that type.
    if (!resourceType && scope.resourceType !== '*') conditions.push(sql`r.resource_type = ${scope.resourceType}`);
    const type = scope.resourceType !== '*' ? scope.resourceType : resourceType;
    const patient = this.confinement(scope);
    if (patient === undefined) return sql`FALSE`;
    if (patient !== null) {
      if (type) {
        if (inPatientCompartment(type)) {
          conditions.push(sql`r.compartments @> ARRAY[${patient}]::text[]`);
        } else if (!DIRECTORY.has(type)) {
          return sql`FALSE`;
        }
      } else {
        conditions.push(
          sql`((r.compartments @> ARRAY[${patient}]::text[] AND r.resource_type = ANY(${compartmentTypes()}::text[]))
               OR r.resource_type = ANY(${DIRECTORY_TYPES}::text[]))`
        );
      }
    }
    if (scope.query) conditions.push(this.services.search.criteriaFilter(scope.resourceType, scope.query));
    return conditions.length ? sql.and(conditions) : undefined;
  }

  assertWrite(interaction: Interaction, resource: Resource | undefined, stored: RowAccessInfo | undefined): void {
    const resourceType = resource?.resourceType ?? stored?.resourceType ?? '*';
    let need: Permission = interaction === 'operation' ? 'u' : NEED[interaction];
    if (interaction === 'update' && !stored) need = 'c';
    const allowed = this.scopesFor(resourceType, need).some((scope) => this.permitsWrite(scope, resourceType, resource, stored));
    if (!allowed) {
      const target = stored ? `${stored.resourceType}/${stored.id}` : resourceType;
      throw this.insufficientScope(`The access token's scopes do not permit ${interaction} of ${target} (needs "${need}" within its context)`);
    }
    for (const rule of this.services.accessRules) {
      rule.assertWrite?.(this.principal, interaction, resource, stored);
    }
  }

  private permitsWrite(scope: ResourceScope, resourceType: string, resource: Resource | undefined, stored: RowAccessInfo | undefined): boolean {
    const patient = this.confinement(scope);
    if (patient === undefined) return false;
    if (patient !== null) {
      if (!inPatientCompartment(resourceType)) return false;
      // patient/ scopes grant access to one patient's data only (SMART App Launch 2.x, Scopes):
      // the version replaced or deleted, and the content written, must each belong to that
      // patient's compartment and to no other patient's, or the write would change (or put
      // data into) another patient's record.
      if (stored && !onlyIn(stored.compartments, patient)) return false;
      if (resource && !onlyIn(patientCompartments(resource, this.services.config.baseUrl), patient)) return false;
    }
    if (scope.query) {
      // The restriction is checked on the content written; a delete has none to check.
      if (!resource) return false;
      const query: Record<string, string[]> = {};
      for (const [name, value] of scope.query) (query[name] ??= []).push(value);
      return matchesSearchRequest(resource, parseSearchRequest(resourceType, query));
    }
    return true;
  }
}
