/**
 * GET /metadata?mode=terminology: the TerminologyCapabilities (capabilitystatement.html, "mode":
 * "a TerminologyCapabilities resource that provides further information about terminologies
 * which are supported by the server"). Terminology clients (the HL7 validator among them) ask
 * for it to learn which code systems a server can decide codes of.
 */
import type { TerminologyCapabilities } from '@medplum/fhirtypes';
import type { Config } from '../config';
import type { BuiltinCatalog } from './builtin';

export function terminologyCapabilities(catalog: BuiltinCatalog, config: Config, software: { name: string; version: string }): TerminologyCapabilities {
  return {
    resourceType: 'TerminologyCapabilities',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software,
    implementation: { description: 'FHIR R4 server on PostgreSQL', url: config.baseUrl },
    // Only the built-in systems this server has whole: codes of content "not-present" systems
    // (SNOMED CT, LOINC, ...) cannot be decided here. Stored CodeSystems are used too, but are
    // found by searching CodeSystem.
    codeSystem: catalog.completeCodeSystems().map(({ url, versions }) => ({
      uri: url,
      ...(versions.length && { version: versions.map((code) => ({ code })) }),
    })),
    // $expand: text filter, paging (count, offset); no hierarchical expansions.
    expansion: { hierarchical: false, paging: true, incomplete: false, textFilter: 'Every word must occur in the code, display or a designation (case and accent insensitive, substring).' },
    codeSearch: 'all',
    validateCode: { translations: false },
    translation: { needsMap: true },
    closure: { translation: false },
  };
}
