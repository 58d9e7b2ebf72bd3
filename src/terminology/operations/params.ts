/**
 * Typed reading of terminology operation inputs. A POSTed Parameters carries typed values
 * (valueUri, valueCoding, ...); a GET carries strings, from which the primitive types are
 * parsed, and a Coding may be written "system|code" (a convenience: R4 has no GET form for
 * complex parameters). A value of the wrong type is a 400 naming the parameter.
 */
import type { CodeableConcept, Coding, Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import { errors } from '../../fhir/outcome';

const STRING_TYPES = ['valueString', 'valueUri', 'valueCode', 'valueCanonical', 'valueUrl', 'valueId', 'valueOid', 'valueUuid', 'valueMarkdown', 'valueDateTime'] as const;

function primitiveText(p: ParametersParameter): string | undefined {
  for (const key of STRING_TYPES) {
    if (typeof p[key] === 'string') return p[key] as string;
  }
  return undefined;
}

export class OperationParams {
  constructor(private readonly input: Parameters) {}

  private all(name: string): ParametersParameter[] {
    return (this.input.parameter ?? []).filter((p) => p.name === name);
  }

  private one(name: string): ParametersParameter | undefined {
    const found = this.all(name);
    if (found.length > 1) throw errors.badRequest(`The parameter "${name}" may be given only once`, name);
    return found[0];
  }

  string(name: string): string | undefined {
    const p = this.one(name);
    if (!p) return undefined;
    const text = primitiveText(p);
    if (text === undefined) throw errors.badRequest(`The parameter "${name}" must be a string, uri or code`, name);
    return text;
  }

  strings(name: string): string[] {
    return this.all(name).map((p) => {
      const text = primitiveText(p);
      if (text === undefined) throw errors.badRequest(`The parameter "${name}" must be a string, uri or code`, name);
      return text;
    });
  }

  /** The parts of each repetition of a multi-part parameter (e.g. $translate's dependency). */
  parts(name: string): ParametersParameter[][] {
    return this.all(name).map((p) => p.part ?? []);
  }

  boolean(name: string): boolean | undefined {
    const p = this.one(name);
    if (!p) return undefined;
    if (typeof p.valueBoolean === 'boolean') return p.valueBoolean;
    if (p.valueString === 'true' || p.valueString === 'false') return p.valueString === 'true';
    throw errors.badRequest(`The parameter "${name}" must be true or false`, name);
  }

  integer(name: string): number | undefined {
    const p = this.one(name);
    if (!p) return undefined;
    const value = p.valueInteger ?? (p.valueString !== undefined && /^\d{1,9}$/.test(p.valueString) ? Number(p.valueString) : undefined);
    if (value === undefined || !Number.isInteger(value) || value < 0) {
      throw errors.badRequest(`The parameter "${name}" must be a non-negative integer`, name);
    }
    return value;
  }

  coding(name: string): Coding | undefined {
    const p = this.one(name);
    if (!p) return undefined;
    if (p.valueCoding && typeof p.valueCoding === 'object') return p.valueCoding;
    if (typeof p.valueString === 'string' && p.valueString.includes('|')) {
      const bar = p.valueString.lastIndexOf('|');
      return { system: p.valueString.slice(0, bar) || undefined, code: p.valueString.slice(bar + 1) };
    }
    throw errors.badRequest(`The parameter "${name}" must be a Coding (or "system|code" in a GET)`, name);
  }

  codeableConcept(name: string): CodeableConcept | undefined {
    const p = this.one(name);
    if (!p) return undefined;
    if (p.valueCodeableConcept && typeof p.valueCodeableConcept === 'object') return p.valueCodeableConcept;
    throw errors.badRequest(`The parameter "${name}" must be a CodeableConcept`, name);
  }

  /** A resource parameter (only in a POST); `resource` also stands for a resource POSTed as the body. */
  resource<T extends Resource>(name: string, type: T['resourceType']): T | undefined {
    const p = this.one(name) ?? this.one('resource');
    if (!p) return undefined;
    if (!p.resource || p.resource.resourceType !== type) {
      throw errors.badRequest(`The parameter "${name}" must be a ${type} resource`, name);
    }
    return p.resource as T;
  }
}

/** A Parameters resource from name/value pairs, leaving out what is undefined. */
export function parameters(...parts: (ParametersParameter | undefined | false)[]): Parameters {
  return { resourceType: 'Parameters', parameter: parts.filter((p): p is ParametersParameter => Boolean(p)) };
}
