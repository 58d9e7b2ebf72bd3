/**
 * The benchmark's generated data is what a hospital would send, and the server accepts it:
 * the directory, whole patient records as transactions, and the CRUD workload's resources,
 * through the server's own validation.
 */
import type { Bundle } from '@medplum/fhirtypes';
import { patientRecord, referenceData } from '../../bench/data/generator';
import { crudChange, crudResource, CRUD_TYPES } from '../../bench/data/crud';
import { OID } from '../../bench/data/national';
import { startTestServer, type TestServer } from '../helpers/server';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server.close();
});

test('the directory and patient records are stored as transactions, every entry created', async () => {
  const client = server.client();
  const directory = await client.post('', referenceData());
  expect(directory.status).toBe(200);
  for (const index of [0, 1, 2]) {
    const record = patientRecord(1, index);
    const res = await client.post<Bundle>('', record.bundle);
    expect(res.status).toBe(200);
    expect(res.body.entry!.map((e) => e.response!.status)).toEqual(record.bundle.entry!.map(() => '201 Created'));
    const found = await client.get(`Patient?identifier=${OID.residentId}|${record.identity.residentId}`);
    expect(found.body.entry).toHaveLength(1);
  }
});

test('the CRUD workload can create, read, update and delete each of its resources', async () => {
  const client = server.client();
  const patient = await client.post('Patient', crudResource(1, 0, 'Patient', 'x'));
  expect(patient.status).toBe(201);
  for (const [n, type] of CRUD_TYPES.entries()) {
    const created = await client.post(type, crudResource(1, n + 1, type, patient.body.id));
    expect(created.status).toBe(201);
    const id = created.body.id;
    expect((await client.get(`${type}/${id}`)).status).toBe(200);
    expect((await client.put(`${type}/${id}`, crudChange({ ...created.body }))).status).toBe(200);
    // Legacy encounters and resources without an encounter have no retention left.
    expect((await client.delete(`${type}/${id}`)).status).toBe(204);
  }
});
