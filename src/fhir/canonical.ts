/**
 * The canonical base URL of this project's own conformance resources (profiles, extensions,
 * value sets, operation definitions). Canonical URLs are identifiers, not addresses of this
 * deployment, so they are the same on every server.
 */
export const CANONICAL_BASE = 'http://fhir-server.dev/cn';
