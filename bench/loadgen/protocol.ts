/**
 * What the harness asks of the load-generating process, and what it answers. The same
 * workload runs against the FHIR server ("fhir") and against the raw-PostgreSQL baseline
 * server ("raw"), which speak different URLs for the same work.
 */

export type TargetKind = 'fhir' | 'raw';

export interface Target {
  kind: TargetKind;
  /** http://127.0.0.1:port */
  origin: string;
  /** "/fhir" (the FHIR base path) or "/raw". */
  basePath: string;
  headers?: Record<string, string>;
}

/** What the search mix needs to know about a loaded patient. */
export interface PatientFixture {
  id: string;
  residentId: string;
  family: string;
  birthDate: string;
}

export const SEARCHES = [
  'Patient?identifier',
  'Patient?name&birthdate',
  'Observation?patient&code&date',
  'DiagnosticReport?patient&category',
  'Encounter?patient&date',
  'Observation?patient.identifier&code (chained)',
  'DiagnosticReport?patient&category&_include',
] as const;
export type SearchName = (typeof SEARCHES)[number];

export type WorkloadSpec =
  /** Transaction Bundles of patients [from, to) of the generator, each once. */
  | { kind: 'ingest'; seed: number; from: number; to: number }
  | { kind: 'read'; refs: { type: string; id: string; rid: string }[] }
  | { kind: 'crud'; seed: number; patientIds: string[]; offset: number }
  | { kind: 'search'; patients: PatientFixture[]; searches: SearchName[] };

export interface RunSpec {
  name: string;
  target: Target;
  concurrency: number;
  /** Measured time; ingest stops earlier when its patients are done. */
  durationMs: number;
  /** Requests in this first period are sent but not counted. */
  warmupMs: number;
  workload: WorkloadSpec;
}

export interface LatencyStats {
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface OpResult {
  requests: number;
  errors: number;
  latency: LatencyStats;
}

export interface RunResult {
  name: string;
  target: TargetKind;
  concurrency: number;
  elapsedMs: number;
  requests: number;
  errors: number;
  /** Requests per second over the measured period. */
  rps: number;
  /** Work units (resources for ingest) and their rate; equal to requests otherwise. */
  units: number;
  unitsPerSecond: number;
  latency: LatencyStats;
  ops: Record<string, OpResult>;
  statuses: Record<string, number>;
  /** A few failed responses, for the report. */
  errorSamples: string[];
}

export type ToLoadgen = { type: 'run'; spec: RunSpec } | { type: 'exit' };
export type FromLoadgen =
  | { type: 'result'; result: RunResult }
  | { type: 'failed'; message: string }
  /** The warm-up is over: from now on requests count (the harness starts its CPU counters). */
  | { type: 'measuring' };
