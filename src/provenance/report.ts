/**
 * How verification answers: a Parameters resource with the overall `result` (boolean, as
 * $validate-code answers), one `provenance` (or `chain`) part per thing checked, and an
 * `issues` OperationOutcome with one issue per problem, each coded with what did not match
 * (issue.details, system RESULT_SYSTEM) and pointing at the signature (expression).
 */
import type { OperationOutcomeIssue, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { CANONICAL_BASE } from '../fhir/canonical';
import { issue, outcome, type IssueType } from '../fhir/outcome';
import type { SignatureCheck } from './checks';

export const RESULT_SYSTEM = `${CANONICAL_BASE}/CodeSystem/provenance-verification`;

/** Problems found, each with its code: a SignatureResult, or a chain/record problem. */
export type ProblemCode =
  | Exclude<SignatureCheck['result'], 'valid'>
  | 'provenance-missing'
  | 'link-missing'
  | 'chain-broken'
  | 'out-of-order'
  | 'head-mismatch';

const ISSUE_TYPE: Record<ProblemCode, IssueType> = {
  malformed: 'invalid',
  'unsupported-format': 'not-supported',
  'unknown-key': 'security',
  'target-missing': 'not-found',
  'digest-mismatch': 'security',
  'statement-mismatch': 'security',
  'bad-signature': 'security',
  'provenance-missing': 'not-found',
  'link-missing': 'not-found',
  'chain-broken': 'security',
  'out-of-order': 'security',
  'head-mismatch': 'security',
};

export function problem(code: ProblemCode, diagnostics: string, expression?: string): OperationOutcomeIssue {
  return { ...issue('error', ISSUE_TYPE[code], diagnostics, expression), details: { coding: [{ system: RESULT_SYSTEM, code }] } };
}

export function signatureIssue(provenanceId: string, check: SignatureCheck): OperationOutcomeIssue | undefined {
  if (check.result === 'valid') return undefined;
  return problem(check.result, `Provenance/${provenanceId} signature[${check.index}] (${check.role}): ${check.message}`, `Provenance.signature[${check.index}]`);
}

export function signaturePart(check: SignatureCheck): ParametersParameter {
  const part: ParametersParameter[] = [
    { name: 'index', valueInteger: check.index },
    { name: 'role', valueCode: check.role },
    ...(check.type ?? []).map((coding) => ({ name: 'type', valueCoding: coding })),
    ...(check.who ? [{ name: 'who', valueReference: check.who }] : []),
    ...(check.kid ? [{ name: 'kid', valueString: check.kid }] : []),
    ...(check.alg ? [{ name: 'alg', valueString: check.alg }] : []),
    { name: 'result', valueCode: check.result },
    { name: 'message', valueString: check.message },
    // The author's public key, so that anyone can repeat the check without this server.
    ...(check.jwk ? [{ name: 'key', valueString: JSON.stringify(check.jwk) }] : []),
  ];
  return { name: 'signature', part };
}

/** The answer: result, the parts, and every issue (or one informational issue when all is well). */
export function verificationParameters(parts: ParametersParameter[], issues: OperationOutcomeIssue[], okText: string): Parameters {
  const problems = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'result', valueBoolean: problems.length === 0 },
      ...parts,
      { name: 'issues', resource: outcome(...(issues.length ? issues : [issue('information', 'informational', okText)])) },
    ],
  };
}
