/**
 * CodeSystem/$lookup, CodeSystem/$validate-code and CodeSystem/$subsumes (R4 OperationDefinitions
 * CodeSystem-lookup, -validate-code, -subsumes), at type level (system/url) and at instance
 * level (a stored CodeSystem by id).
 */
import type { CodeSystem, CodeSystemConceptProperty, Coding, ParametersParameter } from '@medplum/fhirtypes';
import type { RequestContext } from '../../fhir/context';
import { errors } from '../../fhir/outcome';
import type { Operation, OperationTarget } from '../../fhir/operations/registry';
import { checkConcept, checkInCodeSystem, displayOf } from '../checks';
import { CompiledCodeSystem, type ConceptEntry } from '../code-system';
import type { Terminology } from '../resolver';
import { OperationParams, parameters } from './params';
import { notDecidable } from '../errors';
import { assertInstanceVersion, codeCheckParameters, codeInput, postedResource, terminologyOperation } from './shared';

/** The code system the operation works on: the instance, a posted one, or one named by URL; 404 when unknown. */
async function resolveCodeSystem(
  ctx: RequestContext,
  terminology: Terminology,
  target: OperationTarget,
  url: string | undefined,
  version: string | undefined,
  posted?: CodeSystem
): Promise<CompiledCodeSystem> {
  if (target.id) {
    const stored = (await ctx.services.repo.read(ctx, 'CodeSystem', target.id)).resource as CodeSystem;
    assertInstanceVersion(stored, version, 'version');
    return terminology.compileCodeSystem(stored, false);
  }
  if (posted) return new CompiledCodeSystem(posted);
  if (!url) throw errors.badRequest('The code system must be named: give system (or url), or a coding with a system', 'system');
  const found = await terminology.session().codeSystem(url, version);
  if (!found.cs) throw errors.notFound(`Cannot use the code system: ${found.missing}`);
  return found.cs;
}

/** The concept, or 404 (not defined) / 422 (cannot be known here). */
function requireConcept(cs: CompiledCodeSystem, code: string): ConceptEntry {
  if (cs.content === 'not-present' || cs.content === 'supplement') throw notDecidable(cs.describeContent());
  const entry = cs.get(code);
  if (entry) return entry;
  if (cs.complete) throw errors.notFound(`The code "${code}" is not defined by the code system ${cs.url}`);
  throw errors.notFound(`The code "${code}" is not among the concepts known here: ${cs.describeContent()}`);
}

function propertyPart(code: string, value: Omit<CodeSystemConceptProperty, 'code'>): ParametersParameter {
  const valuePart = Object.entries(value).find(([key]) => key.startsWith('value'));
  return {
    name: 'property',
    part: [{ name: 'code', valueCode: code }, ...(valuePart ? [{ name: 'value', [valuePart[0]]: valuePart[1] } as ParametersParameter] : [])],
  };
}

function lookupProperties(entry: ConceptEntry, wanted: string[]): ParametersParameter[] {
  const want = (code: string) => wanted.length === 0 || wanted.includes(code);
  const out: ParametersParameter[] = [];
  if (entry.definition && want('definition')) out.push(propertyPart('definition', { valueString: entry.definition }));
  for (const parent of entry.parents) if (want('parent')) out.push(propertyPart('parent', { valueCode: parent.code }));
  for (const child of entry.children) if (want('child')) out.push(propertyPart('child', { valueCode: child.code }));
  for (const p of entry.property ?? []) {
    if (p.code && p.code !== 'parent' && p.code !== 'child' && want(p.code)) {
      const { code, ...value } = p;
      out.push(propertyPart(code, value));
    }
  }
  if (wanted.includes('inactive') && !entry.property?.some((p) => p.code === 'inactive')) {
    out.push(propertyPart('inactive', { valueBoolean: entry.inactive }));
  }
  return out;
}

function lookupOperation(terminology: Terminology): Operation {
  // R4 defines $lookup at type level only; by id it looks up in that stored code system.
  return terminologyOperation('CodeSystem', 'lookup', async (ctx, _req, target, input) => {
    const params = new OperationParams(input);
    const coding = params.coding('coding');
    const code = params.string('code') ?? coding?.code;
    const system = params.string('system') ?? coding?.system;
    const version = params.string('version') ?? coding?.version;
    if (!code) throw errors.badRequest('$lookup needs a code (code and system, or coding)', 'code');
    const cs = await resolveCodeSystem(ctx, terminology, target, system, version);
    const entry = requireConcept(cs, code);
    const wanted = params.strings('property');
    const language = params.string('displayLanguage');
    // CodeSystem-lookup `property`: "for designations, lang.X where X is a designation language
    // code": lang.en asks for the designations in English (en, en-GB ...), without the others.
    const languages = wanted.filter((w) => w.startsWith('lang.')).map((w) => w.slice(5).toLowerCase());
    const inLanguage = (language?: string) =>
      language !== undefined && languages.some((l) => language.toLowerCase() === l || language.toLowerCase().startsWith(`${l}-`));
    const designations =
      wanted.length === 0 || wanted.includes('designation') ? (entry.designation ?? []) : (entry.designation ?? []).filter((d) => inLanguage(d.language));
    return {
      status: 200,
      resource: parameters(
        { name: 'name', valueString: cs.name },
        cs.version !== undefined && { name: 'version', valueString: cs.version },
        { name: 'display', valueString: displayOf(entry, language) ?? entry.code },
        ...designations.map(
          (d): ParametersParameter => ({
            name: 'designation',
            part: [
              ...(d.language ? [{ name: 'language', valueCode: d.language }] : []),
              ...(d.use ? [{ name: 'use', valueCoding: d.use }] : []),
              { name: 'value', valueString: d.value },
            ],
          })
        ),
        ...lookupProperties(entry, wanted)
      ),
    };
  });
}

function validateCodeOperation(terminology: Terminology): Operation {
  return terminologyOperation('CodeSystem', 'validate-code', async (ctx, _req, target, input) => {
    const { params, code, coding, concept, options } = codeInput(input);
    const posted = await postedResource<CodeSystem>(ctx, params, 'codeSystem', 'CodeSystem');
    const url = params.string('url') ?? coding?.system ?? concept?.coding?.find((c) => c.system)?.system;
    const version = params.string('version');
    const cs = await resolveCodeSystem(ctx, terminology, target, url, version, posted);
    const check = async (c: Coding) =>
      c.system && c.system !== cs.url && (await terminology.session().canonicalSystem(c.system)) !== cs.url
        ? { result: false, message: `The coding's system ${c.system} is not the code system ${cs.url}` }
        : checkInCodeSystem({ cs }, { ...c, version: c.version ?? version }, options);
    const result = concept
      ? await checkConcept(concept, check)
      : await check(coding ?? { code, display: params.string('display') });
    return { status: 200, resource: codeCheckParameters(result) };
  });
}

function subsumesOperation(terminology: Terminology): Operation {
  return terminologyOperation('CodeSystem', 'subsumes', async (ctx, _req, target, input) => {
    const params = new OperationParams(input);
    const codingA = params.coding('codingA');
    const codingB = params.coding('codingB');
    const codeA = params.string('codeA') ?? codingA?.code;
    const codeB = params.string('codeB') ?? codingB?.code;
    if (!codeA || !codeB) throw errors.badRequest('$subsumes needs two codes: codeA and codeB, or codingA and codingB', codeA ? 'codeB' : 'codeA');
    const system = params.string('system') ?? codingA?.system ?? codingB?.system;
    const cs = await resolveCodeSystem(ctx, terminology, target, system, params.string('version') ?? codingA?.version);
    for (const c of [codingA, codingB]) {
      if (c?.system && c.system !== cs.url && (await terminology.session().canonicalSystem(c.system)) !== cs.url) {
        throw errors.badRequest(`$subsumes compares codes of one code system; ${c.system} is not ${cs.url}`);
      }
    }
    const a = requireConcept(cs, codeA);
    const b = requireConcept(cs, codeB);
    if (!cs.complete && a !== b && !cs.isA(a, b) && !cs.isA(b, a)) {
      throw notDecidable(`the hierarchy of ${cs.url} is not complete here (${cs.describeContent()})`);
    }
    const outcome = a === b ? 'equivalent' : cs.isA(b, a) ? 'subsumes' : cs.isA(a, b) ? 'subsumed-by' : 'not-subsumed';
    return { status: 200, resource: parameters({ name: 'outcome', valueCode: outcome }) };
  });
}

export function codeSystemOperations(terminology: Terminology): Operation[] {
  return [lookupOperation(terminology), validateCodeOperation(terminology), subsumesOperation(terminology)];
}
