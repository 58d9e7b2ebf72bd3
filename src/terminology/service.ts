/**
 * The TerminologyService that validation (bindings) and search (:in, :not-in) call.
 * Abstract codes are accepted with a remark here: a write is refused only for codes that are
 * certainly wrong, and $validate-code (which applies the spec's `abstract` default) is there
 * for a strict answer.
 */
import { FhirError } from '../fhir/outcome';
import type { CodeCheck, CodeChecker, CodeToCheck, TerminologyService } from '../services';
import { checkInCodeSystem, checkInValueSet } from './checks';
import type { Session, Terminology } from './resolver';

async function codeInValueSet(session: Session, valueSetUrl: string, code: CodeToCheck): Promise<CodeCheck> {
  const found = await session.valueSet(valueSetUrl);
  if (!found.vs) {
    return { result: false, unknown: true, message: `Cannot check the code: ${found.missing}` };
  }
  return checkInValueSet(session, found.vs, code, { abstractOk: true });
}

async function codeInSystem(session: Session, code: CodeToCheck): Promise<CodeCheck> {
  if (!code.system) {
    return { result: false, message: `The code ${code.code ?? ''} has no system` };
  }
  const found = await session.codeSystem(code.system, code.version);
  return checkInCodeSystem(found, code, { abstractOk: true });
}

export class TerminologyServiceImpl implements TerminologyService {
  constructor(private readonly terminology: Terminology) {}

  validateCode(valueSetUrl: string, code: CodeToCheck): Promise<CodeCheck> {
    return codeInValueSet(this.terminology.session(), valueSetUrl, code);
  }

  validateCodeInSystem(code: CodeToCheck): Promise<CodeCheck> {
    return codeInSystem(this.terminology.session(), code);
  }

  checker(scope?: object): CodeChecker {
    const session = this.terminology.session(scope);
    return {
      validateCode: (valueSetUrl, code) => codeInValueSet(session, valueSetUrl, code),
      validateCodeInSystem: (code) => codeInSystem(session, code),
    };
  }

  async expandCodes(valueSetUrl: string): Promise<{ system: string; code: string }[] | undefined> {
    const found = await this.terminology.session().valueSet(valueSetUrl);
    if (!found.vs) return undefined;
    try {
      return found.vs.expansion().items.map((i) => ({ system: i.system, code: i.code }));
    } catch (err) {
      // Not expandable here (external terminology, too large): the caller must not guess.
      if (err instanceof FhirError && err.status === 422) return undefined;
      throw err;
    }
  }
}
