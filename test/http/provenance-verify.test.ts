/**
 * $verify-signature and $verify-chain: valid records verify; rows changed, removed or
 * reordered directly in the database are detected and reported precisely; rotating the
 * signing key keeps every earlier signature verifiable.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';
import { admin, registerClient } from '../helpers/smart';
import { clientCredentialsToken } from '../helpers/server';
import { param, partValue, parts, problems, provenancesOf, publishedJwks } from '../helpers/provenance';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});
afterAll(async () => server.close());

async function newPatient(versions = 1): Promise<string> {
  const id = (await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'V1' }] })).body.id;
  for (let v = 2; v <= versions; v++) {
    expect((await client.put(`Patient/${id}`, { resourceType: 'Patient', id, name: [{ family: `V${v}` }] })).status).toBe(200);
  }
  return id;
}

async function provenanceOf(target: string): Promise<any> {
  const [found] = await provenancesOf(server, target);
  expect(found).toBeDefined();
  return found;
}

const verifyChain = (query = '') => client.get(`$verify-chain${query}`);
const result = (body: any) => param(body, 'result')?.valueBoolean;

/** Runs fn and restores the database afterwards (tampering tests must not leak into each other). */
async function tampered(sqls: string[], fn: () => Promise<void>, restore: string[]): Promise<void> {
  for (const q of sqls) await server.pool.query(q);
  try {
    await fn();
  } finally {
    for (const q of restore) await server.pool.query(q);
  }
}

test('an untouched record verifies: each Provenance, each version, every chain', async () => {
  const id = await newPatient(2);
  const provenance = await provenanceOf(`Patient/${id}/_history/2`);
  const res = await client.get(`Provenance/${provenance.id}/$verify-signature`);
  expect(res.status).toBe(200);
  expect(res.body.resourceType).toBe('Parameters');
  expect(result(res.body)).toBe(true);
  const part = param(res.body, 'provenance');
  expect(partValue(part, 'target')).toEqual({ reference: `Patient/${id}/_history/2` });
  const [signature] = parts(part, 'signature');
  expect(partValue(signature, 'result')).toBe('valid');
  expect(partValue(signature, 'role')).toBe('server');
  expect(param(res.body, 'issues').resource.issue[0].severity).toBe('information');

  const versions = await client.get(`Patient/${id}/$verify-signature`);
  expect(result(versions.body)).toBe(true);
  expect(versions.body.parameter.filter((p: any) => p.name === 'provenance')).toHaveLength(2);
  const one = await client.get(`Patient/${id}/$verify-signature?version=1`);
  expect(result(one.body)).toBe(true);
  expect(partValue(param(one.body, 'provenance'), 'target')).toEqual({ reference: `Patient/${id}/_history/1` });
  expect((await client.get(`Patient/${id}/$verify-signature?version=9`)).status).toBe(404);

  const chains = await verifyChain();
  expect(chains.status).toBe(200);
  expect(problems(chains.body)).toEqual([]);
  expect(result(chains.body)).toBe(true);
  expect(param(chains.body, 'checked').valueInteger).toBeGreaterThanOrEqual(2);
  expect(chains.body.parameter.filter((p: any) => p.name === 'chain').every((c: any) => partValue(c, 'result') === true)).toBe(true);
});

test('a version changed in the database fails $verify-signature with a digest mismatch', async () => {
  const id = await newPatient(2);
  const provenance = await provenanceOf(`Patient/${id}/_history/1`);
  await tampered(
    [`UPDATE resource_history SET content = jsonb_set(content, '{name,0,family}', '"Forged"') WHERE resource_type = 'Patient' AND id = '${id}' AND version_id = 1`],
    async () => {
      const res = await client.get(`Provenance/${provenance.id}/$verify-signature`);
      expect(result(res.body)).toBe(false);
      const [[code, message]] = problems(res.body);
      expect(code).toBe('digest-mismatch');
      expect(message).toMatch(new RegExp(`Patient/${id}/_history/1 as stored is not what was signed: its canonical SHA-256 is \\S+, the signature covers \\S+`));
      const issue = param(res.body, 'issues').resource.issue[0];
      expect(issue.expression).toEqual(['Provenance.signature[0]']);
      const versions = await client.get(`Patient/${id}/$verify-signature`);
      expect(result(versions.body)).toBe(false);
      expect(problems(versions.body).map(([c]) => c)).toEqual(['digest-mismatch']);
      const chain = await verifyChain(`?patient=${id}`);
      expect(result(chain.body)).toBe(false);
      expect(problems(chain.body).map(([c]) => c)).toContain('digest-mismatch');
    },
    [`UPDATE resource_history SET content = jsonb_set(content, '{name,0,family}', '"V1"') WHERE resource_type = 'Patient' AND id = '${id}' AND version_id = 1`]
  );
  expect(result((await client.get(`Provenance/${provenance.id}/$verify-signature`)).body)).toBe(true);
});

test('the current version changed in the database, a version removed, a Provenance altered: each is reported', async () => {
  const id = await newPatient(2);
  const p2 = await provenanceOf(`Patient/${id}/_history/2`);
  // The current version is stored once, in the row reads return: changing it there is what the signature catches.
  await tampered(
    [`UPDATE resource SET content = jsonb_set(content, '{name,0,family}', '"Forged"') WHERE resource_type = 'Patient' AND id = '${id}'`],
    async () => {
      expect((await client.get(`Patient/${id}`)).body.name[0].family).toBe('Forged');
      const res = await client.get(`Provenance/${p2.id}/$verify-signature`);
      expect(problems(res.body)).toEqual([['digest-mismatch', expect.stringContaining(`Patient/${id}/_history/2 as stored is not what was signed`)]]);
    },
    [`UPDATE resource SET content = jsonb_set(content, '{name,0,family}', '"V2"') WHERE resource_type = 'Patient' AND id = '${id}'`]
  );
  expect(result((await client.get(`Provenance/${p2.id}/$verify-signature`)).body)).toBe(true);
  const saved = (await server.pool.query(`SELECT * FROM resource_history WHERE resource_type = 'Patient' AND id = $1 AND version_id = 1`, [id])).rows[0];
  const p1 = await provenanceOf(`Patient/${id}/_history/1`);
  await tampered(
    [`DELETE FROM resource_history WHERE resource_type = 'Patient' AND id = '${id}' AND version_id = 1`],
    async () => {
      const res = await client.get(`Provenance/${p1.id}/$verify-signature`);
      expect(problems(res.body).map(([c]) => c)).toEqual(['target-missing']);
      const versions = await client.get(`Patient/${id}/$verify-signature?version=1`);
      expect(problems(versions.body)[0][1]).toMatch(`Patient/${id}/_history/1 is not stored`);
    },
    []
  );
  await server.pool.query(
    `INSERT INTO resource_history (rid, version_id, resource_type, id, last_updated, method, content, compartments, custodian) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`,
    [saved.rid, saved.version_id, saved.resource_type, saved.id, saved.last_updated, saved.method, saved.content, saved.compartments, saved.custodian]
  );
  const agentSql = (to: string) =>
    `UPDATE resource SET content = jsonb_set(content, '{agent,0,who,display}', '"${to}"') WHERE resource_type = 'Provenance' AND id = '${p1.id}'`;
  await tampered(
    [agentSql('someone else')],
    async () => {
      const res = await client.get(`Provenance/${p1.id}/$verify-signature`);
      expect(problems(res.body)).toEqual([
        ['statement-mismatch', expect.stringContaining(`Provenance/${p1.id} was altered after it was signed`)],
      ]);
      const chain = await verifyChain();
      const found = problems(chain.body);
      expect(found.map(([c]) => c)).toEqual(expect.arrayContaining(['statement-mismatch']));
      expect(found.find(([c, m]) => c === 'statement-mismatch' && m.includes('was altered after it was written'))).toBeDefined();
    },
    [agentSql('admin')]
  );
  expect(result((await verifyChain()).body)).toBe(true);
});

test('a Provenance removed, reordered or the newest removed: $verify-chain says exactly where', async () => {
  // Three versions of one patient land in one chain, one after another.
  const id = await newPatient(3);
  const ids = await Promise.all([1, 2, 3].map(async (v) => (await provenanceOf(`Patient/${id}/_history/${v}`)).id));
  const links = (await server.pool.query('SELECT * FROM provenance_link WHERE provenance_id = ANY($1) ORDER BY seq', [ids])).rows;
  const chain = links[0].chain;
  // A Provenance is never replaced, so its one version is its resource row (no history rows).
  const snapshot = async () => ({
    resource: (await server.pool.query(`SELECT * FROM resource WHERE resource_type = 'Provenance' AND id = ANY($1)`, [ids])).rows,
    links: (await server.pool.query('SELECT * FROM provenance_link WHERE chain = $1', [chain])).rows,
    head: (await server.pool.query('SELECT * FROM provenance_chain WHERE chain = $1', [chain])).rows[0],
  });
  const saved = await snapshot();
  const restore = async () => {
    await server.pool.query(`DELETE FROM resource WHERE resource_type = 'Provenance' AND id = ANY($1)`, [ids]);
    await server.pool.query('DELETE FROM provenance_link WHERE chain = $1', [chain]);
    for (const [table, rows] of [['resource', saved.resource], ['provenance_link', saved.links]] as const) {
      for (const row of rows) {
        const cols = Object.keys(row);
        await server.pool.query(`INSERT INTO ${table} (${cols.join(',')}) VALUES (${cols.map((_, i) => '$' + (i + 1)).join(',')})`, cols.map((c) => row[c]));
      }
    }
    await server.pool.query('UPDATE provenance_chain SET seq = $2, head_hash = $3, head_id = $4 WHERE chain = $1', [chain, saved.head.seq, saved.head.head_hash, saved.head.head_id]);
    expect(result((await verifyChain()).body)).toBe(true);
  };
  const [first, middle] = links;
  const seqs = links.map((l: any) => Number(l.seq));
  // Nothing else writes meanwhile: the three are consecutive and the newest of their chain.
  expect(seqs).toEqual([seqs[0], seqs[0] + 1, seqs[0] + 2]);
  expect(Number(saved.head.seq)).toBe(seqs[2]);

  // The middle Provenance deleted (its row and its link row): the next one's link breaks.
  await server.pool.query(`DELETE FROM resource WHERE resource_type = 'Provenance' AND id = $1`, [middle.provenance_id]);
  await server.pool.query('DELETE FROM provenance_link WHERE chain = $1 AND seq = $2', [chain, middle.seq]);
  let report = await verifyChain();
  expect(result(report.body)).toBe(false);
  let found = problems(report.body);
  expect(found).toEqual(
    expect.arrayContaining([
      ['link-missing', expect.stringContaining(`chain ${chain}: seq ${middle.seq} is missing`)],
      ['provenance-missing', `Patient/${id}/_history/2 has no Provenance`],
    ])
  );
  expect(found).toEqual(expect.arrayContaining([['chain-broken', expect.stringContaining(`seq ${first.seq} (Provenance/${first.provenance_id}) hashes to`)]]));
  const chainPart = report.body.parameter.find((p: any) => p.name === 'chain' && partValue(p, 'id') === chain);
  expect(partValue(chainPart, 'result')).toBe(false);
  // Narrowed to the patient, the same removal is found.
  expect(problems((await verifyChain(`?patient=${id}`)).body).map(([c]) => c)).toEqual(expect.arrayContaining(['provenance-missing']));
  await restore();

  // Only the Provenance row deleted (its link row stays).
  await server.pool.query(`DELETE FROM resource WHERE resource_type = 'Provenance' AND id = $1`, [middle.provenance_id]);
  found = problems((await verifyChain(`?chain=${chain}`)).body);
  expect(found).toEqual(expect.arrayContaining([['provenance-missing', expect.stringContaining(`Provenance/${middle.provenance_id} (chain ${chain} seq ${middle.seq}`)]]));
  await restore();

  // Two Provenances swapped in the chain index.
  await server.pool.query('UPDATE provenance_link SET seq = -1 WHERE chain = $1 AND seq = $2', [chain, first.seq]);
  await server.pool.query('UPDATE provenance_link SET seq = $3 WHERE chain = $1 AND seq = $2', [chain, middle.seq, first.seq]);
  await server.pool.query('UPDATE provenance_link SET seq = $2 WHERE chain = $1 AND seq = -1', [chain, middle.seq]);
  found = problems((await verifyChain(`?chain=${chain}`)).body);
  expect(found).toEqual(expect.arrayContaining([['out-of-order', expect.stringContaining(`Provenance/${middle.provenance_id} is at chain ${chain} seq ${first.seq} but was signed as chain ${chain} seq ${middle.seq}`)]]));
  await restore();

  // The newest Provenance of the chain removed entirely: the head says more exist.
  {
    const newest = links[2];
    await server.pool.query(`DELETE FROM resource WHERE resource_type = 'Provenance' AND id = $1`, [newest.provenance_id]);
    await server.pool.query('DELETE FROM provenance_link WHERE chain = $1 AND seq = $2', [chain, newest.seq]);
    found = problems((await verifyChain()).body);
    expect(found).toEqual(
      expect.arrayContaining([
        ['head-mismatch', `chain ${chain} holds ${newest.seq} Provenances, but the newest found is seq ${newest.seq - 1}: the newest were removed`],
        ['provenance-missing', `Patient/${id}/_history/3 has no Provenance`],
      ])
    );
    await restore();
  }
});

test('rotating the signing key keeps every earlier signature verifiable, even with a retention period', async () => {
  const id = await newPatient(1);
  const before = await provenanceOf(`Patient/${id}/_history/1`);
  const oldKid = JSON.parse(Buffer.from(Buffer.from(before.signature[0].data, 'base64').toString().split('.')[0], 'base64url').toString()).kid;
  const rotated = await admin(server, 'POST', 'keys/rotate', { alg: 'ES256', retainSeconds: 0 });
  expect(rotated.status).toBe(201);
  await new Promise((r) => setTimeout(r, 50));
  const row = await server.pool.query('SELECT signs_records, expires_at FROM signing_key WHERE kid = $1', [oldKid]);
  expect(row.rows[0]).toEqual({ signs_records: true, expires_at: null });
  expect((await publishedJwks(server)).keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, rotated.body.kid]));

  await client.put(`Patient/${id}`, { resourceType: 'Patient', id, active: true });
  const after = await provenanceOf(`Patient/${id}/_history/2`);
  const newKid = JSON.parse(Buffer.from(Buffer.from(after.signature[0].data, 'base64').toString().split('.')[0], 'base64url').toString()).kid;
  expect(newKid).toBe(rotated.body.kid);
  expect(result((await client.get(`Patient/${id}/$verify-signature`)).body)).toBe(true);

  // Token keys still expire as asked.
  const token = await admin(server, 'POST', 'keys/rotate', { alg: 'RS256', retainSeconds: 0 });
  const oldToken = await server.pool.query(`SELECT kid FROM signing_key WHERE alg = 'RS256' AND retired_at IS NOT NULL AND expires_at <= now()`);
  expect(oldToken.rows.length).toBeGreaterThan(0);
  expect(token.status).toBe(201);
});

test('$verify-chain needs unrestricted read access to Provenance; narrowing by time works', async () => {
  const { clientId, clientSecret } = await registerClient(server, { name: 'reader', type: 'confidential-symmetric', scopes: ['system/Patient.rs', 'system/Provenance.rs?target=Patient/x'] });
  const token = await clientCredentialsToken(server.baseUrl, clientId, clientSecret as string, 'system/Patient.rs system/Provenance.rs?target=Patient/x');
  const restricted = await server.client(token).get('$verify-chain');
  expect(restricted.status).toBe(403);
  const from = new Date().toISOString();
  await newPatient(2);
  const narrowed = await verifyChain(`?start=${encodeURIComponent(from)}`);
  expect(result(narrowed.body)).toBe(true);
  expect(param(narrowed.body, 'checked').valueInteger).toBe(2);
  expect((await verifyChain('?start=notadate')).status).toBe(400);
});
