/**
 * Client (author) signatures: a practitioner's own key, registered with their user, signs the
 * resource; the signature comes as X-Provenance or as a Provenance entry of the transaction;
 * the server verifies it before accepting the write (422 otherwise, nothing stored) and keeps
 * both the author's and its own verification signature.
 */
import { exportJWK, generateKeyPair, type KeyLike } from 'jose';
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';
import { admin, launchToken, registerClient, registerUser } from '../helpers/smart';
import { authorSignature, clientSigningForm, detachedSignature, jcs, param, partValue, parts, problems, provenancesOf } from '../helpers/provenance';

const REDIRECT = 'https://app.example/cb';
let server: TestServer;
let doctor: FhirTestClient;
let userId: string;
let key: { privateKey: KeyLike; kid: string };
let otherKey: KeyLike;

beforeAll(async () => {
  server = await startTestServer();
  const pair = await generateKeyPair('ES256');
  otherKey = (await generateKeyPair('ES256')).privateKey;
  key = { privateKey: pair.privateKey, kid: 'dr-key-1' };
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'dr-key-1', alg: 'ES256', use: 'sig' };
  const { clientId } = await registerClient(server, { name: 'EHR', type: 'public', redirectUris: [REDIRECT], scopes: ['user/*.cruds', 'openid', 'fhirUser'] });
  userId = await registerUser(server, {
    username: 'signer', password: 'signer-password', fhirUser: 'Practitioner/pr1', organization: 'org1', signingJwks: { keys: [jwk] },
  });
  const token = await launchToken(server, { clientId, redirectUri: REDIRECT, scope: 'user/*.cruds openid fhirUser', username: 'signer', password: 'signer-password' });
  expect(token.status).toBe(200);
  doctor = server.client(token.body.access_token);
});
afterAll(async () => server.close());

const header = (value: unknown) => ({ 'X-Provenance': JSON.stringify(value) });
const sign = (form: string, k: KeyLike = key.privateKey, kid = key.kid) => detachedSignature(form, k, { alg: 'ES256', kid });
const count = async (type: string) => (await server.pool.query('SELECT count(*)::int AS n FROM resource WHERE resource_type = $1', [type])).rows[0].n;

test('a practitioner signs a create with X-Provenance: accepted, both signatures kept and verifiable', async () => {
  const observation = { resourceType: 'Observation', status: 'final', code: { text: 'Blutdruck' }, valueQuantity: { value: 120, unit: 'mmHg' }, meta: { tag: [{ system: 'urn:t', code: 'x' }] } };
  const data = await sign(clientSigningForm(observation, true));
  const res = await doctor.post('Observation', observation, header({
    resourceType: 'Provenance',
    reason: [{ text: 'annual check' }],
    signature: [authorSignature(data, 'Practitioner/pr1')],
  }));
  expect(res.status).toBe(201);
  const [provenance] = await provenancesOf(server, `Observation/${res.body.id}/_history/1`);
  expect(provenance.target).toEqual([{ reference: `Observation/${res.body.id}/_history/1` }]);
  expect(provenance.reason).toEqual([{ text: 'annual check' }]);
  // The practitioner is the author on behalf of their organization (custodian); the app assembled it.
  expect(provenance.agent.map((a: any) => [a.type.coding[0].code, a.who.reference ?? a.who.identifier?.value])).toEqual([
    ['author', 'Practitioner/pr1'],
    ['assembler', expect.any(String)],
    ['custodian', 'Organization/org1'],
  ]);
  expect(provenance.agent[0].onBehalfOf).toEqual({ reference: 'Organization/org1' });
  expect(provenance.signature.map((s: any) => s.type[0].code)).toEqual(['1.2.840.10065.1.12.1.1', '1.2.840.10065.1.12.1.5']);
  expect(provenance.signature[0].data).toBe(data);

  const verified = await doctor.get(`Provenance/${provenance.id}/$verify-signature`);
  expect(verified.status).toBe(200);
  expect(problems(verified.body)).toEqual([]);
  const signatures = parts(param(verified.body, 'provenance'), 'signature');
  expect(signatures.map((s: any) => [partValue(s, 'role'), partValue(s, 'result')])).toEqual([['author', 'valid'], ['server', 'valid']]);
  expect(JSON.parse(partValue(signatures[0], 'key') as string).kid).toBe('dr-key-1');
});

test('an update is signed with its id; the Provenance entry of a transaction carries the signature too', async () => {
  const patient = { resourceType: 'Patient', id: 'signed-pt', name: [{ family: '李', given: ['雷'] }] };
  const put = await doctor.put('Patient/signed-pt', patient, header({ resourceType: 'Provenance', signature: [authorSignature(await sign(clientSigningForm(patient, false)), 'Practitioner/pr1')] }));
  expect(put.status).toBe(201);

  const observation = { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: 'Patient/signed-pt' } };
  const updated = { resourceType: 'Patient', id: 'signed-pt', active: true, name: patient.name };
  const bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:obs', resource: observation, request: { method: 'POST', url: 'Observation' } },
      { fullUrl: `${server.baseUrl}/Patient/signed-pt`, resource: updated, request: { method: 'PUT', url: 'Patient/signed-pt' } },
      {
        fullUrl: 'urn:uuid:prov-obs',
        resource: { resourceType: 'Provenance', target: [{ reference: 'urn:uuid:obs' }], signature: [authorSignature(await sign(clientSigningForm(observation, true)), 'Practitioner/pr1')] },
        request: { method: 'POST', url: 'Provenance' },
      },
      {
        resource: { resourceType: 'Provenance', target: [{ reference: `${server.baseUrl}/Patient/signed-pt` }], signature: [authorSignature(await sign(clientSigningForm(updated, false)), 'Practitioner/pr1')] },
        request: { method: 'POST', url: 'Provenance' },
      },
    ],
  };
  const res = await doctor.post('', bundle);
  expect(res.status).toBe(200);
  const [obsEntry, patientEntry, provObs, provPatient] = res.body.entry;
  expect(provObs.response.status).toBe('201 Created');
  const obsTarget = obsEntry.response.location.replace(`${server.baseUrl}/`, '');
  const [stored] = await provenancesOf(server, obsTarget);
  // The Provenance entry became the Provenance of that write (its location names it), with both signatures.
  expect(provObs.response.location).toBe(`${server.baseUrl}/Provenance/${stored.id}/_history/1`);
  expect(stored.signature).toHaveLength(2);
  expect(await provenancesOf(server, patientEntry.response.location.replace(`${server.baseUrl}/`, ''))).toHaveLength(1);
  expect(provPatient.response.status).toBe('201 Created');
  expect(problems((await doctor.get(`Patient/signed-pt/$verify-signature`)).body)).toEqual([]);
});

test('a bad signature, an unknown key or a missing signer is refused with 422 and nothing is stored', async () => {
  const observation = { resourceType: 'Observation', status: 'final', code: { text: 'refused' } };
  const before = [await count('Observation'), await count('Provenance')];
  const cases: [string, object, RegExp][] = [
    ['other content', authorSignature(await sign(clientSigningForm({ ...observation, status: 'amended' }, true)), 'Practitioner/pr1'), /bad-signature.*does not verify over the client form/],
    ['wrong key', authorSignature(await sign(clientSigningForm(observation, true), otherKey), 'Practitioner/pr1'), /bad-signature/],
    ['unknown kid', authorSignature(await sign(clientSigningForm(observation, true), key.privateKey, 'nope'), 'Practitioner/pr1'), /unknown-key.*no signing key with kid "nope" is registered for Practitioner\/pr1/],
    ['signer without keys', authorSignature(await sign(clientSigningForm(observation, true)), 'Practitioner/someone'), /unknown-key/],
    ['with id on create', authorSignature(await sign(clientSigningForm({ ...observation, id: 'x' }, false)), 'Practitioner/pr1'), /bad-signature/],
    ['not a JWS', { ...authorSignature('bm90IGEgandz', 'Practitioner/pr1') }, /malformed/],
    ['xml signature', { ...authorSignature('AAAA', 'Practitioner/pr1'), sigFormat: 'application/signature+xml' }, /unsupported-format/],
  ];
  for (const [what, signature, message] of cases) {
    const res = await doctor.post('Observation', observation, header({ resourceType: 'Provenance', signature: [signature] }));
    expect([what, res.status]).toEqual([what, 422]);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].code).toBe('security');
    expect(res.body.issue[0].diagnostics).toMatch(/^X-Provenance header: signature\[0\] is not accepted/);
    expect([what, res.body.issue[0].diagnostics]).toEqual([what, expect.stringMatching(message)]);
  }
  const malformed = await doctor.request('POST', 'Observation', { body: observation, headers: { 'X-Provenance': '{not json' } });
  expect(malformed.status).toBe(400);
  const notProvenance = await doctor.post('Observation', observation, header({ resourceType: 'Patient' }));
  expect(notProvenance.status).toBe(400);
  expect([await count('Observation'), await count('Provenance')]).toEqual(before);

  const bundle = (signature: object) => ({
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:o', resource: observation, request: { method: 'POST', url: 'Observation' } },
      { resource: { resourceType: 'Provenance', target: [{ reference: 'urn:uuid:o' }], signature: [signature] }, request: { method: 'POST', url: 'Provenance' } },
    ],
  });
  const bad = await doctor.post('', bundle(authorSignature(await sign(clientSigningForm({ ...observation, status: 'amended' }, true)), 'Practitioner/pr1')));
  expect(bad.status).toBe(422);
  expect(bad.body.issue[0].diagnostics).toMatch(/^Bundle.entry\[1\]: signature\[0\] is not accepted \(bad-signature\)/);
  expect([await count('Observation'), await count('Provenance')]).toEqual(before);
  const onBundle = await doctor.post('', bundle(authorSignature(await sign(clientSigningForm(observation, true)), 'Practitioner/pr1')), header({ resourceType: 'Provenance' }));
  expect(onBundle.status).toBe(400);
});

test('a replaced user key still verifies what it signed; the admin API keeps the JWKS small and public', async () => {
  const observation = { resourceType: 'Observation', status: 'final', code: { text: 'before rotation' } };
  const res = await doctor.post('Observation', observation, header({ resourceType: 'Provenance', signature: [authorSignature(await sign(clientSigningForm(observation, true)), 'Practitioner/pr1')] }));
  expect(res.status).toBe(201);
  const pair = await generateKeyPair('ES256');
  const replaced = await admin(server, 'PUT', `users/${userId}/signing-keys`, { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'dr-key-2' }] });
  expect(replaced.status).toBe(200);
  expect(replaced.body.signingJwks.keys.map((k: any) => k.kid)).toEqual(['dr-key-2']);
  const verified = await doctor.get(`Observation/${res.body.id}/$verify-signature`);
  expect(problems(verified.body)).toEqual([]);
  // The old key no longer signs new writes.
  const later = await doctor.post('Observation', observation, header({ resourceType: 'Provenance', signature: [authorSignature(await sign(clientSigningForm(observation, true)), 'Practitioner/pr1')] }));
  expect(later.status).toBe(422);

  const privateJwk = await exportJWK(pair.privateKey);
  expect((await admin(server, 'PUT', `users/${userId}/signing-keys`, { keys: [{ ...privateJwk, kid: 'k' }] })).body.error_description).toMatch(/private key material/);
  expect((await admin(server, 'PUT', `users/${userId}/signing-keys`, { keys: [] })).status).toBe(400);
  const six = await Promise.all([1, 2, 3, 4, 5, 6].map(async (i) => ({ ...(await exportJWK((await generateKeyPair('ES256')).publicKey)), kid: `k${i}` })));
  expect((await admin(server, 'PUT', `users/${userId}/signing-keys`, { keys: six })).body.error_description).toMatch(/at most 5 keys/);
  expect((await admin(server, 'DELETE', `users/${userId}/signing-keys`)).body.signingJwks).toBeUndefined();
});

test('a Provenance a client creates on its own must verify over its version-specific target', async () => {
  const patient = (await doctor.post('Patient', { resourceType: 'Patient', name: [{ family: 'Attested' }] })).body;
  const pair = await generateKeyPair('ES256');
  await admin(server, 'PUT', `users/${userId}/signing-keys`, { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'att' }] });
  const stored = (await server.pool.query(`SELECT content FROM resource_version WHERE resource_type = 'Patient' AND id = $1`, [patient.id])).rows[0].content;
  const signature = async (content: any) => authorSignature(await detachedSignature(clientSigningForm(content, true), pair.privateKey, { alg: 'ES256', kid: 'att' }), 'Practitioner/pr1');
  const target = [{ reference: `Patient/${patient.id}/_history/1` }];
  const good = await doctor.post('Provenance', { resourceType: 'Provenance', target, recorded: new Date().toISOString(), agent: [{ who: { reference: 'Practitioner/pr1' } }], signature: [await signature(stored)] });
  expect(good.status).toBe(201);
  expect(problems((await doctor.get(`Provenance/${good.body.id}/$verify-signature`)).body)).toEqual([]);
  const bad = await doctor.post('Provenance', { resourceType: 'Provenance', target, recorded: new Date().toISOString(), agent: [{ who: { reference: 'Practitioner/pr1' } }], signature: [await signature({ ...stored, gender: 'male' })] });
  expect(bad.status).toBe(422);
  const unversioned = await doctor.post('Provenance', { resourceType: 'Provenance', target: [{ reference: `Patient/${patient.id}` }], recorded: new Date().toISOString(), agent: [{ who: { reference: 'Practitioner/pr1' } }], signature: [await signature(stored)] });
  expect(unversioned.status).toBe(422);
  // A signature in a format the server cannot check is kept as given, and never called valid.
  const foreign = await doctor.post('Provenance', {
    resourceType: 'Provenance', target, recorded: new Date().toISOString(),
    agent: [{ who: { reference: 'Practitioner/pr1' } }],
    signature: [{ ...(await signature(stored)), sigFormat: 'application/signature+xml', data: Buffer.from('<Signature/>').toString('base64') }],
  });
  expect(foreign.status).toBe(201);
  const verdict = (await doctor.get(`Provenance/${foreign.body.id}/$verify-signature`)).body;
  expect(verdict.parameter.find((p: any) => p.name === 'result').valueBoolean).toBe(false);
  expect(JSON.stringify(verdict)).toContain('unsupported-format');
  expect(jcs(stored)).toContain('"resourceType":"Patient"');
});
