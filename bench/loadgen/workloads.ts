/**
 * The requests of each workload, for either target. A workload hands each virtual client
 * its next request and learns of the answer (the CRUD cycle needs the id it created).
 */
import { crudChange, crudResource, CRUD_TYPES } from '../data/crud';
import { patientRecord } from '../data/generator';
import { OID } from '../data/national';
import { LOINC, REPORT_CATEGORY } from '../data/clinical';
import { Random } from '../data/random';
import type { PatientFixture, SearchName, Target, WorkloadSpec } from './protocol';

/** One request of a workload. */
export interface LoadRequest {
  /** The operation, for per-operation statistics. */
  op: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  body?: string;
  expect: number;
  /** Work units this request carries (resources of an ingest Bundle). */
  units?: number;
}

export interface Workload {
  /** The next request of virtual client `client`, or undefined when it has nothing left. */
  next(client: number): LoadRequest | undefined;
  /** The response to that client's last request. */
  answered?(client: number, request: LoadRequest, status: number, location: string | undefined, body: string): void;
}

export const REQUEST_HEADERS = { 'content-type': 'application/fhir+json' };

export function createWorkload(spec: WorkloadSpec, target: Target): Workload {
  switch (spec.kind) {
    case 'ingest':
      return ingest(spec, target);
    case 'read':
      return read(spec, target);
    case 'crud':
      return crud(spec, target);
    case 'search':
      return search(spec, target);
  }
}

function ingest(spec: Extract<WorkloadSpec, { kind: 'ingest' }>, target: Target): Workload {
  let nextIndex = spec.from;
  return {
    next() {
      if (nextIndex >= spec.to) return undefined;
      const record = patientRecord(spec.seed, nextIndex++);
      return {
        op: 'transaction',
        method: 'POST',
        path: target.kind === 'fhir' ? target.basePath : `${target.basePath}/bundle`,
        body: JSON.stringify(record.bundle),
        expect: 200,
        units: record.resourceCount,
      };
    },
  };
}

function read(spec: Extract<WorkloadSpec, { kind: 'read' }>, target: Target): Workload {
  const rng = Random.of(7);
  return {
    next() {
      const ref = spec.refs[Math.floor(rng.next() * spec.refs.length)];
      const path = target.kind === 'fhir' ? `${target.basePath}/${ref.type}/${ref.id}` : `${target.basePath}/resource/${ref.rid}`;
      return { op: 'read', method: 'GET', path, expect: 200 };
    },
  };
}

type CrudStep = 'create' | 'read' | 'update' | 'delete';
const CRUD_STEPS: CrudStep[] = ['create', 'read', 'update', 'delete'];

/** Each client cycles create → read → update → delete over the CRUD types. */
function crud(spec: Extract<WorkloadSpec, { kind: 'crud' }>, target: Target): Workload {
  interface State {
    step: number;
    n: number;
    id?: string;
    resource?: Record<string, unknown>;
  }
  const states = new Map<number, State>();
  let counter = spec.offset;
  const base = target.basePath;
  return {
    next(client) {
      let state = states.get(client);
      if (!state) states.set(client, (state = { step: 0, n: counter++ }));
      const type = CRUD_TYPES[state.n % CRUD_TYPES.length];
      const step = CRUD_STEPS[state.step];
      if (step !== 'create' && !state.id) {
        // The create failed: start a new cycle.
        state.step = 0;
        state.n = counter++;
        return this.next(client);
      }
      const path = target.kind === 'fhir' ? `${base}/${type}` : `${base}/crud/${type}`;
      switch (step) {
        case 'create': {
          const patient = spec.patientIds[state.n % spec.patientIds.length];
          state.resource = crudResource(spec.seed, state.n, type, patient) as unknown as Record<string, unknown>;
          return { op: `create`, method: 'POST', path, body: JSON.stringify(state.resource), expect: 201 };
        }
        case 'read':
          return { op: `read`, method: 'GET', path: `${path}/${state.id}`, expect: 200 };
        case 'update': {
          const changed = crudChange({ ...(state.resource as object), id: state.id } as never);
          return { op: `update`, method: 'PUT', path: `${path}/${state.id}`, body: JSON.stringify(changed), expect: 200 };
        }
        case 'delete':
          return { op: `delete`, method: 'DELETE', path: `${path}/${state.id}`, expect: 204 };
      }
    },
    answered(client, request, status, location, body) {
      const state = states.get(client)!;
      if (request.op === 'create') {
        state.id = status === 201 ? createdId(target, location, body) : undefined;
      }
      state.step = (state.step + 1) % CRUD_STEPS.length;
      if (state.step === 0) {
        state.n = counter++;
        state.id = undefined;
      }
    },
  };
}

function createdId(target: Target, location: string | undefined, body: string): string | undefined {
  if (target.kind === 'fhir') {
    return location ? /\/([^/]+)\/_history\/[^/]+$/.exec(location)?.[1] : undefined;
  }
  try {
    return (JSON.parse(body) as { id?: string }).id;
  } catch {
    return undefined;
  }
}

const OBSERVATION_CODES = ['8867-4', '85354-9', '2345-7', '718-7', '2093-3', '1742-6', '6690-2'];
const SINCE = '2023-01-01';

/** The search mix: every search in turn, each about a random loaded patient. */
function search(spec: Extract<WorkloadSpec, { kind: 'search' }>, target: Target): Workload {
  const rng = Random.of(11);
  let turn = 0;
  return {
    next() {
      const name = spec.searches[turn++ % spec.searches.length];
      const patient = spec.patients[Math.floor(rng.next() * spec.patients.length)];
      const code = rng.pick(OBSERVATION_CODES);
      const [type, query] =
        target.kind === 'fhir' ? fhirSearch(name, patient, code) : [`search/${encodeURIComponent(name)}`, rawSearch(name, patient, code)];
      return { op: name, method: 'GET', path: `${target.basePath}/${type}?${query}`, expect: 200 };
    },
  };
}

export function fhirSearch(name: SearchName, p: PatientFixture, code: string): [string, string] {
  const q = (params: Record<string, string>) => new URLSearchParams(params).toString();
  const identifier = `${OID.residentId}|${p.residentId}`;
  const lab = `${REPORT_CATEGORY}|LAB`;
  switch (name) {
    case 'Patient?identifier':
      return ['Patient', q({ identifier })];
    case 'Patient?name&birthdate':
      return ['Patient', q({ name: p.family, birthdate: p.birthDate })];
    case 'Observation?patient&code&date':
      return ['Observation', q({ patient: p.id, code: `${LOINC}|${code}`, date: `ge${SINCE}` })];
    case 'DiagnosticReport?patient&category':
      return ['DiagnosticReport', q({ patient: p.id, category: lab })];
    case 'Encounter?patient&date':
      return ['Encounter', q({ patient: p.id, date: `ge${SINCE}` })];
    case 'Observation?patient.identifier&code (chained)':
      return ['Observation', q({ 'patient.identifier': identifier, code: `${LOINC}|${code}` })];
    case 'DiagnosticReport?patient&category&_include':
      return ['DiagnosticReport', q({ patient: p.id, category: lab, _include: 'DiagnosticReport:result' })];
  }
}

/** The baseline server takes the values alone and runs the equivalent SQL. */
function rawSearch(_name: SearchName, p: PatientFixture, code: string): string {
  return new URLSearchParams({
    patient: p.id,
    system: OID.residentId,
    identifier: p.residentId,
    family: p.family,
    birthdate: p.birthDate,
    code,
    since: SINCE,
  }).toString();
}
