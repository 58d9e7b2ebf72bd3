/**
 * ValueSet/$expand and ValueSet/$validate-code (R4 OperationDefinitions ValueSet-expand and
 * ValueSet-validate-code), at type level (url, or a posted valueSet) and instance level.
 */
import { randomUUID } from 'node:crypto';
import type { ParametersParameter, ValueSet, ValueSetExpansionContains } from '@medplum/fhirtypes';
import type { RequestContext } from '../../fhir/context';
import { errors } from '../../fhir/outcome';
import type { Operation, OperationTarget } from '../../fhir/operations/registry';
import { checkConcept, checkInValueSet, displayOf } from '../checks';
import type { ExpansionItem } from '../expansion';
import type { Session, Terminology } from '../resolver';
import type { LinkedValueSet } from '../value-set';
import { OperationParams } from './params';
import { assertInstanceVersion, codeCheckParameters, codeInput, postedResource, terminologyOperation } from './shared';

/** The metadata of a value set that an expansion carries along. */
const HEADER_FIELDS = ['id', 'url', 'identifier', 'version', 'name', 'title', 'status', 'experimental', 'date', 'publisher', 'description'] as const;

async function resolveValueSet(ctx: RequestContext, session: Session, target: OperationTarget, params: OperationParams): Promise<LinkedValueSet> {
  if (target.id) {
    const stored = (await ctx.services.repo.read(ctx, 'ValueSet', target.id)).resource as ValueSet;
    assertInstanceVersion(stored, params.string('valueSetVersion'), 'valueSetVersion');
    return session.linkStored(stored);
  }
  const posted = await postedResource<ValueSet>(ctx, params, 'valueSet', 'ValueSet');
  if (posted) return session.linkResource(posted);
  const url = params.string('url');
  if (!url) throw errors.badRequest('Name the value set: give url, or post it as the valueSet parameter', 'url');
  const version = params.string('valueSetVersion');
  const found = await session.valueSet(version && !url.includes('|') ? `${url}|${version}` : url);
  if (!found.vs) throw errors.notFound(`Cannot use the value set: ${found.missing}`);
  return found.vs;
}

/** Lower case without accents, for the text filter. */
const fold = (text: string) => text.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();

/** Every word of the filter occurs in the code, the display or a designation (substring: also fits CJK text). */
function textMatcher(filter: string): (item: ExpansionItem) => boolean {
  const terms = fold(filter).split(/\s+/).filter(Boolean);
  return (item) => {
    const texts = [item.code, item.display ?? '', ...(item.designation ?? []).map((d) => d.value ?? '')].map(fold);
    return terms.every((t) => texts.some((text) => text.includes(t)));
  };
}

function expandOperation(terminology: Terminology): Operation {
  return terminologyOperation('ValueSet', 'expand', async (ctx, _req, target, input) => {
    const params = new OperationParams(input);
    const vs = await resolveValueSet(ctx, terminology.session(), target, params);
    const filter = params.string('filter');
    const offset = params.integer('offset') ?? 0;
    const count = params.integer('count');
    const activeOnly = params.boolean('activeOnly') ?? false;
    const includeDesignations = params.boolean('includeDesignations') ?? false;
    const language = params.string('displayLanguage');
    const expansion = vs.expansion();
    let items = expansion.items;
    if (activeOnly) items = items.filter((i) => !i.inactive);
    if (filter) items = items.filter(textMatcher(filter));
    const page = items.slice(offset, count === undefined ? undefined : offset + count);
    const contains = page.map(
      (i): ValueSetExpansionContains => ({
        system: i.system,
        ...(i.version !== undefined && { version: i.version }),
        code: i.code,
        ...(displayOf(i, language) !== undefined && { display: displayOf(i, language) }),
        ...(i.abstract && { abstract: true }),
        ...(i.inactive && { inactive: true }),
        ...(includeDesignations && i.designation?.length && { designation: i.designation }),
      })
    );
    const parameter: ParametersParameter[] = [
      ...(filter !== undefined ? [{ name: 'filter', valueString: filter }] : []),
      ...(count !== undefined ? [{ name: 'count', valueInteger: count }] : []),
      ...(offset ? [{ name: 'offset', valueInteger: offset }] : []),
      ...(activeOnly ? [{ name: 'activeOnly', valueBoolean: true }] : []),
      ...(includeDesignations ? [{ name: 'includeDesignations', valueBoolean: true }] : []),
      ...(language ? [{ name: 'displayLanguage', valueCode: language }] : []),
      ...[...expansion.usedSystems].map(([url, version]) => ({ name: 'used-codesystem', valueUri: version ? `${url}|${version}` : url })),
    ];
    const header: Partial<ValueSet> = {};
    for (const field of HEADER_FIELDS) {
      if (vs.resource[field] !== undefined) (header as Record<string, unknown>)[field] = vs.resource[field];
    }
    const result: ValueSet = {
      resourceType: 'ValueSet',
      ...header,
      status: vs.resource.status ?? 'unknown',
      expansion: {
        identifier: `urn:uuid:${randomUUID()}`,
        timestamp: new Date().toISOString(),
        total: items.length,
        ...((offset > 0 || count !== undefined) && { offset }),
        ...(parameter.length && { parameter: parameter as NonNullable<ValueSet['expansion']>['parameter'] }),
        ...(contains.length && { contains }),
      },
    };
    return { status: 200, resource: result };
  });
}

function validateCodeOperation(terminology: Terminology): Operation {
  return terminologyOperation('ValueSet', 'validate-code', async (ctx, _req, target, input) => {
    const { params, code, coding, concept, options } = codeInput(input);
    // ValueSet-validate-code, parameter code: "If a code is provided, a system or a context
    // must be provided". A code alone could belong to any of the value set's code systems.
    if (code && params.string('system') === undefined && params.string('context') === undefined) {
      throw errors.badRequest('If a code is provided, a system or a context must be provided (give system, or a coding)', 'system');
    }
    const session = terminology.session();
    const vs = await resolveValueSet(ctx, session, target, params);
    const result = concept
      ? await checkConcept(concept, (c) => checkInValueSet(session, vs, c, options))
      : await checkInValueSet(
          session,
          vs,
          coding ?? { system: params.string('system'), code, version: params.string('systemVersion'), display: params.string('display') },
          options
        );
    return { status: 200, resource: codeCheckParameters(result) };
  });
}

export function valueSetOperations(terminology: Terminology): Operation[] {
  return [expandOperation(terminology), validateCodeOperation(terminology)];
}
