/**
 * Named operations ($validate, $everything, $expand, ...). Modules register their
 * operations here; the router dispatches to them and the CapabilityStatement lists them,
 * so what is advertised is exactly what is registered.
 */
import type { OperationDefinition, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import type { FhirRequest, FhirResponse, RequestContext } from '../context';
import { errors } from '../outcome';

export interface OperationTarget {
  resourceType?: string;
  id?: string;
}

export interface Operation {
  /** Name without the $. */
  name: string;
  /** Canonical URL of its OperationDefinition, for the CapabilityStatement. */
  definition: string;
  /**
   * The OperationDefinition itself, for this server's own operations (HL7's canonicals resolve
   * at hl7.org, ours would resolve nowhere): stored at start-up, so that the canonical named in
   * the CapabilityStatement can be read at OperationDefinition/[name] and found by url.
   */
  operationDefinition?: OperationDefinition;
  system?: boolean;
  type?: boolean;
  instance?: boolean;
  /** Types it applies to at type and instance level; undefined means every type. */
  resourceTypes?: string[];
  /** Operations that change nothing may also be invoked with GET. */
  affectsState: boolean;
  handler(ctx: RequestContext, req: FhirRequest, target: OperationTarget, input: Parameters): Promise<FhirResponse>;
}

export type OperationLevel = 'system' | 'type' | 'instance';

export class OperationRegistry {
  private readonly operations: Operation[] = [];

  register(operation: Operation): void {
    this.operations.push(operation);
  }

  find(name: string, level: OperationLevel, resourceType?: string): Operation | undefined {
    return this.operations.find(
      (op) =>
        op.name === name &&
        op[level] === true &&
        (level === 'system' || !op.resourceTypes || op.resourceTypes.includes(resourceType as string))
    );
  }

  /** Whether any operation of this name exists at any level (to tell 404 from 405 apart). */
  knows(name: string): boolean {
    return this.operations.some((op) => op.name === name);
  }

  list(): readonly Operation[] {
    return this.operations;
  }
}

/**
 * The operation's input as Parameters: the body when it is a Parameters resource, otherwise
 * the query parameters as strings (GET, or a POST that carries a resource as its body).
 */
export function operationInput(req: FhirRequest): Parameters {
  const body = req.body as { resourceType?: string } | undefined;
  if (body?.resourceType === 'Parameters') {
    assertParameterList((body as Parameters).parameter, 'Parameters.parameter');
    return body as Parameters;
  }
  const parameter: ParametersParameter[] = req.params
    .filter(([name]) => !name.startsWith('_format') && name !== '_pretty')
    .map(([name, value]) => ({ name, valueString: value }));
  if (body && typeof body === 'object' && body.resourceType) {
    parameter.push({ name: 'resource', resource: body as ParametersParameter['resource'] });
  }
  return { resourceType: 'Parameters', parameter };
}

/**
 * A Parameters body is not validated before an operation reads it: its parameter (and part)
 * lists must at least be arrays of objects with a string name, or every operation would fail
 * on them with a TypeError (500) instead of saying what is wrong.
 */
function assertParameterList(list: unknown, path: string): void {
  if (list === undefined) return;
  if (!Array.isArray(list)) {
    throw errors.badRequest(`${path} must be an array of parameters`, path);
  }
  list.forEach((param: unknown, i) => {
    const at = `${path}[${i}]`;
    if (param === null || typeof param !== 'object' || Array.isArray(param) || typeof (param as ParametersParameter).name !== 'string') {
      throw errors.badRequest(`${at} must be a parameter: an object with a name`, at);
    }
    assertParameterList((param as ParametersParameter).part, `${at}.part`);
  });
}

/** The first value of a named input parameter, whatever its value[x] type. */
export function inputValue(input: Parameters, name: string): unknown {
  const param = input.parameter?.find((p) => p.name === name);
  if (!param) {
    return undefined;
  }
  if (param.resource) {
    return param.resource;
  }
  for (const [key, value] of Object.entries(param)) {
    if (key.startsWith('value')) {
      return value;
    }
  }
  return undefined;
}

/** One parameter of an OperationDefinition: name, in|out, min, max, type, documentation. */
export type OperationParameterSpec = [string, 'in' | 'out', number, string, string, string];

/**
 * The OperationDefinition of one of this server's own operations (status active, kind
 * operation), at `<CANONICAL_BASE>/OperationDefinition/<name>` and stored with id <name>.
 */
export function ownOperationDefinition(
  canonicalBase: string,
  op: Pick<Operation, 'name' | 'affectsState'> & { title: string; description: string; levels: OperationLevel[]; resource?: string[] },
  parameters: OperationParameterSpec[]
): OperationDefinition {
  return {
    resourceType: 'OperationDefinition',
    id: op.name,
    url: `${canonicalBase}/OperationDefinition/${op.name}`,
    name: op.name
      .split('-')
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join(''),
    title: op.title,
    status: 'active',
    kind: 'operation',
    publisher: 'fhir-server contributors',
    description: op.description,
    affectsState: op.affectsState,
    code: op.name,
    ...(op.resource && { resource: op.resource as OperationDefinition['resource'] }),
    system: op.levels.includes('system'),
    type: op.levels.includes('type'),
    instance: op.levels.includes('instance'),
    parameter: parameters.map(([name, use, min, max, type, documentation]) => ({
      name,
      use,
      min,
      max,
      documentation,
      type: type as 'string',
    })),
  };
}
