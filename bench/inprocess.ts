/**
 * Measurements made inside the harness with the server's own services (createServices and
 * every module, as a server process builds them): the validator's time per resource, and
 * EXPLAIN ANALYZE of the SQL the search engine runs for the common searches.
 */
import type { Resource } from '@medplum/fhirtypes';
import { loadConfig } from '../src/config';
import { systemContext } from '../src/fhir/system-context';
import { setLogLevel } from '../src/logger';
import { MODULES } from '../src/modules';
import { createServices } from '../src/server';
import type { Services } from '../src/services';
import { Database } from '../src/store/database';
import type { Sql } from '../src/store/sql';
import { patientRecord } from './data/generator';
import { latencyStats } from './loadgen/main';
import type { LatencyStats, PatientFixture, SearchName } from './loadgen/protocol';
import { fhirSearch } from './loadgen/workloads';

export interface ServicesHandle {
  services: Services;
  close(): Promise<void>;
}

export async function openServices(databaseUrl: string): Promise<ServicesHandle> {
  setLogLevel('error');
  const config = loadConfig({ ...process.env, DATABASE_URL: databaseUrl, PORT: '0', LOG_LEVEL: 'error' });
  const db = new Database(databaseUrl, 4);
  const services = createServices(config, db);
  for (const module of MODULES) {
    await module.install(services);
  }
  return {
    services,
    async close() {
      for (const close of services.onClose) await close();
      await db.close();
    },
  };
}

export interface ValidationTiming {
  resourceType: string;
  resources: number;
  /** Wall-clock microseconds per resource. */
  latencyUs: LatencyStats;
  /** Mean CPU microseconds per resource (robust to a busy machine, unlike wall-clock time). */
  cpuUs: number;
  /** Resources that had an error-level issue (should be none). */
  invalid: number;
}

/** Validates every resource of `patients` generated records (after a warm-up) and times each. */
export async function timeValidation(services: Services, seed: number, patients: number): Promise<ValidationTiming[]> {
  // One scope per patient record, as a transaction Bundle is validated: the stored-conformance
  // generation is read once per record (a database round trip), not once per resource, so the
  // figure is what ingest pays for validation and not a query per resource.
  const validate = (r: Resource, scope: object) => services.validator.validate(r, { mode: 'create', scope });
  // Warm-up: first use compiles profiles, expressions and value sets.
  const warmup = {};
  for (const entry of patientRecord(seed, 1_000_000).bundle.entry ?? []) await validate(entry.resource as Resource, warmup);
  const byType = new Map<string, { samples: number[]; cpu: number; invalid: number }>();
  // Generated before timing: the generator's garbage would otherwise be collected (by helper
  // threads that process.cpuUsage counts) while the first resources of each record validate.
  const records = Array.from({ length: patients }, (_, i) => (patientRecord(seed, 1_000_001 + i).bundle.entry ?? []).map((e) => e.resource as Resource));
  for (const record of records) {
    const scope = {};
    for (const resource of record) {
      const cpu = process.cpuUsage();
      const start = performance.now();
      const issues = await validate(resource, scope);
      const us = (performance.now() - start) * 1000;
      const used = process.cpuUsage(cpu);
      let slot = byType.get(resource.resourceType);
      if (!slot) byType.set(resource.resourceType, (slot = { samples: [], cpu: 0, invalid: 0 }));
      slot.samples.push(us);
      slot.cpu += used.user + used.system;
      if (issues.some((i) => i.severity === 'error' || i.severity === 'fatal')) slot.invalid++;
    }
  }
  const all = [...byType.values()].flatMap((s) => s.samples);
  const cpu = [...byType.values()].reduce((n, s) => n + s.cpu, 0);
  const round = (x: number) => Math.round(x * 10) / 10;
  return [
    ...[...byType].map(([resourceType, s]) => ({
      resourceType,
      resources: s.samples.length,
      latencyUs: latencyStats(s.samples),
      cpuUs: round(s.cpu / s.samples.length),
      invalid: s.invalid,
    })),
    {
      resourceType: 'all',
      resources: all.length,
      latencyUs: latencyStats(all),
      cpuUs: round(cpu / all.length),
      invalid: [...byType.values()].reduce((n, s) => n + s.invalid, 0),
    },
  ];
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  Plans?: PlanNode[];
}

export interface ExplainedSearch {
  search: SearchName;
  url: string;
  /** One entry per statement the search ran (the page, then includes). */
  statements: { sql: string; executionMs: number; seqScans: string[]; indexes: string[] }[];
  verdict: string;
  usesIndexes: boolean;
}

function walk(node: PlanNode, seqScans: Set<string>, indexes: Set<string>): void {
  if (node['Node Type'] === 'Seq Scan' && node['Relation Name']) seqScans.add(node['Relation Name']);
  if (node['Index Name']) indexes.add(node['Index Name']);
  node.Plans?.forEach((child) => walk(child, seqScans, indexes));
}

/**
 * Runs each search through the server's search engine with a database that EXPLAINs every
 * statement before running it, so the plans are those of the SQL the server really sends.
 */
export async function explainSearches(services: Services, patient: PatientFixture, searches: readonly SearchName[]): Promise<ExplainedSearch[]> {
  const results: ExplainedSearch[] = [];
  for (const search of searches) {
    const statements: ExplainedSearch['statements'] = [];
    const explaining = {
      query: async (q: Sql) => {
        const { text, values } = q.toQuery();
        const explained = await services.db.pool.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`, values);
        const plan = explained.rows[0]['QUERY PLAN'][0] as { Plan: PlanNode; 'Execution Time': number };
        const seqScans = new Set<string>();
        const indexes = new Set<string>();
        walk(plan.Plan, seqScans, indexes);
        statements.push({ sql: text.replace(/\s+/g, ' ').trim(), executionMs: plan['Execution Time'], seqScans: [...seqScans], indexes: [...indexes] });
        return services.db.pool.query(text, values);
      },
    };
    const ctx = systemContext({ ...services, db: explaining as unknown as Database });
    const [type, query] = fhirSearch(search, patient, '8867-4');
    await services.search.search(ctx, { resourceType: type, params: [...new URLSearchParams(query).entries()], url: `${services.config.baseUrl}/${type}?${query}` });
    const seq = [...new Set(statements.flatMap((s) => s.seqScans))];
    results.push({
      search,
      url: `${type}?${decodeURIComponent(query)}`,
      statements,
      usesIndexes: seq.length === 0,
      verdict: seq.length === 0 ? `index scans (${[...new Set(statements.flatMap((s) => s.indexes))].join(', ')})` : `sequential scan of ${seq.join(', ')}`,
    });
  }
  return results;
}
