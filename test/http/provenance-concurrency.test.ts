/**
 * Many concurrent writes (creates, updates of one resource, transactions, deletes) over few
 * chains: every version gets exactly one Provenance and every chain stays whole.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';
import { param } from '../helpers/provenance';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  // Few chains, so that concurrent writes contend for the same heads.
  server = await startTestServer({ PROVENANCE_CHAINS: '3', DB_POOL_SIZE: '8' });
  client = server.client();
});
afterAll(async () => server.close());

test('concurrent writes keep every chain intact', async () => {
  const start = new Date();
  const patients = await Promise.all([1, 2, 3, 4].map(async () => (await client.post('Patient', { resourceType: 'Patient' })).body.id));
  const shared = (await client.post('Basic', { resourceType: 'Basic', code: { text: 'counter' } })).body.id;
  const work: Promise<{ status: number }>[] = [];
  for (let i = 0; i < 60; i++) {
    const patient = patients[i % patients.length];
    switch (i % 4) {
      case 0:
        work.push(client.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: `o${i}` }, subject: { reference: `Patient/${patient}` } }));
        break;
      case 1:
        work.push(client.put(`Basic/${shared}`, { resourceType: 'Basic', id: shared, code: { text: `v${i}` } }));
        break;
      case 2:
        work.push(
          client.post('', {
            resourceType: 'Bundle',
            type: 'transaction',
            entry: [
              { resource: { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${patient}` } }, request: { method: 'POST', url: 'Encounter' } },
              { resource: { resourceType: 'Basic', code: { text: `t${i}` } }, request: { method: 'POST', url: 'Basic' } },
            ],
          })
        );
        break;
      default:
        work.push(
          (async () => {
            const created = await client.post('Basic', { resourceType: 'Basic', code: { text: `d${i}` } });
            return client.delete(`Basic/${created.body.id}`);
          })()
        );
    }
  }
  const statuses = (await Promise.all(work)).map((r) => r.status);
  expect(statuses.every((s) => s < 300)).toBe(true);

  const versions = await server.pool.query(`SELECT count(*)::int AS n FROM resource_version WHERE resource_type NOT IN ('AuditEvent', 'Provenance')`);
  // No two versions of one transaction here share a record and activity: one Provenance each.
  const links = await server.pool.query(
    'SELECT (SELECT count(*)::int FROM provenance_link) AS n, (SELECT count(DISTINCT (target_rid, target_version))::int FROM provenance_target) AS targets'
  );
  expect(links.rows[0]).toEqual({ n: versions.rows[0].n, targets: versions.rows[0].n });
  const chains = await server.pool.query('SELECT c.chain, c.seq, count(l.*)::int AS links, min(l.seq) AS first FROM provenance_chain c LEFT JOIN provenance_link l USING (chain) GROUP BY c.chain, c.seq ORDER BY c.chain');
  // The template's profile pack was written under the default 64 chains; this server's writes use 3.
  const used = await server.pool.query('SELECT DISTINCT chain FROM provenance_link WHERE recorded >= $1 ORDER BY chain', [start]);
  expect(used.rows.map((r) => r.chain)).toEqual([0, 1, 2]);
  for (const row of chains.rows) {
    expect(Number(row.seq)).toBe(row.links);
    if (row.links) expect(Number(row.first)).toBe(1);
  }
  const report = await client.get('$verify-chain');
  expect(param(report.body, 'issues').resource.issue.filter((i: any) => i.severity === 'error')).toEqual([]);
  expect(param(report.body, 'result').valueBoolean).toBe(true);
  expect(param(report.body, 'checked').valueInteger).toBe(versions.rows[0].n);
});
