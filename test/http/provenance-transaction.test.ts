/**
 * One Provenance per patient and activity within a transaction: the writes of a transaction
 * Bundle that share a chain key (their first patient compartment) and an activity (CREATE,
 * UPDATE, DELETE) share one Provenance whose targets are every version written, signed once
 * over the JSON array of those versions; resources in no patient compartment, single writes,
 * batch entries and writes that carry their own client Provenance keep one Provenance each.
 * An outside verifier checks the shared signature with plain `jose`; $verify-signature and
 * $verify-chain find a tampered target and name it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';
import { launchToken, registerClient, registerUser } from '../helpers/smart';
import {
  authorSignature,
  clientSigningForm,
  detachedSignature,
  jcs,
  param,
  partValue,
  parts,
  problems,
  provenancesOf,
  publishedJwks,
  verifyWithJwks,
} from '../helpers/provenance';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});
afterAll(async () => server.close());

const codes = (concept: any) => concept?.coding?.map((c: any) => c.code);
const targets = (p: any) => p.target.map((t: any) => t.reference);
const result = (body: any) => param(body, 'result')?.valueBoolean;
const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest('base64url');
const jwsHeader = (signature: any) =>
  JSON.parse(Buffer.from(Buffer.from(signature.data, 'base64').toString('ascii').split('.')[0], 'base64url').toString('utf8'));
const count = async (sql: string, params: unknown[] = []) => (await server.pool.query(sql, params)).rows[0].n as number;
const provenanceCount = () => count(`SELECT count(*)::int AS n FROM resource WHERE resource_type = 'Provenance'`);

const uuid = () => `urn:uuid:${randomUUID()}`;
const observation = (subject: string, text: string) => ({
  resourceType: 'Observation',
  status: 'final',
  code: { text },
  subject: { reference: subject },
});
const encounter = (subject: string) => ({
  resourceType: 'Encounter',
  status: 'finished',
  class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
  subject: { reference: subject },
});
const post = (resource: any, fullUrl?: string) => ({ ...(fullUrl && { fullUrl }), resource, request: { method: 'POST', url: resource.resourceType } });

/** Posts a transaction Bundle; 200 expected; the version reference (Type/id/_history/v) each entry wrote, in entry order. */
async function transaction(entry: any[]): Promise<{ body: any; refs: (string | undefined)[] }> {
  const res = await client.post('', { resourceType: 'Bundle', type: 'transaction', entry });
  expect([res.status, res.status === 200 ? '' : res.text]).toEqual([200, '']);
  const refs = res.body.entry.map((e: any) => e.response.location?.replace(`${server.baseUrl}/`, ''));
  return { body: res.body, refs };
}

/** The one Provenance that has `target` among its targets. */
async function only(target: string): Promise<any> {
  const found = await provenancesOf(server, target);
  expect([target, found.length]).toEqual([target, 1]);
  return found[0];
}

const idOf = (ref: string) => ref.split('/')[1];
const unversioned = (ref: string) => ref.split('/_history/')[0];

/** The stored version a reference names, read back as any client reads it. */
async function readVersion(ref: string): Promise<any> {
  const res = await client.get(ref);
  expect([ref, res.status]).toEqual([ref, 200]);
  return res.body;
}

/** A patient created on its own (one Provenance of its own). */
async function newPatient(family: string): Promise<string> {
  const res = await client.post('Patient', { resourceType: 'Patient', name: [{ family }] });
  expect(res.status).toBe(201);
  return res.body.id;
}

/** Changes one stored version (its history row and, when it is current, the resource row), runs fn, restores. */
async function tampering(type: string, id: string, version: number, fn: () => Promise<void>): Promise<void> {
  const history = `UPDATE resource_history SET content = jsonb_set(content, '{status}', $4::jsonb) WHERE resource_type = $1 AND id = $2 AND version_id = $3`;
  const current = `UPDATE resource SET content = jsonb_set(content, '{status}', $4::jsonb) WHERE resource_type = $1 AND id = $2 AND version_id = $3`;
  const set = async (status: string) => {
    await server.pool.query(history, [type, id, version, JSON.stringify(status)]);
    await server.pool.query(current, [type, id, version, JSON.stringify(status)]);
  };
  await set('amended');
  try {
    await fn();
  } finally {
    await set('final');
  }
}

test('a Patient with 3 Observations and an Encounter in one transaction: one Provenance with 5 targets', async () => {
  const before = await provenanceCount();
  const pt = uuid();
  const { refs } = await transaction([
    post({ resourceType: 'Patient', name: [{ family: 'Shared' }] }, pt),
    post(observation(pt, 'heart rate')),
    post(observation(pt, 'body weight')),
    post(encounter(pt)),
    post(observation(pt, 'body height')),
  ]);
  const written = refs as string[];
  expect(written.map((r) => r.replace(/\/[^/]+\/_history\//, '/*/'))).toEqual([
    'Patient/*/1', 'Observation/*/1', 'Observation/*/1', 'Encounter/*/1', 'Observation/*/1',
  ]);
  const patientId = idOf(written[0]);
  expect(await provenanceCount()).toBe(before + 1);

  const provenance = await only(written[0]);
  // Every write has this one Provenance, whose targets are the exact versions in entry order.
  for (const ref of written) expect((await only(ref)).id).toBe(provenance.id);
  expect(targets(provenance)).toEqual(written);
  expect(codes(provenance.activity)).toEqual(['CREATE']);
  expect(provenance.activity.coding[0].system).toBe('http://terminology.hl7.org/CodeSystem/v3-DataOperation');
  expect(provenance.entity).toBeUndefined();
  const versions = await Promise.all(written.map(readVersion));
  const latest = versions.map((v) => v.meta.lastUpdated).sort((a, b) => Date.parse(a) - Date.parse(b)).pop();
  expect(provenance.recorded).toBe(latest);
  // Agents as for a single write by the admin client.
  expect(provenance.agent).toEqual([
    {
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type', code: 'author', display: 'Author' }] },
      who: { type: 'Device', identifier: { system: `${server.baseUrl}/clients`, value: 'admin' }, display: 'admin' },
    },
  ]);

  // In the patient's compartment; found by each of its targets.
  const rows = await server.pool.query(`SELECT compartments FROM resource WHERE resource_type = 'Provenance' AND id = $1`, [provenance.id]);
  expect(rows.rows[0].compartments).toEqual([patientId]);
  const compartment = await client.get(`Patient/${patientId}/Provenance`);
  expect(compartment.status).toBe(200);
  expect(compartment.body.entry.map((e: any) => e.resource.id)).toEqual([provenance.id]);
  for (const ref of written) {
    const search = await client.get(`Provenance?target=${unversioned(ref)}`);
    expect([ref, search.status, search.body.entry?.map((e: any) => e.resource.id)]).toEqual([ref, 200, [provenance.id]]);
  }
  const byVersion = await client.get(`Provenance?target=${written[2]}`);
  expect(byVersion.body.entry.map((e: any) => e.resource.id)).toEqual([provenance.id]);
});

test('targets are in Bundle entry order even when a PUT create precedes POST creates of the same record', async () => {
  // A client-assigned id (PUT create) first, then the patient's observations (POST): all CREATE, one record.
  // The server processes POSTs before PUTs; the Provenance still lists the versions in entry order.
  const patientId = `tx-order-${randomUUID().slice(0, 8)}`;
  const { refs } = await transaction([
    { resource: { resourceType: 'Patient', id: patientId, name: [{ family: 'Order' }] }, request: { method: 'PUT', url: `Patient/${patientId}` } },
    post(observation(`Patient/${patientId}`, 'o1')),
    post(observation(`Patient/${patientId}`, 'o2')),
  ]);
  const written = refs as string[];
  expect(written[0]).toBe(`Patient/${patientId}/_history/1`);
  const provenance = await only(written[0]);
  expect(codes(provenance.activity)).toEqual(['CREATE']);
  expect(targets(provenance)).toEqual(written);
});

test('two patients in one transaction get one Provenance each; resources in no patient compartment their own', async () => {
  const before = await provenanceCount();
  const [a, b] = [uuid(), uuid()];
  const { refs } = await transaction([
    post({ resourceType: 'Patient', name: [{ family: 'A' }] }, a),
    post({ resourceType: 'Patient', name: [{ family: 'B' }] }, b),
    post(observation(a, 'a1')),
    post(observation(b, 'b1')),
    post({ resourceType: 'Organization', name: 'Clinic' }),
    post(observation(a, 'a2')),
    post({ resourceType: 'Practitioner', name: [{ family: 'Doc' }] }),
    post({ resourceType: 'Basic', code: { text: 'no subject' } }),
    post(encounter(b)),
  ]);
  const [patientA, patientB, a1, b1, org, a2, practitioner, basic, encB] = refs as string[];
  expect(await provenanceCount()).toBe(before + 5);

  const forA = await only(patientA);
  expect(targets(forA)).toEqual([patientA, a1, a2]);
  const forB = await only(patientB);
  expect(targets(forB)).toEqual([patientB, b1, encB]);
  expect(forA.id).not.toBe(forB.id);
  for (const [ref, same] of [[a1, forA], [a2, forA], [b1, forB], [encB, forB]]) expect((await only(ref)).id).toBe(same.id);
  const compartments = await server.pool.query(
    `SELECT id, compartments FROM resource WHERE resource_type = 'Provenance' AND id = ANY($1) ORDER BY id`,
    [[forA.id, forB.id]]
  );
  expect(Object.fromEntries(compartments.rows.map((r) => [r.id, r.compartments]))).toEqual({ [forA.id]: [idOf(patientA)], [forB.id]: [idOf(patientB)] });

  const loners = [await only(org), await only(practitioner), await only(basic)];
  expect(loners.map(targets)).toEqual([[org], [practitioner], [basic]]);
  expect(new Set(loners.map((p) => p.id)).size).toBe(3);
  expect(loners.every((p) => codes(p.activity)[0] === 'CREATE')).toBe(true);
});

test('creates, updates (PUT and PATCH) and a delete of one patient in one transaction: one Provenance per activity', async () => {
  const patientId = await newPatient('Before');
  const existing: string[] = [];
  for (const text of ['o1', 'o2', 'o3']) {
    const res = await client.post('Observation', observation(`Patient/${patientId}`, text));
    expect(res.status).toBe(201);
    existing.push(res.body.id);
  }
  const [o1, o2, o3] = existing;
  const before = await provenanceCount();
  const patch = Buffer.from(JSON.stringify([{ op: 'replace', path: '/status', value: 'amended' }])).toString('base64');
  // In the order a transaction is processed (DELETE, POST, PUT/PATCH), so entry and processing order agree.
  const { refs } = await transaction([
    { request: { method: 'DELETE', url: `Observation/${o3}` } },
    post(observation(`Patient/${patientId}`, 'o4')),
    post(observation(`Patient/${patientId}`, 'o5')),
    { resource: { resourceType: 'Patient', id: patientId, name: [{ family: 'After' }] }, request: { method: 'PUT', url: `Patient/${patientId}` } },
    { resource: { ...observation(`Patient/${patientId}`, 'o1 corrected'), id: o1 }, request: { method: 'PUT', url: `Observation/${o1}` } },
    { resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: patch }, request: { method: 'PATCH', url: `Observation/${o2}` } },
  ]);
  const [, o4, o5, patientV2, o1v2, o2v2] = refs as string[];
  expect([patientV2, o1v2, o2v2]).toEqual([`Patient/${patientId}/_history/2`, `Observation/${o1}/_history/2`, `Observation/${o2}/_history/2`]);
  expect(await provenanceCount()).toBe(before + 3);

  const deleted = await only(`Observation/${o3}/_history/2`);
  expect(targets(deleted)).toEqual([`Observation/${o3}/_history/2`]);
  expect(codes(deleted.activity)).toEqual(['DELETE']);
  expect(deleted.entity).toEqual([{ role: 'revision', what: { reference: `Observation/${o3}/_history/1` } }]);

  const created = await only(o4);
  expect(targets(created)).toEqual([o4, o5]);
  expect(codes(created.activity)).toEqual(['CREATE']);
  expect(created.entity).toBeUndefined();

  const updated = await only(patientV2);
  expect(targets(updated)).toEqual([patientV2, o1v2, o2v2]);
  expect(codes(updated.activity)).toEqual(['UPDATE']);
  const revisions = (updated.entity ?? []).map((e: any) => [e.role, e.what.reference]);
  expect(revisions.sort()).toEqual(
    [`Patient/${patientId}/_history/1`, `Observation/${o1}/_history/1`, `Observation/${o2}/_history/1`].map((r) => ['revision', r]).sort()
  );
  expect(new Set([deleted.id, created.id, updated.id]).size).toBe(3);
  const lastUpdated = await Promise.all([patientV2, o1v2, o2v2].map(async (r) => (await readVersion(r)).meta.lastUpdated));
  expect(updated.recorded).toBe(lastUpdated.sort((x, y) => Date.parse(x) - Date.parse(y)).pop());
  // All three are in the patient's compartment, as are the patient's earlier single-write Provenances.
  const compartment = await client.get(`Patient/${patientId}/Provenance?_count=100`);
  expect(compartment.body.entry.map((e: any) => e.resource.id)).toEqual(expect.arrayContaining([deleted.id, created.id, updated.id]));
});

test('single writes and the entries of a batch keep one Provenance with one target each', async () => {
  const patientId = await newPatient('Single');
  const own = await only(`Patient/${patientId}/_history/1`);
  expect(targets(own)).toEqual([`Patient/${patientId}/_history/1`]);
  const obs = (await client.post('Observation', observation(`Patient/${patientId}`, 'single'))).body;
  expect(targets(await only(`Observation/${obs.id}/_history/1`))).toEqual([`Observation/${obs.id}/_history/1`]);
  expect((await client.put(`Patient/${patientId}`, { resourceType: 'Patient', id: patientId, active: true })).status).toBe(200);
  expect(targets(await only(`Patient/${patientId}/_history/2`))).toEqual([`Patient/${patientId}/_history/2`]);
  expect((await client.delete(`Observation/${obs.id}`)).status).toBe(204);
  expect(targets(await only(`Observation/${obs.id}/_history/2`))).toEqual([`Observation/${obs.id}/_history/2`]);

  const before = await provenanceCount();
  const res = await client.post('', {
    resourceType: 'Bundle',
    type: 'batch',
    entry: [
      post(observation(`Patient/${patientId}`, 'batch 1')),
      post(observation(`Patient/${patientId}`, 'batch 2')),
      { resource: { resourceType: 'Patient', id: patientId, active: false }, request: { method: 'PUT', url: `Patient/${patientId}` } },
    ],
  });
  expect(res.status).toBe(200);
  expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['201 Created', '201 Created', '200 OK']);
  const refs = res.body.entry.map((e: any) => e.response.location.replace(`${server.baseUrl}/`, ''));
  const provenances = await Promise.all(refs.map(only));
  expect(provenances.map(targets)).toEqual(refs.map((r: string) => [r]));
  expect(new Set(provenances.map((p) => p.id)).size).toBe(3);
  expect(await provenanceCount()).toBe(before + 3);
  // Their signatures are as before: tgt is the version reference, the payload the version itself.
  for (const [i, ref] of refs.entries()) {
    const signature = provenances[i].signature[provenances[i].signature.length - 1];
    const header = await verifyWithJwks(server, signature.data, jcs(await readVersion(ref)));
    expect(header.tgt).toBe(ref);
    expect(header.dig).toBe(digest(jcs(await readVersion(ref))));
  }
});

test('an outside verifier checks the shared signature with jose and the JWKS over the array of versions', async () => {
  const pt = uuid();
  const { refs } = await transaction([
    post({ resourceType: 'Patient', name: [{ family: 'Verifier', given: ['Zoë'] }] }, pt),
    post({ ...observation(pt, 'Größe ✓'), valueQuantity: { value: 172, unit: 'cm' } }),
    post({ ...observation(pt, 'Gewicht'), valueQuantity: { value: 70.5, unit: 'kg' } }),
  ]);
  const written = refs as string[];
  const provenance = await only(written[1]);
  expect(targets(provenance)).toEqual(written);
  const signature = provenance.signature[provenance.signature.length - 1];
  expect(signature.type).toEqual([{ system: 'urn:iso-astm:E1762-95:2013', code: '1.2.840.10065.1.12.1.5', display: 'Verification Signature' }]);
  expect(signature.sigFormat).toBe('application/jose');
  expect(signature.who).toEqual(expect.objectContaining({ type: 'Device', identifier: { system: 'urn:ietf:rfc:3986', value: server.baseUrl } }));

  const versions = await Promise.all(written.map(readVersion));
  const payload = '[' + versions.map(jcs).join(',') + ']';
  expect(payload).toBe(jcs(versions));
  const header = await verifyWithJwks(server, signature.data, payload);
  expect(header).toEqual(
    expect.objectContaining({
      alg: 'ES256',
      tgt: written,
      dig: versions.map((v) => digest(jcs(v))),
      stm: expect.any(String),
      chn: expect.any(Number),
      seq: expect.any(Number),
    })
  );
  expect(jwsHeader(signature)).toEqual(header);
  if ((header.seq as number) > 1) expect(header.prv).toEqual(expect.any(String));
  else expect(header.prv).toBeUndefined();
  expect((await publishedJwks(server)).keys.map((k) => k.kid)).toContain(header.kid);
  // Nothing else verifies: not one version alone, not the versions in another order, not changed content.
  await expect(verifyWithJwks(server, signature.data, jcs(versions[0]))).rejects.toThrow();
  await expect(verifyWithJwks(server, signature.data, jcs([versions[1], versions[0], versions[2]]))).rejects.toThrow();
  await expect(verifyWithJwks(server, signature.data, jcs([versions[0], { ...versions[1], status: 'amended' }, versions[2]]))).rejects.toThrow();

  // The shared Provenance is a link of its patient's chain like any other.
  const link = await server.pool.query('SELECT chain, seq FROM provenance_link WHERE provenance_id = $1', [provenance.id]);
  expect(link.rows.map((r) => [r.chain, Number(r.seq)])).toEqual([[header.chn, header.seq]]);
});

test('$verify-signature: valid untouched; one target changed is named, the others are not, every target fails', async () => {
  const pt = uuid();
  const { refs } = await transaction([
    post({ resourceType: 'Patient', name: [{ family: 'Tamper' }] }, pt),
    post(observation(pt, 'first')),
    post(observation(pt, 'second')),
    post(observation(pt, 'third')),
  ]);
  const [patientRef, first, second, third] = refs as string[];
  const provenance = await only(first);
  expect(targets(provenance)).toEqual([patientRef, first, second, third]);

  for (const path of [`Provenance/${provenance.id}`, unversioned(first), unversioned(second), unversioned(patientRef)]) {
    const res = await client.get(`${path}/$verify-signature`);
    expect([path, res.status, result(res.body), problems(res.body)]).toEqual([path, 200, true, []]);
  }

  await tampering('Observation', idOf(second), 1, async () => {
    const untouched = [patientRef, first, third];
    for (const path of [`Provenance/${provenance.id}`, unversioned(second)]) {
      const res = await client.get(`${path}/$verify-signature`);
      expect([path, res.status, result(res.body)]).toEqual([path, 200, false]);
      const found = problems(res.body);
      const mismatches = found.filter(([code]) => code === 'digest-mismatch');
      expect(mismatches.length).toBeGreaterThan(0);
      expect(mismatches.some(([, text]) => text.includes(second))).toBe(true);
      for (const [, text] of mismatches) {
        for (const ref of untouched) expect([path, ref, text.includes(ref)]).toEqual([path, ref, false]);
      }
    }
    // An untouched target is covered by the same signature: it does not verify either, and the reason names the changed one.
    for (const ref of [first, patientRef]) {
      const res = await client.get(`${unversioned(ref)}/$verify-signature`);
      expect([ref, res.status, result(res.body)]).toEqual([ref, 200, false]);
      expect(problems(res.body).some(([, text]) => text.includes(second))).toBe(true);
    }
  });
  const restored = await client.get(`Provenance/${provenance.id}/$verify-signature`);
  expect([result(restored.body), problems(restored.body)]).toEqual([true, []]);
});

test('$verify-chain for the patient is valid, then reports a changed target of a shared Provenance', async () => {
  const patientId = await newPatient('Chain');
  const { refs } = await transaction([
    post(observation(`Patient/${patientId}`, 'c1')),
    post(encounter(`Patient/${patientId}`)),
    post(observation(`Patient/${patientId}`, 'c2')),
    { resource: { resourceType: 'Patient', id: patientId, active: true }, request: { method: 'PUT', url: `Patient/${patientId}` } },
  ]);
  const [c1, enc, c2, patientV2] = refs as string[];
  expect(targets(await only(c1))).toEqual([c1, enc, c2]);
  expect(targets(await only(patientV2))).toEqual([patientV2]);

  const chain = async () => {
    const res = await client.get(`$verify-chain?patient=${patientId}`);
    expect(res.status).toBe(200);
    return res.body;
  };
  const valid = await chain();
  expect([result(valid), problems(valid)]).toEqual([true, []]);
  // The patient's own Provenance, the shared one and the update's.
  expect(param(valid, 'checked').valueInteger).toBeGreaterThanOrEqual(3);

  await tampering('Observation', idOf(c2), 1, async () => {
    const report = await chain();
    expect(result(report)).toBe(false);
    const found = problems(report);
    const mismatches = found.filter(([code]) => code === 'digest-mismatch');
    expect(mismatches.length).toBeGreaterThan(0);
    expect(mismatches.some(([, text]) => text.includes(c2))).toBe(true);
    for (const [, text] of mismatches) expect([text.includes(c1), text.includes(enc)]).toEqual([false, false]);
  });
  const again = await chain();
  expect([result(again), problems(again)]).toEqual([true, []]);
});

test('rows: one provenance_link row per Provenance, one provenance_target row per target version', async () => {
  const linkColumns = await server.pool.query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'provenance_link' ORDER BY column_name`);
  expect(linkColumns.rows.map((r) => r.column_name)).toEqual(['chain', 'compartments', 'hash', 'provenance_id', 'provenance_rid', 'recorded', 'seq']);
  const targetColumns = await server.pool.query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'provenance_target'`);
  expect(Object.fromEntries(targetColumns.rows.map((r) => [r.column_name, r.data_type]))).toEqual({
    target_rid: 'uuid',
    target_version: 'integer',
    provenance_rid: 'uuid',
    target_type: 'text',
    target_id: 'text',
  });

  const pt = uuid();
  const { refs } = await transaction([
    post({ resourceType: 'Patient', name: [{ family: 'Rows' }] }, pt),
    post(observation(pt, 'r1')),
    post(observation(pt, 'r2')),
    post(observation(pt, 'r3')),
    post(encounter(pt)),
  ]);
  const written = refs as string[];
  const provenance = await only(written[0]);
  const links = await server.pool.query('SELECT * FROM provenance_link WHERE provenance_id = $1', [provenance.id]);
  expect(links.rows).toHaveLength(1);
  const link = links.rows[0];
  expect(link.compartments).toEqual([idOf(written[0])]);
  expect(new Date(link.recorded).toISOString()).toBe(new Date(provenance.recorded).toISOString());
  const rows = await server.pool.query(
    'SELECT target_type, target_id, target_version, target_rid FROM provenance_target WHERE provenance_rid = $1 ORDER BY target_type, target_id',
    [link.provenance_rid]
  );
  expect(rows.rows).toHaveLength(5);
  expect(rows.rows.map((r) => `${r.target_type}/${r.target_id}/_history/${r.target_version}`).sort()).toEqual([...written].sort());
  // target_rid is the rid of each target resource (the one its resource row has).
  const rids = await server.pool.query(
    `SELECT resource_type || '/' || id AS ref, rid FROM resource WHERE (resource_type, id) IN (SELECT target_type, target_id FROM provenance_target WHERE provenance_rid = $1)`,
    [link.provenance_rid]
  );
  const ridOf = Object.fromEntries(rids.rows.map((r) => [r.ref, r.rid]));
  for (const r of rows.rows) expect(r.target_rid).toBe(ridOf[`${r.target_type}/${r.target_id}`]);
  // The Provenance's own rid is what the link and the target rows name.
  const own = await server.pool.query(`SELECT rid FROM resource WHERE resource_type = 'Provenance' AND id = $1`, [provenance.id]);
  expect(own.rows[0].rid).toBe(link.provenance_rid);
  // Every Provenance has exactly one link; every target row belongs to a linked Provenance.
  expect(await count('SELECT count(*)::int AS n FROM provenance_link WHERE provenance_rid = $1', [link.provenance_rid])).toBe(1);
  expect(await count('SELECT count(*)::int AS n FROM provenance_target t WHERE NOT EXISTS (SELECT 1 FROM provenance_link l WHERE l.provenance_rid = t.provenance_rid)')).toBe(0);
});

test('an entry with its own client Provenance keeps it (one target); the patient\'s other entries share one', async () => {
  const pt = uuid();
  const own = uuid();
  const { body, refs } = await transaction([
    post({ resourceType: 'Patient', name: [{ family: 'Client' }] }, pt),
    post(observation(pt, 'with its own Provenance'), own),
    post(observation(pt, 'shared 1')),
    {
      resource: { resourceType: 'Provenance', target: [{ reference: own }], reason: [{ text: 'entered at the bedside' }] },
      request: { method: 'POST', url: 'Provenance' },
    },
    post(observation(pt, 'shared 2')),
  ]);
  const [patientRef, ownRef, shared1, , shared2] = refs as string[];
  expect(body.entry[3].response.status).toBe('201 Created');

  const clientProvenance = await only(ownRef);
  expect(targets(clientProvenance)).toEqual([ownRef]);
  expect(clientProvenance.reason).toEqual([{ text: 'entered at the bedside' }]);
  expect(body.entry[3].response.location).toBe(`${server.baseUrl}/Provenance/${clientProvenance.id}/_history/1`);
  const header = await verifyWithJwks(server, clientProvenance.signature[clientProvenance.signature.length - 1].data, jcs(await readVersion(ownRef)));
  expect(header.tgt).toBe(ownRef);

  const shared = await only(patientRef);
  expect(shared.id).not.toBe(clientProvenance.id);
  expect(targets(shared)).toEqual([patientRef, shared1, shared2]);
  expect(shared.reason).toBeUndefined();
  for (const id of [clientProvenance.id, shared.id]) {
    const res = await client.get(`Provenance/${id}/$verify-signature`);
    expect([id, result(res.body), problems(res.body)]).toEqual([id, true, []]);
  }
  expect(await count('SELECT count(*)::int AS n FROM provenance_target WHERE provenance_rid = (SELECT rid FROM resource WHERE resource_type = $1 AND id = $2)', ['Provenance', clientProvenance.id])).toBe(1);
  expect(await count('SELECT count(*)::int AS n FROM provenance_target WHERE provenance_rid = (SELECT rid FROM resource WHERE resource_type = $1 AND id = $2)', ['Provenance', shared.id])).toBe(3);
});

test('a signed client Provenance entry keeps its one target and both signatures; the rest of the record shares one', async () => {
  const pair = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'tx-key', alg: 'ES256', use: 'sig' };
  const redirectUri = 'https://app.example/tx-cb';
  const { clientId } = await registerClient(server, { name: 'Ward app', type: 'public', redirectUris: [redirectUri], scopes: ['user/*.cruds', 'openid', 'fhirUser'] });
  await registerUser(server, { username: 'tx-signer', password: 'tx-signer-password', fhirUser: 'Practitioner/tx-pr', organization: 'tx-org', signingJwks: { keys: [jwk] } });
  const token = await launchToken(server, { clientId, redirectUri, scope: 'user/*.cruds openid fhirUser', username: 'tx-signer', password: 'tx-signer-password' });
  expect(token.status).toBe(200);
  const doctor = server.client(token.body.access_token);

  // The doctor writes the whole record (the patient too), so it is their organization's.
  const created = await doctor.post('Patient', { resourceType: 'Patient', name: [{ family: 'Signed' }] });
  expect(created.status).toBe(201);
  const patientId = created.body.id;
  const pt = `Patient/${patientId}`;
  // Signed as it will be stored (so with a literal reference, not a urn:uuid the server rewrites).
  const signed = observation(pt, 'signed by the doctor');
  const data = await detachedSignature(clientSigningForm(signed, true), pair.privateKey, { alg: 'ES256', kid: 'tx-key' });
  const res = await doctor.post('', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      post(observation(pt, 'unsigned 1')),
      { resource: { resourceType: 'Patient', id: patientId, name: [{ family: 'Signed' }], active: true }, request: { method: 'PUT', url: pt } },
      post(signed, 'urn:uuid:c3c0e7a2-5d0f-4f4e-9d0b-8a7f6c1e2d31'),
      post(observation(pt, 'unsigned 2')),
      {
        resource: { resourceType: 'Provenance', target: [{ reference: 'urn:uuid:c3c0e7a2-5d0f-4f4e-9d0b-8a7f6c1e2d31' }], signature: [authorSignature(data, 'Practitioner/tx-pr')] },
        request: { method: 'POST', url: 'Provenance' },
      },
    ],
  });
  expect([res.status, res.status === 200 ? '' : res.text]).toEqual([200, '']);
  const [unsigned1, patientV2, signedRef, unsigned2] = res.body.entry.slice(0, 4).map((e: any) => e.response.location.replace(`${server.baseUrl}/`, ''));
  const own = await only(signedRef);
  expect(targets(own)).toEqual([signedRef]);
  expect(own.signature.map((s: any) => s.type[0].code)).toEqual(['1.2.840.10065.1.12.1.1', '1.2.840.10065.1.12.1.5']);
  expect(own.signature[0].data).toBe(data);
  expect(res.body.entry[4].response.status).toBe('201 Created');
  expect(res.body.entry[4].response.location).toBe(`${server.baseUrl}/Provenance/${own.id}/_history/1`);
  const shared = await only(unsigned1);
  expect(targets(shared)).toEqual([unsigned1, unsigned2]);
  expect(codes(shared.activity)).toEqual(['CREATE']);
  // The update in the same transaction is the other activity: a Provenance of its own.
  expect(targets(await only(patientV2))).toEqual([`${pt}/_history/2`]);
  expect(shared.signature).toHaveLength(1);
  // Agents as for a single write by the practitioner: author on behalf of their organization, the app, the custodian.
  expect(shared.agent.map((a: any) => [a.type.coding[0].code, a.who.reference ?? a.who.identifier?.value])).toEqual([
    ['author', 'Practitioner/tx-pr'],
    ['assembler', clientId],
    ['custodian', 'Organization/tx-org'],
  ]);


  const verified = await doctor.get(`Provenance/${own.id}/$verify-signature`);
  expect(problems(verified.body)).toEqual([]);
  const checks = parts(param(verified.body, 'provenance'), 'signature');
  expect(checks.map((c: any) => [partValue(c, 'role'), partValue(c, 'result')])).toEqual([['author', 'valid'], ['server', 'valid']]);
  const sharedVerified = await doctor.get(`Provenance/${shared.id}/$verify-signature`);
  expect([result(sharedVerified.body), problems(sharedVerified.body)]).toEqual([true, []]);
  const chain = await client.get(`$verify-chain?patient=${patientId}`);
  expect([result(chain.body), problems(chain.body)]).toEqual([true, []]);
});

test('a transaction that fails records no Provenance, no link and no target rows', async () => {
  const patientId = await newPatient('Fails');
  const basic = (await client.post('Basic', { resourceType: 'Basic', code: { text: 'v1' } })).body.id;
  const counts = async () => ({
    provenances: await provenanceCount(),
    links: await count('SELECT count(*)::int AS n FROM provenance_link'),
    targets: await count('SELECT count(*)::int AS n FROM provenance_target'),
    observations: await count(`SELECT count(*)::int AS n FROM resource WHERE resource_type = 'Observation'`),
  });
  const before = await counts();
  const failed = await client.post('', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      post(observation(`Patient/${patientId}`, 'never stored 1')),
      post(observation(`Patient/${patientId}`, 'never stored 2')),
      { resource: { resourceType: 'Patient', id: patientId, active: true }, request: { method: 'PUT', url: `Patient/${patientId}` } },
      // Fails (412) after the other entries have written.
      { resource: { resourceType: 'Basic', id: basic, code: { text: 'v2' } }, request: { method: 'PUT', url: `Basic/${basic}`, ifMatch: 'W/"99"' } },
    ],
  });
  expect(failed.status).toBe(412);
  expect(failed.body.resourceType).toBe('OperationOutcome');
  expect(await counts()).toEqual(before);
  expect(await provenancesOf(server, `Patient/${patientId}/_history/2`)).toEqual([]);
  // The chain is still whole.
  const chain = await client.get(`$verify-chain?patient=${patientId}`);
  expect([result(chain.body), problems(chain.body)]).toEqual([true, []]);
});

test('a Provenance shared by a transaction: $verify-signature on one of its targets checks it once, with all its targets', async () => {
  const patientId = await newPatient('Twice');
  // Two versions of one resource in one transaction are refused (FHIR R4 http.html: the
  // entries' identities must not overlap), so a shared Provenance has one target per resource.
  const patch = Buffer.from(JSON.stringify([{ op: 'add', path: '/active', value: true }])).toString('base64');
  const twice = await client.post('', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { resource: { resourceType: 'Patient', id: patientId, name: [{ family: 'Twice' }], gender: 'female' }, request: { method: 'PUT', url: `Patient/${patientId}` } },
      { resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: patch }, request: { method: 'PATCH', url: `Patient/${patientId}` } },
    ],
  });
  expect(twice.status).toBe(400);
  // Two updates in one patient record share one Provenance.
  const obs = (await client.post('Observation', observation(`Patient/${patientId}`, 'twice'))).body;
  const { refs } = await transaction([
    { resource: { resourceType: 'Patient', id: patientId, name: [{ family: 'Twice' }], gender: 'female' }, request: { method: 'PUT', url: `Patient/${patientId}` } },
    { resource: { ...observation(`Patient/${patientId}`, 'twice, updated'), id: obs.id }, request: { method: 'PUT', url: `Observation/${obs.id}` } },
  ]);
  expect(refs[0]).toBe(`Patient/${patientId}/_history/2`);
  const shared = await only(`Patient/${patientId}/_history/2`);
  expect([...targets(shared)].sort()).toEqual([`Patient/${patientId}/_history/2`, refs[1]].sort());

  const res = await client.get(`Patient/${patientId}/$verify-signature`);
  expect([res.status, result(res.body), problems(res.body)]).toEqual([200, true, []]);
  const checked = (res.body.parameter ?? []).filter((p: any) => p.name === 'provenance');
  // Version 1's own Provenance, then the shared one, listed once with all of its targets.
  expect(checked.map((p: any) => partValue(p, 'reference').reference)).toEqual([expect.any(String), `Provenance/${shared.id}`]);
  expect(parts(checked[1], 'target').map((t: any) => t.valueReference.reference)).toEqual(targets(shared));
});

test('_revinclude=Provenance:target finds the shared Provenance once for all the matches it records', async () => {
  const pt = uuid();
  const { refs } = await transaction([
    post({ resourceType: 'Patient', name: [{ family: 'Revinclude' }] }, pt),
    post(observation(pt, 'one')),
    post(observation(pt, 'two')),
  ]);
  const [patientRef, first, second] = refs as string[];
  const shared = await only(first);
  const res = await client.get(`Observation?subject=${unversioned(patientRef)}&_revinclude=Provenance:target`);
  expect(res.status).toBe(200);
  const entries = res.body.entry.map((e: any) => [e.search.mode, `${e.resource.resourceType}/${e.resource.id}`]);
  expect(entries.filter(([mode]: string[]) => mode === 'match').map(([, ref]: string[]) => ref).sort()).toEqual(
    [unversioned(first), unversioned(second)].sort()
  );
  expect(entries.filter(([mode]: string[]) => mode === 'include')).toEqual([['include', `Provenance/${shared.id}`]]);
});

test('$verify-chain names every version a missing shared Provenance recorded', async () => {
  const pt = uuid();
  const { refs } = await transaction([
    post({ resourceType: 'Patient', name: [{ family: 'Gone' }] }, pt),
    post(observation(pt, 'one')),
    post(observation(pt, 'two')),
  ]);
  const [patientRef, first, second] = refs as string[];
  const shared = await only(first);
  // A Provenance is never replaced, so its one version is its resource row (no history rows).
  const saved = (await server.pool.query(`SELECT * FROM resource WHERE resource_type = 'Provenance' AND id = $1`, [shared.id])).rows;
  await server.pool.query(`DELETE FROM resource WHERE resource_type = 'Provenance' AND id = $1`, [shared.id]);
  try {
    const res = await client.get(`$verify-chain?patient=${idOf(patientRef)}`);
    expect(result(res.body)).toBe(false);
    const gone = problems(res.body).filter(([code]) => code === 'provenance-missing');
    expect(gone).toHaveLength(1);
    expect(gone[0][1]).toContain(`Provenance/${shared.id}`);
    for (const ref of [patientRef, first, second]) expect(gone[0][1]).toContain(ref);
  } finally {
    for (const row of saved) {
      const columns = Object.keys(row);
      await server.pool.query(
        `INSERT INTO resource (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
        columns.map((c) => (c === 'content' ? JSON.stringify(row[c]) : row[c]))
      );
    }
  }
  const restored = await client.get(`$verify-chain?patient=${idOf(patientRef)}`);
  expect([result(restored.body), problems(restored.body)]).toEqual([true, []]);
});
