/**
 * services.validator: a resource against its base definition, then against every profile it
 * claims (meta.profile), every profile the caller asks for (ValidationOptions.profiles,
 * $validate's profile) and every profile the server requires for its type
 * (REQUIRED_PROFILES). Issues the profiles repeat from the base are reported once; the others
 * name the profile they come from.
 *
 * A profile that cannot be used (unknown here, no snapshot) is what the HL7 validator and
 * HAPI make of it: a warning when the resource merely claims it, an error when it was asked
 * for or is required, because then the resource cannot be shown to conform.
 */
import type { OperationOutcomeIssue, Resource, StructureDefinition, ValueSet } from '@medplum/fhirtypes';
import { isKnownResourceType } from '../fhir/definitions';
import { issue } from '../fhir/outcome';
import type { CodeChecker, ResourceValidator, TerminologyService, ValidationOptions } from '../services';
import { HL7_SD, type ProfileRegistry } from './profiles';
import { Walk } from './walker';

type Reason = 'claimed' | 'requested' | 'required';

/**
 * What makes two issues the same problem: severity, code, expression and text, the text without
 * the element path it starts with (the base walk says "Signature.sigFormat: ...", a profile
 * "Provenance.signature.sigFormat: ...", an extension's own definition "Extension.value[x]: ...")
 * and without the profile it came from.
 */
function issueKey(i: OperationOutcomeIssue): string {
  const text = (i.diagnostics ?? '').replace(/ \(profile [^()\s]+\)$/, '').replace(/^[A-Z][A-Za-z0-9]*(\.[A-Za-z0-9\[\]]+)*: /, '');
  return `${i.severity}|${i.code}|${i.expression?.join(',')}|${text}`;
}

/** Issues in order, each problem once. */
function dedupe(issues: OperationOutcomeIssue[]): OperationOutcomeIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = issueKey(i);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Codes a ValueSet enumerates (compose.include.concept) that a code system known here
 * completely does not define: a warning on the definition. $expand leaves such a code out
 * of the expansion (as the HL7 terminology ecosystem tests expect of simple-expand-enum-bad),
 * so the author learns of it here, when the definition is written or $validate-d. Only
 * codes certainly undefined count: a fragment, an unloaded system (SNOMED CT) or an unknown
 * version says nothing.
 */
async function undefinedComposeCodes(vs: ValueSet, checker: CodeChecker): Promise<OperationOutcomeIssue[]> {
  const issues: OperationOutcomeIssue[] = [];
  const includes = Array.isArray(vs.compose?.include) ? vs.compose.include : [];
  for (const [i, include] of includes.entries()) {
    if (typeof include?.system !== 'string' || !Array.isArray(include.concept)) continue;
    for (const [j, concept] of include.concept.entries()) {
      if (typeof concept?.code !== 'string') continue;
      const version = typeof include.version === 'string' ? include.version : undefined;
      const check = await checker.validateCodeInSystem({ system: include.system, code: concept.code, version });
      if (check.unknown || check.result) continue;
      issues.push(
        issue(
          'warning',
          'code-invalid',
          `${check.message ?? `Unknown code "${concept.code}" in the code system ${include.system}`}: it is not part of the value set's expansion`,
          `ValueSet.compose.include[${i}].concept[${j}].code`
        )
      );
    }
  }
  return issues;
}

export class Validator implements ResourceValidator {
  constructor(
    readonly registry: ProfileRegistry,
    private readonly terminology: () => TerminologyService,
    /** Resource type -> canonical URLs of the profiles every resource of that type must conform to. */
    readonly required: ReadonlyMap<string, string[]>
  ) {}

  async validate(resource: Resource, options: ValidationOptions): Promise<OperationOutcomeIssue[]> {
    if (options.mode === 'delete') return [];
    if (!resource || typeof resource !== 'object' || Array.isArray(resource)) {
      return [issue('error', 'structure', 'The content is not a resource (a JSON object with a resourceType)')];
    }
    const type = resource.resourceType;
    const base = typeof type === 'string' && isKnownResourceType(type) ? this.registry.baseType(type) : undefined;
    if (!base) {
      return [issue('error', 'structure', `Unknown resource type "${String(type)}"`, 'resourceType')];
    }
    const session = this.registry.session(options.scope);
    const checker = this.terminology().checker(options.scope);
    const walk = new Walk(this.registry, session, checker, { checkCodeSystems: true });
    await walk.resource(resource, base, type);
    let issues = walk.issues;
    if (type === 'StructureDefinition') {
      const usability = this.registry.usability(resource as StructureDefinition);
      if (usability) issues.push(usability);
    }
    if (type === 'ValueSet') issues.push(...(await undefinedComposeCodes(resource as ValueSet, checker)));
    const seen = new Set(issues.map(issueKey));
    // Expressions whose binding a profile replaced: the base definition's binding no longer applies there.
    const rebound = new Set<string>();

    for (const [url, reason] of this.profilesFor(resource, options)) {
      if (url === HL7_SD + type) continue;
      const strict = reason !== 'claimed';
      const why = reason === 'required' ? ` (this server requires it for ${type})` : reason === 'requested' ? ' (requested)' : '';
      const found = await this.registry.resolve(url, session);
      if (!found.profile) {
        const text =
          found.missing === 'unknown'
            ? `The profile ${url} is not known on this server, so the resource could not be checked against it${why}`
            : found.message + why;
        issues.push(issue(strict ? 'error' : 'warning', found.missing === 'unknown' ? 'not-found' : 'not-supported', text, type));
        continue;
      }
      if (found.profile.type !== type) {
        issues.push(issue('error', 'structure', `The profile ${url} is a profile of ${found.profile.type}, not of ${type}${why}`, type));
        continue;
      }
      const side = new Walk(this.registry, session, checker, { checkCodeSystems: false });
      await side.resource(resource, found.profile, type);
      for (const [path, vs] of side.bound) if (walk.bound.get(path) !== vs) rebound.add(path);
      for (const i of side.issues) {
        const key = issueKey(i);
        if (seen.has(key)) continue;
        seen.add(key);
        issues.push({ ...i, diagnostics: `${i.diagnostics} (profile ${url})` });
      }
    }
    if (rebound.size) issues = issues.filter((i) => !(walk.bindingIssues.has(i) && rebound.has(i.expression?.[0] ?? '')));
    return dedupe(issues);
  }

  /** Every profile to check, each once, with the strongest reason it applies. */
  private profilesFor(resource: Resource, options: ValidationOptions): Map<string, Reason> {
    const result = new Map<string, Reason>();
    const claimed = resource.meta?.profile;
    if (Array.isArray(claimed)) {
      for (const url of claimed) if (typeof url === 'string' && url) result.set(url, 'claimed');
    }
    for (const url of options.profiles ?? []) result.set(url, 'requested');
    for (const url of this.required.get(resource.resourceType) ?? []) result.set(url, 'required');
    return result;
  }
}
