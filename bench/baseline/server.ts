/**
 * The baseline: a minimal HTTP server that does the same work as the FHIR server with the
 * least SQL there is, through the same driver (pg), against the same PostgreSQL and, for
 * reads and searches, the same tables and indexes. No routing framework, no validation, no
 * access control, no history, no audit, no Bundles: what is left is the cost of HTTP, JSON
 * and PostgreSQL, and the FHIR server's figures are reported as ratios to it.
 *
 *   POST   /raw/bundle              one multi-row INSERT of a transaction Bundle's resources
 *   POST   /raw/crud/{type}         INSERT one JSONB row;  GET/PUT/DELETE /raw/crud/{type}/{id}
 *   GET    /raw/resource/{rid}      primary-key SELECT from the server's resource table
 *   GET    /raw/search/{name}?...   the indexed lookup each search of the mix needs
 *
 * Runs WORKERS processes (Node cluster) with DB_POOL_SIZE connections each, like the server.
 */
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';
import { paramKey } from '../../src/search/registry';
import { normalizeText, escapeLike } from '../../src/search/text';
import { instantRange } from '../../src/fhir/params';
import { ridOf } from '../../src/store/rid';
import { REPORT_CATEGORY, LOINC } from '../data/clinical';
import type { SearchName } from '../loadgen/protocol';

export const RAW_TABLE_DDL = `CREATE TABLE IF NOT EXISTS bench_raw (
  rid uuid PRIMARY KEY, resource_type text NOT NULL, content jsonb NOT NULL)`;

const PAGE = 20;

const key = {
  patientIdentifier: paramKey('Patient', 'identifier'),
  patientName: paramKey('Patient', 'name'),
  patientBirthdate: paramKey('Patient', 'birthdate'),
  observationPatient: paramKey('Observation', 'patient'),
  observationCode: paramKey('Observation', 'code'),
  observationDate: paramKey('Observation', 'date'),
  reportPatient: paramKey('DiagnosticReport', 'patient'),
  reportCategory: paramKey('DiagnosticReport', 'category'),
  reportResult: paramKey('DiagnosticReport', 'result'),
  encounterPatient: paramKey('Encounter', 'patient'),
  encounterDate: paramKey('Encounter', 'date'),
};

type Query = { text: string; values: unknown[] };

/** The SQL each search of the mix needs, as one would write it by hand. */
function searchSql(name: SearchName, q: URLSearchParams): Query {
  const patientRid = ridOf('Patient', q.get('patient') ?? '');
  const since = instantRange(q.get('since') ?? '')![0].toISOString();
  const page = `ORDER BY r.last_updated DESC LIMIT ${PAGE}`;
  switch (name) {
    case 'Patient?identifier':
      return {
        text: `SELECT r.content FROM sp_token t JOIN resource r ON r.rid = t.rid
               WHERE t.p = $1 AND t.code = $2 AND t.system = $3 AND NOT r.deleted ${page}`,
        values: [key.patientIdentifier, q.get('identifier'), q.get('system')],
      };
    case 'Patient?name&birthdate': {
      const [lo, hi] = instantRange(q.get('birthdate') ?? '')!;
      return {
        text: `SELECT r.content FROM resource r
               WHERE r.rid IN (SELECT rid FROM sp_string WHERE p = $1 AND norm LIKE $2)
                 AND r.rid IN (SELECT rid FROM sp_date WHERE p = $3 AND lo >= $4 AND lo <= $5 AND hi <= $5)
                 AND NOT r.deleted ${page}`,
        values: [key.patientName, escapeLike(normalizeText(q.get('family') ?? '')) + '%', key.patientBirthdate, lo, hi],
      };
    }
    case 'Observation?patient&code&date':
      return {
        text: `SELECT r.content FROM resource r
               WHERE r.rid IN (SELECT rid FROM sp_reference WHERE p = $1 AND target_rid = $2)
                 AND r.rid IN (SELECT rid FROM sp_token WHERE p = $3 AND code = $4 AND system = $5)
                 AND r.rid IN (SELECT rid FROM sp_date WHERE p = $6 AND hi >= $7)
                 AND NOT r.deleted ${page}`,
        values: [key.observationPatient, patientRid, key.observationCode, q.get('code'), LOINC, key.observationDate, since],
      };
    case 'DiagnosticReport?patient&category':
    case 'DiagnosticReport?patient&category&_include':
      return {
        text: `SELECT r.rid, r.content FROM resource r
               WHERE r.rid IN (SELECT rid FROM sp_reference WHERE p = $1 AND target_rid = $2)
                 AND r.rid IN (SELECT rid FROM sp_token WHERE p = $3 AND code = 'LAB' AND system = $4)
                 AND NOT r.deleted ${page}`,
        values: [key.reportPatient, patientRid, key.reportCategory, REPORT_CATEGORY],
      };
    case 'Encounter?patient&date':
      return {
        text: `SELECT r.content FROM resource r
               WHERE r.rid IN (SELECT rid FROM sp_reference WHERE p = $1 AND target_rid = $2)
                 AND r.rid IN (SELECT rid FROM sp_date WHERE p = $3 AND hi >= $4)
                 AND NOT r.deleted ${page}`,
        values: [key.encounterPatient, patientRid, key.encounterDate, since],
      };
    case 'Observation?patient.identifier&code (chained)':
      return {
        text: `SELECT r.content FROM resource r
               WHERE r.rid IN (SELECT rid FROM sp_reference WHERE p = $1 AND target_rid IN
                                 (SELECT rid FROM sp_token WHERE p = $2 AND code = $3 AND system = $4))
                 AND r.rid IN (SELECT rid FROM sp_token WHERE p = $5 AND code = $6 AND system = $7)
                 AND NOT r.deleted ${page}`,
        values: [key.observationPatient, key.patientIdentifier, q.get('identifier'), q.get('system'), key.observationCode, q.get('code'), LOINC],
      };
  }
}

function send(res: http.ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function handle(pool: pg.Pool, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://raw');
  const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] !== 'raw') return send(res, 404);
  const [, what, a, b] = parts;

  if (what === 'resource' && req.method === 'GET') {
    const result = await pool.query('SELECT content FROM resource WHERE rid = $1', [a]);
    return result.rows[0] ? send(res, 200, result.rows[0].content) : send(res, 404);
  }
  if (what === 'search' && req.method === 'GET') {
    const name = a as SearchName;
    const query = searchSql(name, url.searchParams);
    const result = await pool.query(query.text, query.values);
    const matches = result.rows.map((row) => row.content);
    if (name === 'DiagnosticReport?patient&category&_include' && result.rows.length) {
      const included = await pool.query(
        `SELECT content FROM resource WHERE rid IN (SELECT target_rid FROM sp_reference WHERE rid = ANY($1::uuid[]) AND p = $2) AND NOT deleted`,
        [result.rows.map((row) => row.rid), key.reportResult]
      );
      matches.push(...included.rows.map((row) => row.content));
    }
    return send(res, 200, matches);
  }
  if (what === 'bundle' && req.method === 'POST') {
    const bundle = (await readBody(req)) as { entry?: { resource: { resourceType: string } }[] };
    const resources = (bundle.entry ?? []).map((e) => e.resource);
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        'INSERT INTO bench_raw (rid, resource_type, content) SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[])',
        [resources.map(() => randomUUID()), resources.map((r) => r.resourceType), resources.map((r) => JSON.stringify(r))]
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK');
      throw err;
    } finally {
      client.release();
    }
    return send(res, 200, { count: resources.length });
  }
  if (what === 'crud' && a) {
    switch (req.method) {
      case 'POST': {
        const resource = (await readBody(req)) as Record<string, unknown>;
        const rid = randomUUID();
        await pool.query('INSERT INTO bench_raw (rid, resource_type, content) VALUES ($1, $2, $3)', [rid, a, resource]);
        return send(res, 201, { ...resource, id: rid });
      }
      case 'GET': {
        const result = await pool.query('SELECT content FROM bench_raw WHERE rid = $1', [b]);
        return result.rows[0] ? send(res, 200, { ...result.rows[0].content, id: b }) : send(res, 404);
      }
      case 'PUT': {
        const resource = await readBody(req);
        const result = await pool.query('UPDATE bench_raw SET content = $2 WHERE rid = $1', [b, resource]);
        return result.rowCount ? send(res, 200, resource) : send(res, 404);
      }
      case 'DELETE':
        await pool.query('DELETE FROM bench_raw WHERE rid = $1', [b]);
        return send(res, 204);
    }
  }
  send(res, 404);
}

function serve(): void {
  // Idle connections are kept as the FHIR server keeps them (DB_POOL_IDLE_TIMEOUT, default 0).
  const pool = new pg.Pool({
    connectionString: process.env.DATABASE_URL,
    max: Number(process.env.DB_POOL_SIZE || 10),
    idleTimeoutMillis: Number(process.env.DB_POOL_IDLE_TIMEOUT || 0) * 1000,
  });
  pool.on('error', () => undefined);
  const server = http.createServer((req, res) => {
    handle(pool, req, res).catch((err) => send(res, 500, { error: (err as Error).message }));
  });
  server.keepAliveTimeout = 65_000;
  server.listen(Number(process.env.PORT), '127.0.0.1');
}

if (require.main === module) {
  const workers = Math.max(1, Number(process.env.WORKERS || 1));
  if (workers > 1 && cluster.isPrimary) {
    for (let i = 0; i < workers; i++) cluster.fork();
    process.on('SIGTERM', () => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
      process.exit(0);
    });
  } else {
    serve();
    process.on('SIGTERM', () => process.exit(0));
  }
}
