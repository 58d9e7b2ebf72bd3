/**
 * A Provenance for every write, in the write's transaction: the exact version as target, the
 * agents, the activity, the signature an outside verifier checks with the JWKS; none for the
 * server's own records; immutable; searchable.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';
import { jcs, provenancesOf, storedVersion, verifyWithJwks } from '../helpers/provenance';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});
afterAll(async () => server.close());

const codes = (concept: any) => concept?.coding?.map((c: any) => c.code);
const agentTypes = (p: any) => p.agent.map((a: any) => a.type.coding[0].code);

async function only(target: string): Promise<any> {
  const found = await provenancesOf(server, target);
  expect(found).toHaveLength(1);
  return found[0];
}

test('create, update, patch and delete each record one Provenance about the exact version', async () => {
  const created = await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'Prov' }] });
  const id = created.body.id;
  const p1 = await only(`Patient/${id}/_history/1`);
  expect(p1.recorded).toBe(created.body.meta.lastUpdated);
  expect(codes(p1.activity)).toEqual(['CREATE']);
  expect(p1.activity.coding[0].system).toBe('http://terminology.hl7.org/CodeSystem/v3-DataOperation');
  // The admin client writes without a user: the client application is the author.
  expect(agentTypes(p1)).toEqual(['author']);
  expect(p1.agent[0].type.coding[0].system).toBe('http://terminology.hl7.org/CodeSystem/provenance-participant-type');
  expect(p1.agent[0].who).toEqual({ type: 'Device', identifier: { system: `${server.baseUrl}/clients`, value: 'admin' }, display: 'admin' });
  expect(p1.entity).toBeUndefined();

  const updated = await client.put(`Patient/${id}`, { resourceType: 'Patient', id, name: [{ family: 'Prov2' }] });
  expect(updated.status).toBe(200);
  const p2 = await only(`Patient/${id}/_history/2`);
  expect(codes(p2.activity)).toEqual(['UPDATE']);
  expect(p2.entity).toEqual([{ role: 'revision', what: { reference: `Patient/${id}/_history/1` } }]);

  const patched = await client.request('PATCH', `Patient/${id}`, {
    rawBody: JSON.stringify([{ op: 'replace', path: '/name/0/family', value: 'Prov3' }]),
    headers: { 'Content-Type': 'application/json-patch+json' },
  });
  expect(patched.status).toBe(200);
  expect(codes((await only(`Patient/${id}/_history/3`)).activity)).toEqual(['UPDATE']);

  const metaAdd = await client.post(`Patient/${id}/$meta-add`, {
    resourceType: 'Parameters',
    parameter: [{ name: 'meta', valueMeta: { tag: [{ system: 'urn:t', code: 'x' }] } }],
  });
  expect(metaAdd.status).toBe(200);
  await only(`Patient/${id}/_history/4`);

  expect((await client.delete(`Patient/${id}`)).status).toBe(204);
  const p5 = await only(`Patient/${id}/_history/5`);
  expect(codes(p5.activity)).toEqual(['DELETE']);
  expect(p5.entity[0].what.reference).toBe(`Patient/${id}/_history/4`);

  // A Provenance belongs to the compartment of the patient whose record it is about.
  const rows = await server.pool.query(`SELECT compartments FROM resource WHERE resource_type = 'Provenance' AND id = $1`, [p5.id]);
  expect(rows.rows[0].compartments).toEqual([id]);
});

test('writes that store nothing record nothing; AuditEvents and Provenances get no Provenance', async () => {
  const patient = (await client.post('Patient', { resourceType: 'Patient', identifier: [{ system: 'urn:x', value: 'same' }] })).body;
  const again = await client.put(`Patient/${patient.id}`, { ...patient, meta: undefined });
  expect(again.status).toBe(200);
  const conditional = await client.post('Patient', { resourceType: 'Patient' }, { 'If-None-Exist': 'identifier=urn:x|same' });
  expect(conditional.status).toBe(200);
  expect(await provenancesOf(server, `Patient/${patient.id}/_history/2`)).toEqual([]);
  const count = await server.pool.query(
    `SELECT count(*)::int AS n FROM resource WHERE resource_type = 'Provenance' AND content->'target'->0->>'reference' LIKE 'Patient/${patient.id}/%'`
  );
  expect(count.rows[0].n).toBe(1);
  const aboutRecords = await server.pool.query(
    `SELECT count(*)::int AS n FROM resource WHERE resource_type = 'Provenance'
       AND (content->'target'->0->>'reference' LIKE 'AuditEvent/%' OR content->'target'->0->>'reference' LIKE 'Provenance/%')`
  );
  expect(aboutRecords.rows[0].n).toBe(0);
});

test('the signature verifies with the published JWKS over the canonical JSON of the stored version', async () => {
  const obs = (await client.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'Größe ✓' }, valueQuantity: { value: 1.50, unit: 'm' } })).body;
  const provenance = await only(`Observation/${obs.id}/_history/1`);
  expect(provenance.signature).toHaveLength(1);
  const signature = provenance.signature[0];
  expect(signature.type).toEqual([{ system: 'urn:iso-astm:E1762-95:2013', code: '1.2.840.10065.1.12.1.5', display: 'Verification Signature' }]);
  expect(signature.sigFormat).toBe('application/jose');
  expect(signature.who).toEqual(expect.objectContaining({ type: 'Device', identifier: { system: 'urn:ietf:rfc:3986', value: server.baseUrl } }));
  expect(Date.parse(signature.when)).not.toBeNaN();

  const stored = await storedVersion(server, 'Observation', obs.id, 1);
  const header = await verifyWithJwks(server, signature.data, jcs(stored));
  expect(header).toEqual(
    expect.objectContaining({ alg: 'ES256', tgt: `Observation/${obs.id}/_history/1`, chn: expect.any(Number), seq: expect.any(Number) })
  );
  const jwks = (await (await fetch(`${server.baseUrl}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
  expect(jwks.keys.map((k) => k.kid)).toContain(header.kid);
  // Any other content does not verify.
  await expect(verifyWithJwks(server, signature.data, jcs({ ...stored, status: 'amended' }))).rejects.toThrow();
});

test('each Provenance of a chain signs its predecessor hash; the head follows', async () => {
  const patient = (await client.post('Patient', { resourceType: 'Patient' })).body;
  const second = await client.put(`Patient/${patient.id}`, { resourceType: 'Patient', id: patient.id, active: true });
  expect(second.status).toBe(200);
  const [a, b] = [await only(`Patient/${patient.id}/_history/1`), await only(`Patient/${patient.id}/_history/2`)];
  const header = (p: any) => JSON.parse(Buffer.from(Buffer.from(p.signature[0].data, 'base64').toString().split('.')[0], 'base64url').toString());
  const [ha, hb] = [header(a), header(b)];
  // One patient's record stays in one chain.
  expect(hb.chn).toBe(ha.chn);
  expect(hb.seq).toBeGreaterThan(ha.seq);
  const hashOf = async (p: any) => {
    const row = await server.pool.query(`SELECT content FROM resource_version WHERE resource_type = 'Provenance' AND id = $1`, [p.id]);
    return require('node:crypto').createHash('sha256').update(jcs(row.rows[0].content)).digest('base64url');
  };
  if (hb.seq === ha.seq + 1) expect(hb.prv).toBe(await hashOf(a));
  const head = await server.pool.query('SELECT seq, head_hash FROM provenance_chain WHERE chain = $1', [hb.chn]);
  expect(Number(head.rows[0].seq)).toBeGreaterThanOrEqual(hb.seq);
});

test('a transaction records one Provenance per patient record and activity; a rolled-back one records none', async () => {
  const res = await client.post('', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:p1', resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
      {
        resource: { resourceType: 'Observation', status: 'final', code: { text: 'a' }, subject: { reference: 'urn:uuid:p1' } },
        request: { method: 'POST', url: 'Observation' },
      },
      { resource: { resourceType: 'Basic', id: 'tx-basic', code: { text: 'b' } }, request: { method: 'PUT', url: 'Basic/tx-basic' } },
    ],
  });
  expect(res.status).toBe(200);
  const locations = res.body.entry.map((e: any) => e.response.location.replace(`${server.baseUrl}/`, ''));
  const patientId = locations[0].split('/')[1];
  // The Patient and its Observation: one Provenance recording both versions, in entry order.
  const shared = await only(locations[0]);
  expect((await only(locations[1])).id).toBe(shared.id);
  expect(shared.target.map((t: any) => t.reference)).toEqual([locations[0], locations[1]]);
  const rows = await server.pool.query(`SELECT compartments FROM resource WHERE resource_type = 'Provenance' AND id = $1`, [shared.id]);
  expect(rows.rows[0].compartments).toEqual([patientId]);
  // The Basic is in no patient's record: a Provenance of its own.
  const basic = await only(locations[2]);
  expect(basic.id).not.toBe(shared.id);
  expect(basic.target).toEqual([{ reference: locations[2] }]);

  const before = await server.pool.query(`SELECT count(*)::int AS n FROM resource WHERE resource_type = 'Provenance'`);
  const failed = await client.post('', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
      // Fails (412) after the first entry has written.
      { resource: { resourceType: 'Basic', id: 'tx-basic', code: { text: 'c' } }, request: { method: 'PUT', url: 'Basic/tx-basic', ifMatch: 'W/"99"' } },
    ],
  });
  expect(failed.status).toBe(412);
  const after = await server.pool.query(`SELECT count(*)::int AS n FROM resource WHERE resource_type = 'Provenance'`);
  expect(after.rows[0].n).toBe(before.rows[0].n);
  const links = await server.pool.query('SELECT count(*)::int AS n FROM provenance_link');
  expect(links.rows[0].n).toBe(after.rows[0].n);
});

test('Provenances cannot be updated, patched, deleted or expunged (405)', async () => {
  const patient = (await client.post('Patient', { resourceType: 'Patient' })).body;
  const provenance = await only(`Patient/${patient.id}/_history/1`);
  const put = await client.put(`Provenance/${provenance.id}`, { ...provenance, recorded: '2000-01-01T00:00:00Z' });
  expect(put.status).toBe(405);
  expect(put.body.resourceType).toBe('OperationOutcome');
  const patch = await client.request('PATCH', `Provenance/${provenance.id}`, {
    rawBody: JSON.stringify([{ op: 'remove', path: '/signature' }]),
    headers: { 'Content-Type': 'application/json-patch+json' },
  });
  expect(patch.status).toBe(405);
  expect((await client.delete(`Provenance/${provenance.id}`)).status).toBe(405);
  expect((await client.delete(`Provenance?target=Patient/${patient.id}`)).status).toBe(405);
  expect((await client.post(`Provenance/${provenance.id}/$expunge`, {})).status).toBe(405);
  expect((await client.get(`Provenance/${provenance.id}`)).body.signature).toEqual(provenance.signature);
  const metadata = (await client.get('metadata')).body;
  const declared = metadata.rest[0].resource.find((r: any) => r.type === 'Provenance');
  expect(declared.interaction.map((i: any) => i.code)).not.toContain('delete');
  expect(declared.operation.map((o: any) => o.name)).toContain('verify-signature');
  expect(metadata.rest[0].operation.map((o: any) => o.name)).toContain('verify-chain');
});

test('Provenances are searchable by target, patient, agent, recorded and entity, and revincluded', async () => {
  const patient = (await client.post('Patient', { resourceType: 'Patient' })).body;
  await client.put(`Patient/${patient.id}`, { resourceType: 'Patient', id: patient.id, active: true });
  const obs = (await client.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 's' }, subject: { reference: `Patient/${patient.id}` } })).body;
  const ids = async (query: string) => (await client.get(`Provenance?${query}`)).body.entry?.map((e: any) => e.resource.target[0].reference).sort() ?? [];

  expect(await ids(`target=Patient/${patient.id}`)).toEqual([`Patient/${patient.id}/_history/1`, `Patient/${patient.id}/_history/2`]);
  expect(await ids(`target=Observation/${obs.id}/_history/1`)).toEqual([`Observation/${obs.id}/_history/1`]);
  expect(await ids(`patient=${patient.id}`)).toEqual([`Patient/${patient.id}/_history/1`, `Patient/${patient.id}/_history/2`]);
  expect(await ids(`entity=Patient/${patient.id}/_history/1`)).toEqual([`Patient/${patient.id}/_history/2`]);
  const recorded = obs.meta.lastUpdated;
  expect(await ids(`target=Observation/${obs.id}&recorded=${encodeURIComponent(recorded)}`)).toEqual([`Observation/${obs.id}/_history/1`]);
  expect(await ids(`target=Observation/${obs.id}&recorded=lt2000-01-01`)).toEqual([]);
  const byAgent = await client.get(`Provenance?agent:identifier=${encodeURIComponent(`${server.baseUrl}/clients|admin`)}&target=Observation/${obs.id}`);
  expect(byAgent.status).toBe(200);
  expect(byAgent.body.entry).toHaveLength(1);
  // The patient's compartment holds the Provenances of their whole record.
  const compartment = (await client.get(`Patient/${patient.id}/Provenance`)).body;
  expect(compartment.entry.map((e: any) => e.resource.target[0].reference).sort()).toEqual(
    [`Observation/${obs.id}/_history/1`, `Patient/${patient.id}/_history/1`, `Patient/${patient.id}/_history/2`].sort()
  );
  // $everything is the record, not its trails.
  const everything = (await client.get(`Patient/${patient.id}/$everything`)).body;
  expect(everything.entry.map((e: any) => e.resource.resourceType).sort()).toEqual(['Observation', 'Patient']);
  expect((await client.get(`AuditEvent/${everything.entry[0].resource.id}/$verify-signature`)).status).toBe(404);
  const rev = (await client.get(`Observation?_id=${obs.id}&_revinclude=Provenance:target`)).body;
  expect(rev.entry.filter((e: any) => e.search.mode === 'include').map((e: any) => e.resource.resourceType)).toEqual(['Provenance']);
});
