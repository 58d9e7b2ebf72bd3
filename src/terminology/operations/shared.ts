/**
 * What the terminology operations share: how they are declared, the inputs of the two
 * $validate-code operations, and the shape of their output.
 */
import type { CodeableConcept, Coding, Parameters, Resource } from '@medplum/fhirtypes';
import type { RequestContext } from '../../fhir/context';
import { errors, FhirError, outcome } from '../../fhir/outcome';
import type { Operation } from '../../fhir/operations/registry';
import type { CodeCheck } from '../../services';
import type { CheckOptions } from '../checks';
import { OperationParams, parameters } from './params';

/** A read-only operation (GET or POST) on one resource type, at type level and by default at instance level. */
export function terminologyOperation(
  resourceType: string,
  name: string,
  handler: Operation['handler'],
  options: { instance?: boolean; definition?: string } = {}
): Operation {
  return {
    name,
    definition: options.definition ?? `http://hl7.org/fhir/OperationDefinition/${resourceType}-${name}`,
    type: true,
    instance: options.instance ?? true,
    resourceTypes: [resourceType],
    affectsState: false,
    handler,
  };
}

export interface CodeInput {
  params: OperationParams;
  code?: string;
  coding?: Coding;
  concept?: CodeableConcept;
  options: CheckOptions;
}

/**
 * The code-related inputs of $validate-code; 400 when there is nothing to validate, or more
 * than one thing: "One (and only one) of the in parameters code, coding, or codeableConcept
 * must be provided" (ValueSet-validate-code, CodeSystem-validate-code). Answering about one
 * of them would silently ignore the others.
 */
export function codeInput(input: Parameters): CodeInput {
  const params = new OperationParams(input);
  const coding = params.coding('coding');
  const concept = params.codeableConcept('codeableConcept');
  const code = params.string('code');
  const given = [code && 'code', coding && 'coding', concept && 'codeableConcept'].filter((g): g is string => Boolean(g));
  if (given.length === 0) throw errors.badRequest('$validate-code needs code, coding or codeableConcept', 'code');
  if (given.length > 1) {
    throw errors.badRequest(`$validate-code takes one (and only one) of code, coding and codeableConcept; found ${given.join(' and ')}`, given);
  }
  return { params, code, coding, concept, options: { abstractOk: params.boolean('abstract') ?? false, displayLanguage: params.string('displayLanguage') } };
}

/**
 * Instance-level operations work on the stored resource. A version parameter
 * (valueSetVersion, version, conceptMapVersion) that names another version gets the same
 * 404 as at type level: "a specific version ... to be used" cannot be answered from a
 * different one.
 */
export function assertInstanceVersion(
  resource: { resourceType: string; id?: string; url?: string; version?: string },
  requested: string | undefined,
  parameter: string
): void {
  if (requested === undefined || requested === resource.version) return;
  const kind = resource.resourceType === 'CodeSystem' ? 'code system' : resource.resourceType === 'ValueSet' ? 'value set' : 'concept map';
  throw errors.notFound(
    `Cannot use the ${kind}: version ${requested} (${parameter}) of the ${kind} ${resource.url ?? `${resource.resourceType}/${resource.id}`} is not known here ` +
      `(${resource.resourceType}/${resource.id} is ${resource.version === undefined ? 'unversioned' : `version ${resource.version}`})`
  );
}

/**
 * A resource given as an input parameter (a posted valueSet, codeSystem or conceptMap),
 * validated like a write would be: a malformed one is a 400, not a wrong answer.
 */
export async function postedResource<T extends Resource>(
  ctx: RequestContext,
  params: OperationParams,
  name: string,
  type: T['resourceType']
): Promise<T | undefined> {
  const resource = params.resource<T>(name, type);
  if (!resource) return undefined;
  const issues = await ctx.services.validator.validate(resource, { mode: 'create' });
  const failures = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  if (failures.length) {
    throw new FhirError(400, outcome(...failures.map((i) => ({ ...i, diagnostics: `Parameter ${name}: ${i.diagnostics ?? i.code}` }))));
  }
  return resource;
}

/** The out parameters of $validate-code: result, message, display. */
export function codeCheckParameters(check: CodeCheck): Parameters {
  return parameters(
    { name: 'result', valueBoolean: check.result },
    check.message !== undefined && { name: 'message', valueString: check.message },
    check.display !== undefined && { name: 'display', valueString: check.display }
  );
}
