/**
 * patch with JSON Patch and FHIRPath Patch: applied to the current version, validated like
 * an update, versioned, and refused precisely when the patch or its result is wrong.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});
afterAll(async () => server.close());

async function newPatient() {
  return (
    await client.post('Patient', {
      resourceType: 'Patient',
      active: true,
      name: [{ family: 'Chen', given: ['Mei', 'Ling'] }],
      identifier: [
        { system: 'urn:oid:2.16.156.10011.1.3', value: '11010519491231002X' },
        { system: 'urn:oid:2.16.156.10011.1.13', value: 'MRN-1' },
      ],
      birthDate: '1949-12-31',
    })
  ).body;
}

const jsonPatch = (id: string, ops: unknown, headers: Record<string, string> = {}) =>
  client.request('PATCH', `Patient/${id}`, { body: ops, headers: { 'Content-Type': 'application/json-patch+json', ...headers } });

const op = (type: string, parts: Record<string, unknown>) => ({
  name: 'operation',
  part: [{ name: 'type', valueCode: type }, ...Object.entries(parts).map(([name, value]) => ({ name, ...(value as object) }))],
});

describe('JSON Patch', () => {
  test('applies operations and writes a new version', async () => {
    const p = await newPatient();
    const res = await jsonPatch(p.id, [
      { op: 'replace', path: '/active', value: false },
      { op: 'add', path: '/gender', value: 'female' },
      { op: 'remove', path: '/identifier/1' },
    ]);
    expect(res.status).toBe(200);
    expect(res.body.meta.versionId).toBe('2');
    expect(res.body.active).toBe(false);
    expect(res.body.gender).toBe('female');
    expect(res.body.identifier).toHaveLength(1);
    const history = await server.pool.query('SELECT method FROM resource_version WHERE id = $1 ORDER BY version_id', [p.id]);
    expect(history.rows.map((r) => r.method)).toEqual(['POST', 'PATCH']);
  });

  test('a failing test operation is 422; a path that does not exist is 400; nothing changes', async () => {
    const p = await newPatient();
    const failed = await jsonPatch(p.id, [{ op: 'test', path: '/active', value: false }, { op: 'replace', path: '/active', value: false }]);
    expect(failed.status).toBe(422);
    const missing = await jsonPatch(p.id, [{ op: 'replace', path: '/nothing/here', value: 1 }]);
    expect(missing.status).toBe(400);
    expect((await jsonPatch(p.id, { op: 'replace' })).status).toBe(400);
    expect((await client.get(`Patient/${p.id}`)).body.meta.versionId).toBe('1');
  });

  test('patches the library cannot apply are 400, never a server error', async () => {
    const p = await newPatient();
    for (const ops of [
      [{ op: 'move', from: '/name', path: '/name/0' }],
      [{ op: 'add', path: '/__proto__/polluted', value: 1 }],
      [{ op: 'add', path: '/constructor/prototype/polluted', value: 1 }],
    ]) {
      const res = await jsonPatch(p.id, ops);
      expect([JSON.stringify(ops), res.status, res.body.issue[0].code]).toEqual([JSON.stringify(ops), 400, 'invalid']);
    }
    expect(({} as any).polluted).toBeUndefined();
    expect((await client.get(`Patient/${p.id}`)).body.meta.versionId).toBe('1');
  });

  test('a patch whose result is invalid is 422', async () => {
    const p = await newPatient();
    const res = await jsonPatch(p.id, [{ op: 'replace', path: '/birthDate', value: 'yesterday' }]);
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression).toEqual(['Patient.birthDate']);
  });

  test('If-Match is honoured; patching a deleted resource is 410, an unknown one 404', async () => {
    const p = await newPatient();
    expect((await jsonPatch(p.id, [{ op: 'replace', path: '/active', value: false }], { 'If-Match': 'W/"9"' })).status).toBe(412);
    expect((await jsonPatch(p.id, [{ op: 'replace', path: '/active', value: false }], { 'If-Match': 'W/"1"' })).status).toBe(200);
    await client.delete(`Patient/${p.id}`);
    expect((await jsonPatch(p.id, [{ op: 'replace', path: '/active', value: true }])).status).toBe(410);
    expect((await jsonPatch('unknown', [{ op: 'replace', path: '/active', value: true }])).status).toBe(404);
  });

  test('a patch may not change the id', async () => {
    const p = await newPatient();
    const res = await jsonPatch(p.id, [{ op: 'replace', path: '/id', value: 'other' }]);
    expect(res.status).toBe(400);
  });
});

describe('FHIRPath Patch', () => {
  const fhirPathPatch = (id: string, ...operations: unknown[]) =>
    client.patch(`Patient/${id}`, { resourceType: 'Parameters', parameter: operations });

  test('add, insert, replace, delete and move', async () => {
    const p = await newPatient();
    const res = await fhirPathPatch(
      p.id,
      op('add', { path: { valueString: 'Patient' }, name: { valueString: 'gender' }, value: { valueCode: 'female' } }),
      op('add', {
        path: { valueString: 'Patient' },
        name: { valueString: 'telecom' },
        value: { part: [{ name: 'system', valueCode: 'phone' }, { name: 'value', valueString: '+86 10 1234 5678' }] },
      }),
      op('insert', { path: { valueString: 'Patient.name[0].given' }, index: { valueInteger: 0 }, value: { valueString: 'Xiao' } }),
      op('replace', { path: { valueString: 'Patient.birthDate' }, value: { valueDate: '1950-01-01' } }),
      op('delete', { path: { valueString: "Patient.identifier.where(system = 'urn:oid:2.16.156.10011.1.13')" } }),
      op('move', { path: { valueString: 'Patient.name[0].given' }, source: { valueInteger: 2 }, destination: { valueInteger: 0 } })
    );
    expect(res.status).toBe(200);
    const body = res.body;
    expect(body.gender).toBe('female');
    expect(body.telecom).toEqual([{ system: 'phone', value: '+86 10 1234 5678' }]);
    expect(body.name[0].given).toEqual(['Ling', 'Xiao', 'Mei']);
    expect(body.birthDate).toBe('1950-01-01');
    expect(body.identifier).toEqual([{ system: 'urn:oid:2.16.156.10011.1.3', value: '11010519491231002X' }]);
  });

  test('replace of a choice element may change its type', async () => {
    const obs = (
      await client.post('Observation', {
        resourceType: 'Observation',
        status: 'final',
        code: { text: 'note' },
        valueString: 'high',
      })
    ).body;
    const res = await client.patch(`Observation/${obs.id}`, {
      resourceType: 'Parameters',
      parameter: [op('replace', { path: { valueString: 'Observation.value' }, value: { valueQuantity: { value: 7.2, unit: 'mmol/L' } } })],
    });
    expect(res.status).toBe(200);
    expect(res.body.valueString).toBeUndefined();
    expect(res.body.valueQuantity).toEqual({ value: 7.2, unit: 'mmol/L' });
  });

  test('errors: unknown operation type, a replace that matches nothing, unparseable paths', async () => {
    const p = await newPatient();
    const unknown = await fhirPathPatch(p.id, op('frobnicate', { path: { valueString: 'Patient' } }));
    expect(unknown.status).toBe(400);
    expect(unknown.body.issue[0].diagnostics).toMatch(/unknown operation type/);
    const nothing = await fhirPathPatch(p.id, op('replace', { path: { valueString: 'Patient.deceased' }, value: { valueBoolean: true } }));
    expect(nothing.status).toBe(400);
    expect((await fhirPathPatch(p.id, op('delete', { path: { valueString: 'Patient.(' } }))).status).toBe(400);
    expect((await client.patch(`Patient/${p.id}`, { resourceType: 'Parameters' })).status).toBe(400);
    expect((await client.get(`Patient/${p.id}`)).body.meta.versionId).toBe('1');
  });

  test('a malformed Parameters body or a non-integer index is 400, never a server error or a guess', async () => {
    const p = await newPatient();
    const given = { valueString: 'Patient.name[0].given' };
    for (const parameter of [
      {},
      'operation',
      [null],
      [{ name: 'operation', part: 'type' }],
      [{ name: 'operation', part: [null] }],
      [{ name: 'operation', part: [{ name: 'type', valueCode: 'delete' }, { name: 'path', valueInteger: 1 }] }],
      [op('insert', { path: given, index: { valueInteger: 'a' }, value: { valueString: 'Xiao' } })],
      [op('insert', { path: given, index: { valueInteger: 0.5 }, value: { valueString: 'Xiao' } })],
      [op('move', { path: given, source: { valueString: '1' }, destination: { valueInteger: 0 } })],
      [op('add', { path: { valueString: 'Patient' }, name: { valueString: 'telecom' }, value: { part: 'x' } })],
    ]) {
      const res = await client.patch(`Patient/${p.id}`, { resourceType: 'Parameters', parameter });
      expect([JSON.stringify(parameter), res.status, res.body.issue[0].code]).toEqual([JSON.stringify(parameter), 400, 'invalid']);
    }
    expect((await client.get(`Patient/${p.id}`)).body.meta.versionId).toBe('1');
  });

  test('a body that is neither patch format is 415', async () => {
    const p = await newPatient();
    const res = await client.patch(`Patient/${p.id}`, { resourceType: 'Patient' });
    expect(res.status).toBe(415);
  });
});
