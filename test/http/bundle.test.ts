/**
 * batch and transaction Bundles: all-or-nothing, the spec's processing order, urn:uuid
 * resolution, per-entry responses, and a realistic clinical record read back.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});
afterAll(async () => server.close());

const fixture = () => JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'transaction-record.json'), 'utf8'));
const count = async (type: string) =>
  (await server.pool.query('SELECT count(*)::int AS n FROM resource WHERE resource_type = $1 AND NOT deleted', [type])).rows[0].n;

describe('transaction', () => {
  test('a clinical record (Patient, Encounter, Observation, reports, ImagingStudy) is stored with references resolved', async () => {
    const res = await client.post('', fixture());
    expect(res.status).toBe(200);
    const bundle = res.body;
    expect(bundle.type).toBe('transaction-response');
    expect(bundle.entry).toHaveLength(6);
    for (const entry of bundle.entry) {
      expect(entry.response.status).toBe('201 Created');
      expect(entry.response.location).toMatch(new RegExp(`^${server.baseUrl}/[A-Za-z]+/[0-9a-f-]{36}/_history/1$`));
      expect(entry.response.etag).toBe('W/"1"');
      expect(entry.response.lastModified).toBeDefined();
    }
    const [patientLoc, encounterLoc, observationLoc, labLoc, studyLoc, imagingLoc] = bundle.entry.map((e: any) =>
      e.response.location.slice(server.baseUrl.length + 1).replace(/\/_history\/1$/, '')
    );
    expect(patientLoc).toMatch(/^Patient\//);
    const lab = (await client.get(labLoc)).body;
    expect(lab.subject.reference).toBe(patientLoc);
    expect(lab.encounter.reference).toBe(encounterLoc);
    expect(lab.result[0].reference).toBe(observationLoc);
    const imaging = (await client.get(imagingLoc)).body;
    expect(imaging.imagingStudy[0].reference).toBe(studyLoc);
    const study = (await client.get(studyLoc)).body;
    expect(study.series[0].instance[0].uid).toBe('1.2.156.112605.14038010222575.20261120.1.1.1');
    // Every resource of the record lands in the patient's compartment.
    const patientId = patientLoc.split('/')[1];
    const rows = await server.pool.query("SELECT resource_type FROM resource WHERE compartments @> ARRAY[$1]::text[] AND resource_type NOT IN ('AuditEvent', 'Provenance') ORDER BY 1", [patientId]);
    expect(rows.rows.map((r) => r.resource_type)).toEqual([
      'DiagnosticReport', 'DiagnosticReport', 'Encounter', 'ImagingStudy', 'Observation', 'Patient',
    ]);
  });

  test('all or nothing: one invalid entry rolls back every other entry', async () => {
    const before = await count('Patient');
    const bundle = fixture();
    bundle.entry[3].resource.status = 'not-a-status-code-because-it-has-spaces and more';
    bundle.entry[2].resource.valueQuantity.value = 'five';
    const res = await client.post('', bundle);
    expect(res.status).toBe(422);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue.map((i: any) => i.diagnostics).join(' ')).toMatch(/Bundle\.entry\[2\]/);
    expect(await count('Patient')).toBe(before);
  });

  test('entries run in the order DELETE, POST, PUT, GET and answer in their own order', async () => {
    const existing = (await client.put('Organization/org-order', { resourceType: 'Organization', id: 'org-order', name: 'Old' })).body;
    await client.put('Organization/org-gone', { resourceType: 'Organization', id: 'org-gone', name: 'Gone' });
    const res = await client.post('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'GET', url: 'Organization/org-order' } },
        { resource: { ...existing, name: 'New' }, request: { method: 'PUT', url: 'Organization/org-order' } },
        { fullUrl: 'urn:uuid:c0ffee00-0000-4000-8000-000000000001', resource: { resourceType: 'Organization', name: 'Created', partOf: { reference: 'Organization/org-order' } }, request: { method: 'POST', url: 'Organization' } },
        { request: { method: 'DELETE', url: 'Organization/org-gone' } },
      ],
    });
    expect(res.status).toBe(200);
    const entries = res.body.entry;
    expect(entries.map((e: any) => e.response.status)).toEqual(['200 OK', '200 OK', '201 Created', '204 No Content']);
    // The GET ran last, so it sees the PUT made in the same transaction.
    expect(entries[0].resource.name).toBe('New');
    expect((await client.get('Organization/org-gone')).status).toBe(410);
  });

  test('a PUT in a transaction can be referenced by its fullUrl; JSON Patch travels as a Binary', async () => {
    await client.put('Practitioner/doc-1', { resourceType: 'Practitioner', id: 'doc-1', active: true });
    const patch = Buffer.from(JSON.stringify([{ op: 'replace', path: '/active', value: false }])).toString('base64');
    const res = await client.post('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:11111111-2222-4333-8444-555555555555', resource: { resourceType: 'Patient', id: 'tx-put-1' }, request: { method: 'PUT', url: 'Patient/tx-put-1' } },
        { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:11111111-2222-4333-8444-555555555555' } }, request: { method: 'POST', url: 'Observation' } },
        { resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: patch }, request: { method: 'PATCH', url: 'Practitioner/doc-1' } },
      ],
    });
    expect(res.status).toBe(200);
    const obsLoc = res.body.entry[1].response.location.slice(server.baseUrl.length + 1);
    expect((await client.get(obsLoc)).body.subject.reference).toBe('Patient/tx-put-1');
    expect((await client.get('Practitioner/doc-1')).body.active).toBe(false);
  });

  test('an unresolvable urn:uuid reference fails the transaction with 400', async () => {
    const res = await client.post('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'urn:uuid:99999999-9999-4999-8999-999999999999' } }, request: { method: 'POST', url: 'Observation' } }],
    });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(/matches no entry's fullUrl/);
  });

  describe('entries whose resource identities overlap fail the whole transaction (http.html, transaction rules)', () => {
    const transaction = (entry: unknown[]) => client.post('', { resourceType: 'Bundle', type: 'transaction', entry });
    const versionOf = async (type: string, id: string) =>
      (await server.pool.query('SELECT version_id FROM resource WHERE resource_type = $1 AND id = $2', [type, id])).rows[0]?.version_id;
    const jsonPatch = (ops: unknown[]) => ({
      resourceType: 'Binary',
      contentType: 'application/json-patch+json',
      data: Buffer.from(JSON.stringify(ops)).toString('base64'),
    });
    const expectOverlap = (res: { status: number; body: any }, first: number, second: number, identity: string) => {
      expect(res.status).toBe(400);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.issue[0].code).toBe('invalid');
      expect(res.body.issue[0].diagnostics).toContain(`Bundle.entry[${first}] and Bundle.entry[${second}] both write ${identity}`);
    };

    test('two PUTs of one id: 400, nothing written', async () => {
      const res = await transaction([
        { resource: { resourceType: 'Patient', id: 'tx-dup', gender: 'male' }, request: { method: 'PUT', url: 'Patient/tx-dup' } },
        { resource: { resourceType: 'Patient', id: 'tx-dup', gender: 'female' }, request: { method: 'PUT', url: 'Patient/tx-dup' } },
      ]);
      expectOverlap(res, 0, 1, 'Patient/tx-dup');
      expect(await versionOf('Patient', 'tx-dup')).toBeUndefined();
    });

    test('DELETE and PUT, and PUT and PATCH, of one existing resource: 400, the resource unchanged', async () => {
      await client.put('Patient/tx-dup-2', { resourceType: 'Patient', id: 'tx-dup-2', gender: 'male' });
      expect(await versionOf('Patient', 'tx-dup-2')).toBe(1);
      const deleteAndPut = await transaction([
        { request: { method: 'DELETE', url: 'Patient/tx-dup-2' } },
        { resource: { resourceType: 'Patient', id: 'tx-dup-2', gender: 'female' }, request: { method: 'PUT', url: 'Patient/tx-dup-2' } },
      ]);
      expectOverlap(deleteAndPut, 0, 1, 'Patient/tx-dup-2');
      const putAndPatch = await transaction([
        { resource: { resourceType: 'Patient', id: 'tx-dup-2', gender: 'female' }, request: { method: 'PUT', url: 'Patient/tx-dup-2' } },
        { resource: jsonPatch([{ op: 'replace', path: '/gender', value: 'other' }]), request: { method: 'PATCH', url: 'Patient/tx-dup-2' } },
      ]);
      expectOverlap(putAndPatch, 0, 1, 'Patient/tx-dup-2');
      expect(await versionOf('Patient', 'tx-dup-2')).toBe(1);
      expect((await client.get('Patient/tx-dup-2')).body.gender).toBe('male');
    });

    test('identities resolved from a conditional update or a conditional delete count too', async () => {
      await client.put('Patient/tx-dup-3', { resourceType: 'Patient', id: 'tx-dup-3', identifier: [{ system: 'urn:tx-dup', value: '3' }] });
      const conditionalPut = await transaction([
        { resource: { resourceType: 'Patient', id: 'tx-dup-3', active: true }, request: { method: 'PUT', url: 'Patient/tx-dup-3' } },
        { resource: { resourceType: 'Patient', identifier: [{ system: 'urn:tx-dup', value: '3' }], active: false }, request: { method: 'PUT', url: 'Patient?identifier=urn:tx-dup|3' } },
      ]);
      expectOverlap(conditionalPut, 0, 1, 'Patient/tx-dup-3');
      const conditionalDelete = await transaction([
        { request: { method: 'DELETE', url: 'Patient?identifier=urn:tx-dup|3' } },
        { resource: jsonPatch([{ op: 'add', path: '/active', value: true }]), request: { method: 'PATCH', url: 'Patient/tx-dup-3' } },
      ]);
      expectOverlap(conditionalDelete, 0, 1, 'Patient/tx-dup-3');
      expect(await versionOf('Patient', 'tx-dup-3')).toBe(1);
      // The same entries on different resources are fine.
      const distinct = await transaction([
        { request: { method: 'DELETE', url: 'Patient?identifier=urn:tx-dup|3' } },
        { resource: { resourceType: 'Patient', id: 'tx-dup-4' }, request: { method: 'PUT', url: 'Patient/tx-dup-4' } },
      ]);
      expect(distinct.status).toBe(200);
      expect((await client.get('Patient/tx-dup-3')).status).toBe(410);
    });

    test('a batch is not affected: each entry runs on its own', async () => {
      const res = await client.post('', {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { resource: { resourceType: 'Patient', id: 'batch-dup', gender: 'male' }, request: { method: 'PUT', url: 'Patient/batch-dup' } },
          { resource: { resourceType: 'Patient', id: 'batch-dup', gender: 'female' }, request: { method: 'PUT', url: 'Patient/batch-dup' } },
        ],
      });
      expect(res.status).toBe(200);
      expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['201 Created', '200 OK']);
      expect(await versionOf('Patient', 'batch-dup')).toBe(2);
    });
  });

  test('Prefer: return=representation puts the resources in the response entries', async () => {
    const res = await client.post('', fixture(), { Prefer: 'return=representation' });
    expect(res.body.entry[0].resource.resourceType).toBe('Patient');
  });
});

describe('batch', () => {
  test('entries run independently, each with its own status or OperationOutcome', async () => {
    const res = await client.post('', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { resourceType: 'Patient', gender: 'female' }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', gender: 42 }, request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'GET', url: 'Patient/does-not-exist' } },
        { request: { method: 'GET', url: 'metadata' } },
        { request: { method: 'POST' } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('batch-response');
    const statuses = res.body.entry.map((e: any) => e.response.status);
    expect(statuses).toEqual(['201 Created', '422 Unprocessable Entity', '404 Not Found', '200 OK', '400 Bad Request']);
    expect(res.body.entry[1].response.outcome.resourceType).toBe('OperationOutcome');
    expect(res.body.entry[3].resource.resourceType).toBe('CapabilityStatement');
    const created = res.body.entry[0].response.location.slice(server.baseUrl.length + 1);
    expect((await client.get(created)).status).toBe(200);
  });

  test('an empty batch or transaction answers a Bundle with no entry element (FHIR JSON has no empty arrays)', async () => {
    for (const type of ['batch', 'transaction']) {
      const res = await client.post('', { resourceType: 'Bundle', type });
      expect(res.status).toBe(200);
      expect(res.body.type).toBe(`${type}-response`);
      expect(res.text).not.toContain('"entry"');
    }
  });

  test('Bundle types other than batch and transaction, and nested bundles, are refused', async () => {
    expect((await client.post('', { resourceType: 'Bundle', type: 'collection' })).status).toBe(400);
    expect((await client.post('', { resourceType: 'Patient' })).status).toBe(400);
    const nested = await client.post('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: { resourceType: 'Bundle', type: 'batch' }, request: { method: 'POST', url: '' } }],
    });
    expect(nested.status).toBe(400);
  });
});

const SYNTHEA = path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'synthea-r4');

describe('Synthea records (../shared/data/synthea-r4)', () => {
  const present = fs.existsSync(SYNTHEA);
  if (!present) {
    test.skip('skipped: ../shared/data/synthea-r4 is absent in this checkout', () => undefined);
    return;
  }
  // Two records have an Observation whose category is "vital-sign", a code the (complete)
  // observation-category code system does not have ("vital-signs"): validation refuses them.
  const WITH_UNKNOWN_CODE = ['Beatrice_Aufderhar_5451401c-ab1b-4adc-9df6-c02e856e492a.json', 'Michele_Wolf_9fd25274-3a7d-43d4-87af-a03849074b5a.json'];

  test('hospital, practitioners and three patient records load as transactions and read back', async () => {
    const files = fs.readdirSync(SYNTHEA).sort();
    const ordered = [
      ...files.filter((f) => f.startsWith('hospitalInformation')),
      ...files.filter((f) => f.startsWith('practitionerInformation')),
      ...files.filter((f) => !f.startsWith('hospital') && !f.startsWith('practitioner') && !WITH_UNKNOWN_CODE.includes(f)).slice(0, 3),
    ];
    let resources = 0;
    for (const file of ordered) {
      const bundle = JSON.parse(fs.readFileSync(path.join(SYNTHEA, file), 'utf8'));
      const res = await client.post('', bundle);
      expect({ file, status: res.status, issue: res.body.issue?.slice(0, 2) }).toEqual({ file, status: 200, issue: undefined });
      expect(res.body.entry).toHaveLength(bundle.entry.length);
      resources += bundle.entry.length;
      const last = res.body.entry[res.body.entry.length - 1].response.location.slice(server.baseUrl.length + 1);
      expect((await client.get(last)).status).toBe(200);
    }
    const stored = await server.pool.query("SELECT count(*)::int AS n FROM resource WHERE content->'meta'->>'versionId' = '1'");
    expect(stored.rows[0].n).toBeGreaterThanOrEqual(resources);
  });

  test('a record with a code its code system does not define is refused as a whole', async () => {
    const bundle = JSON.parse(fs.readFileSync(path.join(SYNTHEA, WITH_UNKNOWN_CODE[0]), 'utf8'));
    const patients = "SELECT count(*)::int AS n FROM resource WHERE resource_type = 'Patient'";
    const before = (await server.pool.query(patients)).rows[0].n;
    const res = await client.post('', bundle);
    expect(res.status).toBe(422);
    expect(res.body.issue.some((i: any) => /Unknown code "vital-sign" in the code system http:\/\/terminology.hl7.org\/CodeSystem\/observation-category/.test(i.diagnostics))).toBe(true);
    expect((await server.pool.query(patients)).rows[0].n).toBe(before);
  });
});
