/**
 * $validate (Resource-validate), type level `POST [type]/$validate` and instance level
 * `[type]/[id]/$validate`: the resource (the body, or the `resource` parameter of a
 * Parameters body) is checked exactly as a write would check it, and the answer is an
 * OperationOutcome with status 200 whether or not it is valid (a 4xx means the validation
 * itself could not be made). A valid resource gets one informational issue.
 *
 * - mode (create, update, delete, profile: the codes of resource-validation-mode): update,
 *   delete and profile only at instance level. update also checks that the id matches;
 *   delete ignores content and answers whether the stored resource may be deleted now
 *   (access, immutable types, legal retention); profile checks the stored resource against
 *   the `profile` parameter, which it needs ("The server checks an existing resource (must be
 *   nominated by id, not provided as a parameter) as valid against the nominated profile").
 * - profile: validated against it as well; a profile that cannot be used is an error.
 * - GET [type]/[id]/$validate validates the stored current version (after a profile
 *   changed, for instance).
 */
import type { OperationOutcomeIssue, Parameters, Resource } from '@medplum/fhirtypes';
import type { FhirRequest, FhirResponse, RequestContext } from '../fhir/context';
import { errors, FhirError, issue, outcome } from '../fhir/outcome';
import { inputValue, type Operation, type OperationTarget } from '../fhir/operations/registry';
import { assertRetentionEnded } from '../retention';
import type { Validator } from './validator';

export const VALIDATE_DEFINITION = 'http://hl7.org/fhir/OperationDefinition/Resource-validate';
/** http://hl7.org/fhir/ValueSet/resource-validation-mode (required binding of `mode`). */
const MODES = new Set(['create', 'update', 'delete', 'profile']);

function stringInput(input: Parameters, name: string): string | undefined {
  const value = inputValue(input, name);
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !value) throw errors.badRequest(`The parameter "${name}" must be a non-empty string`, name);
  return value;
}

function answer(issues: OperationOutcomeIssue[], success: string): FhirResponse {
  const list = issues.length ? issues : [issue('information', 'informational', success)];
  return { status: 200, resource: outcome(...list) };
}

/** Would a delete of the stored resource succeed now? */
async function validateDelete(ctx: RequestContext, resourceType: string, id: string): Promise<FhirResponse> {
  const { repo } = ctx.services;
  const current = await repo.read(ctx, resourceType, id);
  const issues: OperationOutcomeIssue[] = [];
  const refused = (err: unknown) => {
    if (!(err instanceof FhirError)) throw err;
    issues.push(...(err.outcome.issue ?? []));
  };
  if (ctx.services.immutableTypes.has(resourceType)) {
    issues.push(issue('error', 'not-supported', `${resourceType} resources cannot be deleted`, resourceType));
  }
  try {
    ctx.access.assertWrite('delete', undefined, {
      resourceType,
      id,
      compartments: current.compartments,
      custodian: current.custodian,
    });
  } catch (err) {
    refused(err);
  }
  try {
    await assertRetentionEnded(ctx, current.resource as Resource, 'deleted');
  } catch (err) {
    refused(err);
  }
  return answer(issues, `${resourceType}/${id} could be deleted`);
}

export function validateOperation(validator: Validator): Operation {
  return {
    name: 'validate',
    definition: VALIDATE_DEFINITION,
    type: true,
    instance: true,
    affectsState: false,
    async handler(ctx: RequestContext, req: FhirRequest, target: OperationTarget, input: Parameters): Promise<FhirResponse> {
      const resourceType = target.resourceType as string;
      const mode = stringInput(input, 'mode');
      if (mode !== undefined && !MODES.has(mode)) {
        throw errors.badRequest(`mode must be create, update, delete or profile, not "${mode}"`, 'mode');
      }
      if ((mode === 'update' || mode === 'delete' || mode === 'profile') && !target.id) {
        throw errors.badRequest(`mode=${mode} is only possible at instance level: ${resourceType}/[id]/$validate`, 'mode');
      }
      if (mode === 'delete') return validateDelete(ctx, resourceType, target.id as string);

      const profile = stringInput(input, 'profile');
      if (mode === 'profile') {
        if (!profile) throw errors.badRequest('mode=profile needs the profile to validate the resource against', 'profile');
        if (inputValue(input, 'resource') !== undefined) {
          throw errors.badRequest(`mode=profile validates the stored ${resourceType}/${target.id}: the resource must not be given as well`, 'resource');
        }
        const stored = (await ctx.services.repo.read(ctx, resourceType, target.id as string)).resource;
        if (!stored) throw errors.notFound(`${resourceType}/${target.id} has no current content to validate`);
        const issues = await validator.validate(stored, { mode: 'update', profiles: [profile] });
        return answer(issues, `${resourceType}/${target.id} is valid against ${profile}: no issues found`);
      }
      let resource = inputValue(input, 'resource') as Resource | undefined;
      // A Parameters resource posted to Parameters/$validate is the resource, not the input.
      if (!resource && resourceType === 'Parameters' && (req.body as Resource | undefined)?.resourceType === 'Parameters' && !input.parameter?.some((p) => p.name === 'mode' || p.name === 'profile')) {
        resource = req.body as Resource;
      }
      if (!resource && target.id && req.body === undefined) {
        resource = (await ctx.services.repo.read(ctx, resourceType, target.id)).resource;
      }
      if (!resource || typeof resource !== 'object' || Array.isArray(resource)) {
        throw errors.badRequest(`$validate needs a resource: the body, or the "resource" parameter of a Parameters body`, 'resource');
      }
      if (resource.resourceType !== resourceType) {
        throw errors.badRequest(`The resource is a ${String(resource.resourceType)}, but this is ${resourceType}/$validate`, 'resourceType');
      }
      const issues: OperationOutcomeIssue[] = [];
      if (mode === 'update') {
        if (resource.id !== target.id) {
          issues.push(issue('error', 'invalid', `An update of ${resourceType}/${target.id} needs a resource with id "${target.id}" (found ${resource.id ? `"${resource.id}"` : 'none'})`, `${resourceType}.id`));
        }
        if (ctx.services.immutableTypes.has(resourceType)) {
          issues.push(issue('error', 'not-supported', `${resourceType} resources cannot be updated`, resourceType));
        }
      }
      issues.push(...(await validator.validate(resource, { mode: mode === 'update' ? 'update' : 'create', profiles: profile ? [profile] : undefined })));
      return answer(issues, `${resourceType} is valid${profile ? ` against ${profile}` : ''}: no issues found`);
    },
  };
}
