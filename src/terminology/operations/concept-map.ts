/**
 * ConceptMap/$translate (R4 OperationDefinition ConceptMap-translate) and
 * NamingSystem/$preferred-id (NamingSystem-preferred-id).
 *
 * Without url/conceptMap, $translate consults every concept map (built-in and stored) with a
 * group from the code's system, narrowed by source/target value sets when given.
 */
import type { CodeableConcept, Coding, ConceptMap, ParametersParameter } from '@medplum/fhirtypes';
import type { RequestContext } from '../../fhir/context';
import { errors } from '../../fhir/outcome';
import type { Operation, OperationTarget } from '../../fhir/operations/registry';
import { splitCanonical } from '../builtin';
import { CompiledConceptMap, isMatch, type Dependency, type TranslateMatch } from '../concept-map';
import type { Session, Terminology } from '../resolver';
import { OperationParams, parameters } from './params';
import { assertInstanceVersion, postedResource, terminologyOperation } from './shared';

/** How many other-map hops an unmapped code may follow. */
const MAX_MAP_CHAIN = 5;

const sameScope = (a: string | undefined, b: string) => a !== undefined && splitCanonical(a).url === splitCanonical(b).url;

async function chosenMaps(
  ctx: RequestContext,
  session: Session,
  target: OperationTarget,
  params: OperationParams,
  systems: string[],
  reverse: boolean
): Promise<CompiledConceptMap[]> {
  if (target.id) {
    const stored = (await ctx.services.repo.read(ctx, 'ConceptMap', target.id)).resource as ConceptMap;
    assertInstanceVersion(stored, params.string('conceptMapVersion'), 'conceptMapVersion');
    return [session.t.compileConceptMap(stored, false)];
  }
  const posted = await postedResource<ConceptMap>(ctx, params, 'conceptMap', 'ConceptMap');
  // A posted map is not stored: compiled for this request only.
  if (posted) return [new CompiledConceptMap(posted)];
  const url = params.string('url');
  if (url) {
    const version = params.string('conceptMapVersion');
    const map = await session.conceptMap(version && !url.includes('|') ? `${url}|${version}` : url);
    if (!map) throw errors.notFound(`The concept map ${url} is not known on this server`);
    return [map];
  }
  const source = params.string('source');
  const targetScope = params.string('target');
  const maps = new Map<string, CompiledConceptMap>();
  for (const system of systems) {
    for (const map of await session.conceptMapsFor(system, reverse)) {
      const [from, to] = reverse ? [map.targetScope, map.sourceScope] : [map.sourceScope, map.targetScope];
      if (source && !sameScope(from, source)) continue;
      if (targetScope && !sameScope(to, targetScope)) continue;
      maps.set(`${map.url}|${map.version ?? ''}`, map);
    }
  }
  return [...maps.values()];
}

function dependencies(params: OperationParams): Dependency[] {
  return params.parts('dependency').map((parts) => ({
    element: parts.find((p) => p.name === 'element')?.valueUri,
    concept: parts.find((p) => p.name === 'concept')?.valueCodeableConcept as CodeableConcept | undefined,
  }));
}

function matchPart(m: TranslateMatch): ParametersParameter {
  return {
    name: 'match',
    part: [
      { name: 'equivalence', valueCode: m.equivalence },
      ...(m.concept ? [{ name: 'concept', valueCoding: m.concept }] : []),
      ...(m.product ?? []).map((p) => ({
        name: 'product',
        part: [...(p.element ? [{ name: 'element', valueUri: p.element }] : []), { name: 'concept', valueCoding: p.concept }],
      })),
      { name: 'source', valueUri: m.source },
    ],
  };
}

function translateOperation(terminology: Terminology): Operation {
  return terminologyOperation('ConceptMap', 'translate', async (ctx, _req, target, input) => {
    const params = new OperationParams(input);
    const concept = params.codeableConcept('codeableConcept');
    const coding = params.coding('coding');
    const code = params.string('code');
    const codings: Coding[] = concept?.coding ?? (coding ? [coding] : code ? [{ system: params.string('system'), code, version: params.string('version') }] : []);
    if (!codings.length) throw errors.badRequest('$translate needs code and system, coding or codeableConcept', 'code');
    const incomplete = codings.find((c) => !c.system || !c.code);
    if (incomplete) throw errors.badRequest('$translate needs the system of the code to translate', 'system');
    const reverse = params.boolean('reverse') ?? false;
    const session = terminology.session();
    const systems = [...new Set(await Promise.all(codings.map((c) => session.canonicalSystem(c.system as string))))];
    const maps = await chosenMaps(ctx, session, target, params, [...new Set([...systems, ...codings.map((c) => c.system as string)])], reverse);
    const request = { targetSystem: params.string('targetsystem'), reverse, dependencies: dependencies(params) };

    const matches: TranslateMatch[] = [];
    const seen = new Set<string>();
    const run = async (map: CompiledConceptMap, c: Coding, depth: number) => {
      for (const system of new Set([c.system as string, await session.canonicalSystem(c.system as string)])) {
        const { matches: found, otherMaps } = map.translate({ ...request, system, code: c.code as string });
        for (const m of found) {
          const key = `${m.equivalence}|${m.concept?.system}|${m.concept?.code}|${m.source}`;
          if (!seen.has(key)) {
            seen.add(key);
            matches.push(m);
          }
        }
        for (const url of depth < MAX_MAP_CHAIN ? otherMaps : []) {
          const other = await session.conceptMap(url);
          if (other) await run(other, c, depth + 1);
        }
      }
    };
    for (const map of maps) for (const c of codings) await run(map, c, 0);

    const result = matches.some(isMatch);
    const described = codings.map((c) => `${c.system}#${c.code}`).join(', ');
    const message = !maps.length
      ? `No concept map on this server translates ${described}${reverse ? ' in reverse' : ''}`
      : !result
        ? `No mapping found for ${described} in ${maps.map((m) => m.url).join(', ')}`
        : undefined;
    return {
      status: 200,
      resource: parameters({ name: 'result', valueBoolean: result }, message !== undefined && { name: 'message', valueString: message }, ...matches.map(matchPart)),
    };
  });
}

const ID_TYPES = new Set(['oid', 'uuid', 'uri', 'other']);

function preferredIdOperation(terminology: Terminology): Operation {
  return terminologyOperation(
    'NamingSystem',
    'preferred-id',
    async (_ctx, _req, _target, input) => {
      const params = new OperationParams(input);
      const id = params.string('id');
      const type = params.string('type');
      if (!id) throw errors.badRequest('$preferred-id needs the id parameter', 'id');
      if (!type || !ID_TYPES.has(type)) throw errors.badRequest('$preferred-id needs type: oid, uuid, uri or other', 'type');
      const bare = id.replace(/^urn:(oid|uuid):/, '');
      const generation = await terminology.session().generation();
      const candidates = [
        ...terminology.builtin.namingSystems,
        ...(await generation.namingSystemsFor(id)),
        ...(bare !== id ? await generation.namingSystemsFor(bare) : []),
      ].filter((ns) => (ns.uniqueId ?? []).some((u) => u.value === id || u.value === bare));
      for (const ns of candidates) {
        const ids = (ns.uniqueId ?? []).filter((u) => u.type === type);
        const chosen = ids.find((u) => u.preferred) ?? ids[0];
        if (chosen?.value) return { status: 200, resource: parameters({ name: 'result', valueString: chosen.value }) };
      }
      // A built-in code system's URL and its OID (CodeSystem.identifier) are two ids of one thing.
      const url = terminology.builtin.alias(`urn:oid:${bare}`) ?? (terminology.builtin.has('CodeSystem', id) ? id : undefined);
      const oid = url && terminology.builtin.aliasesOf(url).find((a) => a.startsWith('urn:oid:'));
      if (type === 'uri' && url) return { status: 200, resource: parameters({ name: 'result', valueString: url }) };
      if (type === 'oid' && oid) return { status: 200, resource: parameters({ name: 'result', valueString: oid.slice('urn:oid:'.length) }) };
      throw errors.notFound(`No naming system on this server gives an id of type ${type} for ${id}`);
    },
    { instance: false }
  );
}

export function conceptMapOperations(terminology: Terminology): Operation[] {
  return [translateOperation(terminology), preferredIdOperation(terminology)];
}
