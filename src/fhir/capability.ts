/**
 * GET /metadata: the CapabilityStatement, generated from what is actually installed (resource
 * types, the search engine's parameters, registered operations, module contributions) and
 * built once per process.
 */
import type { CapabilityStatement, CapabilityStatementRestResource } from '@medplum/fhirtypes';
import type { FhirRequest, FhirResponse, RequestContext } from './context';
import { getResourceTypeList, hasRestEndpoint } from './definitions';
import { errors } from './outcome';
import { paramValue } from './params';
import { parseElements, parseSummary, subsetResource } from './summary';
import type { Services } from '../services';

const SOFTWARE_NAME = 'fhir-server';
// Read once; the package version is the software version.
const SOFTWARE_VERSION: string = require('../../package.json').version;

const cache = new WeakMap<Services, CapabilityStatement>();

export function buildCapabilityStatement(services: Services): CapabilityStatement {
  const { config, operations, search } = services;
  const ops = operations.list();
  const resources: CapabilityStatementRestResource[] = getResourceTypeList().map((type) => {
    if (!hasRestEndpoint(type)) {
      // No interactions (Parameters): only its type-level operations answer.
      const typeOnly = ops.filter((op) => op.type && (!op.resourceTypes || op.resourceTypes.includes(type)));
      return {
        type: type as CapabilityStatementRestResource['type'],
        profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
        ...(typeOnly.length && { operation: typeOnly.map((op) => ({ name: op.name, definition: op.definition })) }),
      };
    }
    const searchCapability = search.capability(type);
    const immutable = services.immutableTypes.has(type);
    // Instance operations that change state are refused on immutable types (router.ts), so not listed.
    const typeOps = ops.filter(
      (op) =>
        (op.type || (op.instance && !(immutable && op.affectsState))) && (!op.resourceTypes || op.resourceTypes.includes(type))
    );
    return {
      type: type as CapabilityStatementRestResource['type'],
      profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
      interaction: ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type']
        .filter((code) => !services.immutableTypes.has(type) || !['update', 'patch', 'delete'].includes(code))
        .map((code) => ({ code: code as 'read' })),
      versioning: 'versioned-update',
      readHistory: true,
      updateCreate: !services.immutableTypes.has(type),
      conditionalCreate: true,
      conditionalRead: 'full-support',
      conditionalUpdate: !services.immutableTypes.has(type),
      conditionalDelete: services.immutableTypes.has(type) ? 'not-supported' : 'multiple',
      referencePolicy: ['literal', 'logical', 'local'],
      ...(searchCapability.searchInclude.length && { searchInclude: searchCapability.searchInclude }),
      ...(searchCapability.searchRevInclude.length && { searchRevInclude: searchCapability.searchRevInclude }),
      searchParam: searchCapability.searchParam,
      ...(typeOps.length && { operation: typeOps.map((op) => ({ name: op.name, definition: op.definition })) }),
    };
  });
  const systemOps = ops.filter((op) => op.system);
  const statement: CapabilityStatement = {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    publisher: 'fhir-server contributors',
    // A narrative, as every DomainResource should have one (dom-6; validators warn without).
    text: {
      status: 'generated',
      div: `<div xmlns="http://www.w3.org/1999/xhtml"><p>${SOFTWARE_NAME} ${SOFTWARE_VERSION}: FHIR R4 (4.0.1) server at ${escapeXhtml(config.baseUrl)}, ${resources.length} resource types, JSON only.</p></div>`,
    },
    kind: 'instance',
    software: { name: SOFTWARE_NAME, version: SOFTWARE_VERSION },
    implementation: { description: 'FHIR R4 server on PostgreSQL', url: config.baseUrl },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    patchFormat: ['application/json-patch+json', 'application/fhir+json'],
    rest: [
      {
        mode: 'server',
        resource: resources,
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'search-system' }, { code: 'history-system' }],
        searchParam: search.capability(undefined).searchParam,
        ...(systemOps.length && { operation: systemOps.map((op) => ({ name: op.name, definition: op.definition })) }),
      },
    ],
  };
  for (const contribute of services.capabilityContributors) {
    contribute(statement, config);
  }
  return statement;
}

function escapeXhtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Rebuilds the statement on next request (after search parameters changed at run time). */
export function invalidateCapabilityStatement(services: Services): void {
  cache.delete(services);
}

export async function capabilities(ctx: RequestContext, req: FhirRequest): Promise<FhirResponse> {
  let statement = cache.get(ctx.services);
  if (!statement) {
    statement = buildCapabilityStatement(ctx.services);
    cache.set(ctx.services, statement);
  }
  const mode = paramValue(req, 'mode');
  if (mode === 'terminology' && ctx.services.terminologyCapabilities) {
    return { status: 200, resource: ctx.services.terminologyCapabilities({ name: SOFTWARE_NAME, version: SOFTWARE_VERSION }) };
  }
  if (mode !== undefined && mode !== 'full') {
    throw errors.badRequest(`mode=${mode} is not supported; only the full CapabilityStatement and mode=terminology are available`, 'mode');
  }
  // _summary and _elements as for a read (search.html 3.1.1.5.8): clients ask for
  // _summary=true to skip the per-type interactions and search parameters (about 1 MB).
  const summary = parseSummary(paramValue(req, '_summary'));
  const elements = parseElements(paramValue(req, '_elements'));
  return { status: 200, resource: subsetResource(statement, summary, elements) };
}
