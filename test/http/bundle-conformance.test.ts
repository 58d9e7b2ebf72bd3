/**
 * batch and transaction Bundles against FHIR R4 http.html#transaction and bundle.html:
 * malformed Bundles, fullUrl rules, references between entries, and response entries.
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

const post = (type: string, entry: unknown, headers?: Record<string, string>) =>
  client.post('', { resourceType: 'Bundle', type, entry }, headers);
const count = async (type: string) =>
  (await server.pool.query('SELECT count(*)::int AS n FROM resource WHERE resource_type = $1', [type])).rows[0].n;

describe('malformed Bundles and entries are 400 with an OperationOutcome, never 500', () => {
  test('Bundle.entry that is not an array', async () => {
    for (const type of ['batch', 'transaction']) {
      const res = await post(type, { request: { method: 'GET', url: 'metadata' } });
      expect(res.status).toBe(400);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.issue[0].expression).toEqual(['Bundle.entry']);
    }
  });

  test('a transaction entry that is not an object, or whose request elements have the wrong JSON type: 400, nothing written', async () => {
    const before = await count('Patient');
    const ok = { resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } };
    const cases: [unknown, string][] = [
      [null, 'Bundle.entry[1]'],
      ['Patient', 'Bundle.entry[1]'],
      [{ request: 'POST Patient' }, 'Bundle.entry[1].request'],
      [{ request: { method: 5, url: 'Patient' } }, 'Bundle.entry[1].request.method'],
      [{ request: { method: 'GET', url: ['Patient'] } }, 'Bundle.entry[1].request.url'],
      [{ resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient', ifNoneExist: { identifier: 'x' } } }, 'Bundle.entry[1].request.ifNoneExist'],
      [{ resource: 'Patient', request: { method: 'POST', url: 'Patient' } }, 'Bundle.entry[1].resource'],
      [{ fullUrl: 7, resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } }, 'Bundle.entry[1].fullUrl'],
    ];
    for (const [entry, expression] of cases) {
      const res = await post('transaction', [ok, entry]);
      expect({ entry, status: res.status }).toEqual({ entry, status: 400 });
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.issue[0].expression).toEqual([expression]);
    }
    expect(await count('Patient')).toBe(before);
  });

  test('in a batch, a malformed entry fails alone with 400', async () => {
    const res = await post('batch', [null, { request: { method: 'GET', url: 42 } }, { request: { method: 'GET', url: 'metadata' } }]);
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['400 Bad Request', '400 Bad Request', '200 OK']);
    expect(res.body.entry[0].response.outcome.issue[0].code).toBe('structure');
  });
});

describe('fullUrl', () => {
  const U = 'urn:uuid:5a1d0000-0000-4000-8000-000000000001';
  test('two transaction entries with one fullUrl: 400 (bdl-7), nothing written', async () => {
    const before = await count('Patient');
    const res = await post('transaction', [
      { fullUrl: U, resource: { resourceType: 'Patient', gender: 'male' }, request: { method: 'POST', url: 'Patient' } },
      { fullUrl: U, resource: { resourceType: 'Patient', gender: 'female' }, request: { method: 'POST', url: 'Patient' } },
      { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: U } }, request: { method: 'POST', url: 'Observation' } },
    ]);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toContain('Bundle.entry[0] and Bundle.entry[1] have the same fullUrl');
    expect(res.body.issue[0].expression).toEqual(['Bundle.entry[1].fullUrl']);
    expect(await count('Patient')).toBe(before);
  });

  test('a batch with one fullUrl twice is refused as a whole; different meta.versionId is allowed (bdl-7)', async () => {
    const same = await post('batch', [
      { fullUrl: U, resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
      { fullUrl: U, resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
    ]);
    expect(same.status).toBe(400);
    const versions = await post('batch', [
      { fullUrl: `${server.baseUrl}/Patient/bdl7`, resource: { resourceType: 'Patient', meta: { versionId: '1' } }, request: { method: 'GET', url: 'Patient/bdl7' } },
      { fullUrl: `${server.baseUrl}/Patient/bdl7`, resource: { resourceType: 'Patient', meta: { versionId: '2' } }, request: { method: 'GET', url: 'Patient/bdl7' } },
    ]);
    expect(versions.status).toBe(200);
    expect(versions.body.entry.map((e: any) => e.response.status)).toEqual(['404 Not Found', '404 Not Found']);
  });
});

describe('references in a batch', () => {
  beforeAll(async () => {
    await client.put('Patient/ref-one', { resourceType: 'Patient', id: 'ref-one', identifier: [{ system: 'urn:ref', value: 'one' }] });
    await client.put('Patient/ref-a', { resourceType: 'Patient', id: 'ref-a', identifier: [{ system: 'urn:ref', value: 'two' }] });
    await client.put('Patient/ref-b', { resourceType: 'Patient', id: 'ref-b', identifier: [{ system: 'urn:ref', value: 'two' }] });
  });
  const observation = (reference: string) => ({
    resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference } },
    request: { method: 'POST', url: 'Observation' },
  });

  test('conditional references are resolved per entry: one match rewritten, none 400, several 412', async () => {
    const res = await post('batch', [
      observation('Patient?identifier=urn:ref|one'),
      observation('Patient?identifier=urn:ref|none'),
      observation('Patient?identifier=urn:ref|two'),
      observation('Patient?_format=json'),
    ], { Prefer: 'return=representation' });
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['201 Created', '400 Bad Request', '412 Precondition Failed', '400 Bad Request']);
    expect(res.body.entry[0].resource.subject.reference).toBe('Patient/ref-one');
    const stored = (await client.get(res.body.entry[0].response.location.slice(server.baseUrl.length + 1))).body;
    expect(stored.subject.reference).toBe('Patient/ref-one');
    expect(res.body.entry[2].response.outcome.issue[0].code).toBe('multiple-matches');
  });

  test('a reference to another entry of the batch fails that entry (entries of a batch must not depend on each other)', async () => {
    const U = 'urn:uuid:ba7c0000-0000-4000-8000-000000000001';
    const before = await count('Observation');
    const res = await post('batch', [
      { fullUrl: U, resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
      observation(U),
    ]);
    expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['201 Created', '400 Bad Request']);
    expect(res.body.entry[1].response.outcome.issue[0].diagnostics).toContain('another entry of the batch');
    expect(await count('Observation')).toBe(before);
  });

  test('a conditional reference without criteria fails a transaction too', async () => {
    const res = await post('transaction', [observation('Patient?_format=json')]);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toContain('has no search criteria');
  });
});

describe('response entries', () => {
  test('a HEAD entry answers status, etag and lastModified without the resource', async () => {
    await client.put('Patient/head-1', { resourceType: 'Patient', id: 'head-1' });
    for (const type of ['batch', 'transaction']) {
      const res = await post(type, [{ request: { method: 'HEAD', url: 'Patient/head-1' } }, { request: { method: 'GET', url: 'Patient/head-1' } }], { Prefer: 'return=representation' });
      expect(res.status).toBe(200);
      const [head, get] = res.body.entry;
      expect(head.response).toMatchObject({ status: '200 OK', etag: 'W/"1"' });
      expect(head.response.lastModified).toBeDefined();
      expect(head.resource).toBeUndefined();
      expect(get.resource.id).toBe('head-1');
    }
  });
});

describe('relative references resolve against the base of the entry\'s RESTful fullUrl (bundle.html#references)', () => {
  test('a transaction copied from another server: relative references name the entries with those fullUrls', async () => {
    const other = 'http://hospital-a.example/fhir';
    const res = await post('transaction', [
      { fullUrl: `${other}/Patient/123`, resource: { resourceType: 'Patient', id: '123', gender: 'female' }, request: { method: 'POST', url: 'Patient' } },
      { fullUrl: `${other}/Observation/9`, resource: { resourceType: 'Observation', id: '9', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/123' } }, request: { method: 'POST', url: 'Observation' } },
      // Not RESTful (urn:uuid): a relative reference is to this server, not to hospital-a.
      { fullUrl: 'urn:uuid:0e1a0000-0000-4000-8000-000000000001', resource: { resourceType: 'Observation', status: 'final', code: { text: 'y' }, subject: { reference: 'Patient/local-123' } }, request: { method: 'POST', url: 'Observation' } },
    ], { Prefer: 'return=representation' });
    expect(res.status).toBe(200);
    const patientId = res.body.entry[0].resource.id;
    expect(patientId).not.toBe('123');
    expect(res.body.entry[1].resource.subject.reference).toBe(`Patient/${patientId}`);
    expect(res.body.entry[2].resource.subject.reference).toBe('Patient/local-123');
  });

  test('an entry created with a fullUrl on this server: relative references to it follow the assigned id', async () => {
    const res = await post('transaction', [
      { fullUrl: `${server.baseUrl}/Patient/temp-1`, resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
      { fullUrl: 'urn:uuid:0e1a0000-0000-4000-8000-000000000002', resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient/temp-1' } }, request: { method: 'POST', url: 'Observation' } },
    ], { Prefer: 'return=representation' });
    expect(res.status).toBe(200);
    expect(res.body.entry[1].resource.subject.reference).toBe(`Patient/${res.body.entry[0].resource.id}`);
  });
});

describe('identical conditional writes in one transaction', () => {
  const org = (value: string) => ({ resourceType: 'Organization', identifier: [{ system: 'urn:org', value }] });
  const organizations = async (value: string) =>
    (await server.pool.query("SELECT id FROM resource WHERE resource_type = 'Organization' AND NOT deleted AND content->'identifier'->0->>'value' = $1", [value])).rows.map((r) => r.id);

  test('two conditional creates with the same criteria and no match create one resource; the second answers 200 with it', async () => {
    const res = await post('transaction', [
      { fullUrl: 'urn:uuid:c0c00000-0000-4000-8000-000000000001', resource: org('twice'), request: { method: 'POST', url: 'Organization', ifNoneExist: 'identifier=urn:org|twice' } },
      { fullUrl: 'urn:uuid:c0c00000-0000-4000-8000-000000000002', resource: org('twice'), request: { method: 'POST', url: 'Organization', ifNoneExist: 'Organization?identifier=urn:org|twice' } },
      { resource: { resourceType: 'Location', managingOrganization: { reference: 'urn:uuid:c0c00000-0000-4000-8000-000000000002' } }, request: { method: 'POST', url: 'Location' } },
    ], { Prefer: 'return=representation' });
    expect(res.status).toBe(200);
    const ids = await organizations('twice');
    expect(ids).toHaveLength(1);
    expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['201 Created', '200 OK', '201 Created']);
    expect(res.body.entry[1].response.location).toBe(res.body.entry[0].response.location);
    expect(res.body.entry[1].resource.id).toBe(ids[0]);
    expect(res.body.entry[2].resource.managingOrganization.reference).toBe(`Organization/${ids[0]}`);
  });

  test('under Prefer: return=OperationOutcome the repeated conditional create does not claim to have created', async () => {
    const entry = { resource: org('twice-oo'), request: { method: 'POST', url: 'Organization', ifNoneExist: 'identifier=urn:org|twice-oo' } };
    const res = await post('transaction', [entry, entry], { Prefer: 'return=OperationOutcome' });
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['201 Created', '200 OK']);
    expect(res.body.entry[0].response.outcome.issue[0].diagnostics).toMatch(/^Created Organization\//);
    expect(JSON.stringify(res.body.entry[1].response.outcome ?? {})).not.toContain('Created');
    expect(res.body.entry[1].response.location).toBe(res.body.entry[0].response.location);
  });

  test('two conditional creates with the same criteria and one match both answer 200 with it, nothing written', async () => {
    const existing = (await client.post('Organization', org('once'))).body;
    const res = await post('transaction', [
      { resource: org('once'), request: { method: 'POST', url: 'Organization', ifNoneExist: 'identifier=urn:org|once' } },
      { resource: org('once'), request: { method: 'POST', url: 'Organization', ifNoneExist: 'identifier=urn:org|once' } },
    ]);
    expect(res.status).toBe(200);
    expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['200 OK', '200 OK']);
    expect(res.body.entry[1].response.location).toBe(`${server.baseUrl}/Organization/${existing.id}/_history/1`);
    expect(await organizations('once')).toEqual([existing.id]);
  });

  test('two conditional updates with the same criteria and no match overlap: 400, nothing written', async () => {
    const res = await post('transaction', [
      { resource: org('put-twice'), request: { method: 'PUT', url: 'Organization?identifier=urn:org|put-twice' } },
      { resource: { ...org('put-twice'), name: 'B' }, request: { method: 'PUT', url: 'Organization?identifier=urn:org|put-twice' } },
    ]);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toMatch(/Bundle\.entry\[0\] and Bundle\.entry\[1\] both write Organization\//);
    expect(await organizations('put-twice')).toEqual([]);
  });
});

test('batch entries refused before they run (malformed, unresolvable reference) leave an AuditEvent each', async () => {
  const res = await client.post('', {
    resourceType: 'Bundle',
    type: 'batch',
    entry: [
      null,
      { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient?identifier=urn:audit|none' } }, request: { method: 'POST', url: 'Observation' } },
      { request: { method: 'GET', url: 'metadata' } },
    ],
  }, { 'X-Request-Id': 'audit-batch-refused' });
  expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['400 Bad Request', '400 Bad Request', '200 OK']);
  const rows = await server.pool.query(
    `SELECT content FROM resource WHERE resource_type = 'AuditEvent'
       AND content->'entity' @> jsonb_build_array(jsonb_build_object('what', jsonb_build_object('identifier', jsonb_build_object('value', $1::text))))`,
    ['audit-batch-refused']
  );
  const events = rows.rows.map((r) => [r.content.subtype?.[0]?.code, r.content.outcome]).sort();
  // The batch itself, the malformed entry (as part of the batch), the refused create, and the capabilities read.
  expect(events).toEqual([['batch', '0'], ['batch', '4'], ['capabilities', '0'], ['create', '4']]);
});

describe('PATCH entries', () => {
  const jsonPatch = (ops: unknown[]) => ({
    resourceType: 'Binary',
    contentType: 'application/json-patch+json',
    data: Buffer.from(JSON.stringify(ops)).toString('base64'),
  });

  test('urn:uuid references in a JSON Patch are rewritten like those in resources', async () => {
    await client.put('Patient/patch-ref', { resourceType: 'Patient', id: 'patch-ref' });
    const U = 'urn:uuid:9a7c0000-0000-4000-8000-000000000001';
    const res = await post('transaction', [
      { fullUrl: U, resource: { resourceType: 'Practitioner' }, request: { method: 'POST', url: 'Practitioner' } },
      { resource: jsonPatch([{ op: 'add', path: '/generalPractitioner', value: [{ reference: U }] }]), request: { method: 'PATCH', url: 'Patient/patch-ref' } },
    ]);
    expect(res.status).toBe(200);
    const practitioner = res.body.entry[0].response.location.split('/')[res.body.entry[0].response.location.split('/').length - 3];
    expect((await client.get('Patient/patch-ref')).body.generalPractitioner).toEqual([{ reference: `Practitioner/${practitioner}` }]);
  });

  test('the fullUrl of a PATCH entry names the patched resource', async () => {
    await client.put('Patient/patch-full', { resourceType: 'Patient', id: 'patch-full' });
    const U = 'urn:uuid:9a7c0000-0000-4000-8000-000000000002';
    const res = await post('transaction', [
      { fullUrl: U, resource: jsonPatch([{ op: 'add', path: '/active', value: true }]), request: { method: 'PATCH', url: 'Patient/patch-full' } },
      { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: U } }, request: { method: 'POST', url: 'Observation' } },
    ], { Prefer: 'return=representation' });
    expect(res.status).toBe(200);
    expect(res.body.entry[1].resource.subject.reference).toBe('Patient/patch-full');
  });

  test('an unresolved urn:uuid in a JSON Patch fails the transaction', async () => {
    const res = await post('transaction', [
      { resource: jsonPatch([{ op: 'add', path: '/generalPractitioner', value: [{ reference: 'urn:uuid:9a7c0000-0000-4000-8000-00000000dead' }] }]), request: { method: 'PATCH', url: 'Patient/patch-ref' } },
    ]);
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toContain("matches no entry's fullUrl");
  });
});

describe('entries that are not plain writes', () => {
  test('POST _search and POST operations answer their result in entry.resource, whatever Prefer says', async () => {
    await client.put('Patient/post-search', { resourceType: 'Patient', id: 'post-search', gender: 'other' });
    const res = await post('batch', [
      { request: { method: 'POST', url: 'Patient/_search?_id=post-search' } },
      { resource: { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { tag: [{ system: 'urn:t', code: 'a' }] } }] }, request: { method: 'POST', url: 'Patient/post-search/$meta-add' } },
    ], { Prefer: 'return=minimal' });
    expect(res.status).toBe(200);
    expect(res.body.entry[0].resource).toMatchObject({ resourceType: 'Bundle', type: 'searchset' });
    expect(res.body.entry[0].resource.entry[0].resource.id).toBe('post-search');
    expect(res.body.entry[1].resource.resourceType).toBe('Parameters');
  });

  test('a POST to "Type/" is a create whose fullUrl other entries can reference', async () => {
    const U = 'urn:uuid:51a50000-0000-4000-8000-000000000001';
    const res = await post('transaction', [
      { fullUrl: U, resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient/' } },
      { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: U } }, request: { method: 'POST', url: 'Observation' } },
    ], { Prefer: 'return=representation' });
    expect(res.status).toBe(200);
    expect(res.body.entry[1].resource.subject.reference).toBe(`Patient/${res.body.entry[0].resource.id}`);
  });
});

describe('links to entries outside Reference.reference (http.html transaction rules: uri, url, oid, uuid, narrative)', () => {
  test('Attachment.url, a valueUri and narrative links to an entry are rewritten; an Identifier.value equal to a fullUrl is not', async () => {
    const BINARY = 'urn:uuid:11a70000-0000-4000-8000-000000000001';
    const PATIENT = 'urn:uuid:11a70000-0000-4000-8000-000000000002';
    const res = await post('transaction', [
      { fullUrl: BINARY, resource: { resourceType: 'Binary', contentType: 'text/plain', data: Buffer.from('report').toString('base64') }, request: { method: 'POST', url: 'Binary' } },
      { fullUrl: PATIENT, resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
      {
        fullUrl: 'urn:uuid:11a70000-0000-4000-8000-000000000003',
        resource: {
          resourceType: 'DocumentReference',
          text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml"><a href="${PATIENT}">patient</a> <a href="urn:uuid:11a70000-0000-4000-8000-0000000000ff">elsewhere</a></div>` },
          masterIdentifier: { system: 'urn:ietf:rfc:3986', value: BINARY },
          extension: [{ url: 'http://example.org/fhir/StructureDefinition/source', valueUri: PATIENT }],
          status: 'current',
          subject: { reference: PATIENT },
          content: [{ attachment: { contentType: 'text/plain', url: BINARY } }],
        },
        request: { method: 'POST', url: 'DocumentReference' },
      },
    ], { Prefer: 'return=representation' });
    expect(res.status).toBe(200);
    const [binary, patient, doc] = res.body.entry.map((e: any) => e.resource);
    expect(doc.content[0].attachment.url).toBe(`Binary/${binary.id}`);
    expect(doc.extension[0].valueUri).toBe(`Patient/${patient.id}`);
    expect(doc.subject.reference).toBe(`Patient/${patient.id}`);
    expect(doc.text.div).toContain(`<a href="Patient/${patient.id}">patient</a>`);
    expect(doc.text.div).toContain('<a href="urn:uuid:11a70000-0000-4000-8000-0000000000ff">elsewhere</a>');
    // An Identifier's value is a string, not a link: kept as sent.
    expect(doc.masterIdentifier.value).toBe(BINARY);
    const stored = (await client.get(`DocumentReference/${doc.id}`)).body;
    expect(stored.content[0].attachment.url).toBe(`Binary/${binary.id}`);
  });
});

test('conditional creates of a transaction that match (also a repeated one) leave an AuditEvent each', async () => {
  await client.post('Organization', { resourceType: 'Organization', identifier: [{ system: 'urn:org', value: 'audited' }] });
  const entry = { resource: { resourceType: 'Organization' }, request: { method: 'POST', url: 'Organization', ifNoneExist: 'identifier=urn:org|audited' } };
  const res = await client.post('', { resourceType: 'Bundle', type: 'transaction', entry: [entry, entry] }, { 'X-Request-Id': 'audit-tx-conditional' });
  expect(res.status).toBe(200);
  const rows = await server.pool.query(
    `SELECT content FROM resource WHERE resource_type = 'AuditEvent'
       AND content->'entity' @> jsonb_build_array(jsonb_build_object('what', jsonb_build_object('identifier', jsonb_build_object('value', $1::text))))`,
    ['audit-tx-conditional']
  );
  expect(rows.rows.map((r) => r.content.subtype?.[0]?.code).sort()).toEqual(['create', 'create', 'transaction']);
});

test('a document Bundle stored by a transaction entry keeps its own urn:uuid references (they resolve inside it)', async () => {
  const inner = (n: number) => `urn:uuid:d0c00000-0000-4000-8000-00000000000${n}`;
  const doc = {
    resourceType: 'Bundle',
    type: 'document',
    identifier: { system: 'urn:ietf:rfc:3986', value: 'urn:uuid:0c3201b4-4d3b-4a5c-8f0a-2d0d9e0e0e01' },
    timestamp: '2020-01-01T00:00:00Z',
    entry: [
      { fullUrl: inner(1), resource: { resourceType: 'Composition', status: 'final', type: { text: 'x' }, date: '2020-01-01', title: 't', author: [{ reference: inner(2) }], subject: { reference: inner(2) } } },
      { fullUrl: inner(2), resource: { resourceType: 'Patient' } },
    ],
  };
  const res = await post('transaction', [{ resource: doc, request: { method: 'POST', url: 'Bundle' } }], { Prefer: 'return=representation' });
  expect(res.status).toBe(200);
  expect(res.body.entry[0].response.status).toBe('201 Created');
  expect(res.body.entry[0].resource.entry[0].resource.subject.reference).toBe(inner(2));
});

test('an entry refused while the transaction is planned (criteria, references) is named like one that fails when it runs', async () => {
  const cases = [
    { resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient', ifNoneExist: 'foo=bar' } },
    { resource: { resourceType: 'Patient' }, request: { method: 'PUT', url: 'Patient?foo=bar' } },
    { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: 'Patient?foo=bar' } }, request: { method: 'POST', url: 'Observation' } },
  ];
  for (const entry of cases) {
    const res = await post('transaction', [{ request: { method: 'GET', url: 'metadata' } }, entry]);
    expect(res.status).toBe(400);
    const last = res.body.issue[res.body.issue.length - 1];
    expect(last.expression).toEqual(['Bundle.entry[1]']);
    expect(last.diagnostics).toContain('Transaction failed at Bundle.entry[1]');
  }
});

test('transactions that update the same resources in opposite orders all succeed (a deadlock is retried, not a 500)', async () => {
  await client.put('Patient/dl-a', { resourceType: 'Patient', id: 'dl-a' });
  await client.put('Patient/dl-b', { resourceType: 'Patient', id: 'dl-b' });
  const put = (id: string, n: number) => ({ resource: { resourceType: 'Patient', id, birthDate: `2000-01-${String(n).padStart(2, '0')}` }, request: { method: 'PUT', url: `Patient/${id}` } });
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, n) => post('transaction', n % 2 ? [put('dl-a', n + 1), put('dl-b', n + 1)] : [put('dl-b', n + 1), put('dl-a', n + 1)]))
  );
  expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
}, 60000);
