/**
 * The one error type of the server: an HTTP status plus the OperationOutcome that explains it.
 * Thrown anywhere, rendered once by the HTTP layer (or turned into a Bundle entry response).
 */
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

export type IssueSeverity = OperationOutcomeIssue['severity'];
export type IssueType = OperationOutcomeIssue['code'];

export class FhirError extends Error {
  readonly status: number;
  readonly outcome: OperationOutcome;
  /** Extra response headers the error needs (WWW-Authenticate, Allow, ...). */
  readonly headers: Record<string, string>;

  constructor(status: number, outcome: OperationOutcome, headers: Record<string, string> = {}) {
    super(outcomeText(outcome));
    this.name = 'FhirError';
    this.status = status;
    this.outcome = outcome;
    this.headers = headers;
  }
}

export function issue(
  severity: IssueSeverity,
  code: IssueType,
  diagnostics: string,
  expression?: string | string[]
): OperationOutcomeIssue {
  const result: OperationOutcomeIssue = { severity, code, diagnostics };
  if (expression !== undefined) {
    result.expression = Array.isArray(expression) ? expression : [expression];
  }
  return result;
}

export function outcome(...issues: OperationOutcomeIssue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

export function outcomeText(value: OperationOutcome): string {
  return (value.issue ?? [])
    .map((i) => i.diagnostics ?? i.details?.text ?? i.code)
    .filter(Boolean)
    .join('; ');
}

/** An informational outcome, for successful deletes and Prefer: return=OperationOutcome. */
export function informational(text: string): OperationOutcome {
  return outcome(issue('information', 'informational', text));
}

function fail(status: number, code: IssueType, diagnostics: string, expression?: string | string[]): FhirError {
  return new FhirError(status, outcome(issue('error', code, diagnostics, expression)));
}

export const errors = {
  badRequest: (msg: string, expression?: string | string[]) => fail(400, 'invalid', msg, expression),
  structure: (msg: string, expression?: string | string[]) => fail(400, 'structure', msg, expression),
  unauthorized: (msg: string, wwwAuthenticate: string) =>
    new FhirError(401, outcome(issue('error', 'login', msg)), { 'WWW-Authenticate': wwwAuthenticate }),
  forbidden: (msg: string) => fail(403, 'forbidden', msg),
  /** A 403 because the access token's scopes do not cover the request (RFC 6750 §3.1: WWW-Authenticate with insufficient_scope). */
  insufficientScope: (msg: string, wwwAuthenticate: string) =>
    new FhirError(403, outcome(issue('error', 'forbidden', msg)), { 'WWW-Authenticate': wwwAuthenticate }),
  notFound: (msg: string) => fail(404, 'not-found', msg),
  methodNotAllowed: (msg: string, allow?: string[]) =>
    new FhirError(405, outcome(issue('error', 'not-supported', msg)), allow ? { Allow: allow.join(', ') } : {}),
  notAcceptable: (msg: string) => fail(406, 'not-supported', msg),
  conflict: (msg: string) => fail(409, 'conflict', msg),
  gone: (msg: string) => fail(410, 'deleted', msg),
  preconditionFailed: (msg: string) => fail(412, 'conflict', msg),
  multipleMatches: (msg: string) => fail(412, 'multiple-matches', msg),
  payloadTooLarge: (msg: string) => fail(413, 'too-long', msg),
  /** A request the server refuses to run because of its size (too many search parameters, values, sort keys). */
  tooCostly: (msg: string, expression?: string) => fail(400, 'too-costly', msg, expression),
  unsupportedMediaType: (msg: string) => fail(415, 'not-supported', msg),
  unprocessable: (issues: OperationOutcomeIssue[]) => new FhirError(422, outcome(...issues)),
  businessRule: (msg: string, expression?: string | string[]) => fail(422, 'business-rule', msg, expression),
  notSupported: (msg: string) => fail(501, 'not-supported', msg),
  internal: (msg: string) => fail(500, 'exception', msg),
};

/**
 * Normalizes anything thrown into a FhirError. Errors from @medplum/core carry an
 * OperationOutcome; they arise from bad client input (invalid FHIRPath, unparseable search
 * values), so they become 400s. Anything else is a bug: 500 without internal details.
 */
export function toFhirError(err: unknown): FhirError {
  if (err instanceof FhirError) {
    return err;
  }
  const maybe = err as { outcome?: OperationOutcome } | undefined;
  if (maybe?.outcome?.resourceType === 'OperationOutcome') {
    const issues = (maybe.outcome.issue ?? []).map((i) => ({
      ...i,
      diagnostics: i.diagnostics ?? i.details?.text,
    }));
    return new FhirError(400, outcome(...issues));
  }
  return fail(500, 'exception', 'Internal server error');
}
