/**
 * Content negotiation and bad input: every error is the right 4xx with an OperationOutcome,
 * and nothing malformed ever reaches storage or crashes the server.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import net from 'node:net';
import { FhirTestClient } from '../helpers/fhir-client';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer({ MAX_BODY_SIZE: '64kb' });
  client = server.client();
});
afterAll(async () => server.close());

const expectOutcome = (body: any, code?: string) => {
  expect(body.resourceType).toBe('OperationOutcome');
  expect(body.issue[0].severity).toBe('error');
  expect(typeof body.issue[0].diagnostics).toBe('string');
  if (code) expect(body.issue[0].code).toBe(code);
};

describe('response format', () => {
  test('_format and Accept choose the JSON media type; XML and others are 406', async () => {
    const cases: [string, Record<string, string>, string | number][] = [
      ['metadata', {}, 'application/fhir+json; charset=utf-8'],
      ['metadata?_format=json', {}, 'application/fhir+json; charset=utf-8'],
      ['metadata?_format=application/fhir%2Bjson', {}, 'application/fhir+json; charset=utf-8'],
      ['metadata?_format=application/json', {}, 'application/json; charset=utf-8'],
      ['metadata', { Accept: 'application/json' }, 'application/json; charset=utf-8'],
      ['metadata', { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' }, 'application/fhir+json; charset=utf-8'],
      ['metadata?_format=xml', {}, 406],
      ['metadata', { Accept: 'application/fhir+xml' }, 406],
      ['metadata', { Accept: 'image/png' }, 406],
    ];
    for (const [path, headers, expected] of cases) {
      const res = await client.get(path, headers);
      if (typeof expected === 'number') {
        expect(res.status).toBe(expected);
        expectOutcome(res.body, 'not-supported');
      } else {
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe(expected);
      }
    }
  });

  test('fhirVersion other than R4 in Accept or _format is 406, in Content-Type 415; 4.0 and 4.0.1 are served', async () => {
    const created = (await client.post('Patient', { resourceType: 'Patient' })).body;
    for (const accept of ['application/fhir+json; fhirVersion=3.0', 'application/fhir+json;fhirVersion=5.0, application/json; fhirVersion="3.0"']) {
      const res = await client.get(`Patient/${created.id}`, { Accept: accept });
      expect([accept, res.status]).toEqual([accept, 406]);
      expectOutcome(res.body, 'not-supported');
      expect(res.body.issue[0].diagnostics).toMatch(/fhirVersion=(3|5)\.0/);
    }
    expect((await client.get(`Patient/${created.id}?_format=${encodeURIComponent('application/fhir+json; fhirVersion=3.0')}`)).status).toBe(406);
    for (const accept of ['application/fhir+json; fhirVersion=4.0', 'application/fhir+json; fhirVersion=4.0.1', 'application/fhir+json; fhirVersion=3.0, application/fhir+json; fhirVersion=4.0; q=0.5']) {
      const res = await client.get(`Patient/${created.id}`, { Accept: accept });
      expect([accept, res.status]).toEqual([accept, 200]);
    }

    const marker = `version-${Date.now()}`;
    const patient = JSON.stringify({ resourceType: 'Patient', name: [{ family: marker }] });
    const stu3 = await client.request('POST', 'Patient', { rawBody: patient, headers: { 'Content-Type': 'application/fhir+json; fhirVersion=3.0' } });
    expect(stu3.status).toBe(415);
    expectOutcome(stu3.body, 'not-supported');
    expect(stu3.body.issue[0].diagnostics).toContain('fhirVersion=3.0');
    const rows = await server.pool.query("SELECT count(*)::int AS n FROM resource WHERE content->'name'->0->>'family' = $1", [marker]);
    expect(rows.rows[0].n).toBe(0);
    const r4 = await client.request('POST', 'Patient', { rawBody: patient, headers: { 'Content-Type': 'application/fhir+json; fhirVersion=4.0' } });
    expect(r4.status).toBe(201);
  });

  test('_pretty indents the JSON', async () => {
    const compact = await client.get('metadata');
    const pretty = await client.get('metadata?_pretty=true');
    expect(compact.text.includes('\n')).toBe(false);
    expect(pretty.text.startsWith('{\n  "resourceType"')).toBe(true);
  });

  test('HEAD answers like GET without a body', async () => {
    const created = (await client.post('Patient', { resourceType: 'Patient' })).body;
    const res = await client.request('HEAD', `Patient/${created.id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(res.text).toBe('');
  });
});

describe('bad input', () => {
  /** Sends bytes as they are, over a raw socket (HTTP clients would fix or refuse them). */
  const rawRequest = (bytes: Buffer): Promise<string> =>
    new Promise((resolve, reject) => {
      const url = new URL(server.baseUrl);
      const socket = net.connect(Number(url.port), url.hostname, () => socket.end(bytes));
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString('utf8')));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });

  test('a request Node cannot parse (raw UTF-8 in the URL) is 400 with an OperationOutcome', async () => {
    const answer = await rawRequest(Buffer.from('GET /fhir/Patient?family=王 HTTP/1.1\r\nHost: localhost\r\n\r\n', 'utf8'));
    const [head, body] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect(head).toMatch(/Content-Type: application\/fhir\+json/i);
    expectOutcome(JSON.parse(body), 'invalid');
    expect(JSON.parse(body).issue[0].diagnostics).toMatch(/percent-encoded/);
    // The server is still there, and the encoded form of the same search works.
    expect((await client.get(`Patient?family=${encodeURIComponent('王')}`)).status).toBe(200);
  });

  test('oversized headers are 431 with an OperationOutcome', async () => {
    const answer = await rawRequest(Buffer.from(`GET /fhir/metadata HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`));
    const [head, body] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 431/);
    expectOutcome(JSON.parse(body), 'too-long');
  });

  test('CONNECT, which Node does not pass to the app, is 405 with an OperationOutcome, not a closed socket', async () => {
    const answer = await rawRequest(Buffer.from('CONNECT localhost:80 HTTP/1.1\r\nHost: localhost:80\r\n\r\n'));
    const [head, body] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 405/);
    expect(head).toMatch(/Allow: GET, HEAD, POST, PUT, PATCH, DELETE/);
    expect(head).toMatch(/Content-Type: application\/fhir\+json/i);
    expectOutcome(JSON.parse(body), 'not-supported');
    expect((await client.get('metadata')).status).toBe(200);
  });

  test('an Expect header other than 100-continue is 417 with an OperationOutcome', async () => {
    const answer = await rawRequest(Buffer.from('POST /fhir/Patient HTTP/1.1\r\nHost: localhost\r\nExpect: teapot\r\nContent-Length: 0\r\n\r\n'));
    const [head, body] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 417/);
    expect(head).toMatch(/Content-Type: application\/fhir\+json/i);
    expectOutcome(JSON.parse(body), 'not-supported');
    expect(JSON.parse(body).issue[0].diagnostics).toMatch(/Expect: teapot/);
  });

  test('malformed JSON is 400 with code structure', async () => {
    const res = await client.request('POST', 'Patient', { rawBody: '{"resourceType": "Patient",', headers: { 'Content-Type': 'application/fhir+json' } });
    expect(res.status).toBe(400);
    expectOutcome(res.body, 'structure');
    expect(res.body.issue[0].diagnostics).toMatch(/not valid JSON/);
  });

  test('a JSON body that is not a resource is 400', async () => {
    for (const body of ['[]', '"text"', '42', 'null']) {
      const res = await client.request('POST', 'Patient', { rawBody: body, headers: { 'Content-Type': 'application/fhir+json' } });
      expect(res.status).toBe(400);
      expectOutcome(res.body);
    }
  });

  test('an unsupported media type is 415', async () => {
    const xml = await client.request('POST', 'Patient', { rawBody: '<Patient xmlns="http://hl7.org/fhir"/>', headers: { 'Content-Type': 'application/fhir+xml' } });
    expect(xml.status).toBe(415);
    expectOutcome(xml.body, 'not-supported');
    const text = await client.request('POST', 'Patient', { rawBody: 'hello', headers: { 'Content-Type': 'text/plain' } });
    expect(text.status).toBe(415);
  });

  test('a body over the configured limit is 413 and nothing is stored', async () => {
    const big = { resourceType: 'Patient', name: [{ text: 'x'.repeat(70 * 1024) }] };
    const res = await client.post('Patient', big);
    expect(res.status).toBe(413);
    expectOutcome(res.body, 'too-long');
    const rows = await server.pool.query("SELECT count(*)::int AS n FROM resource WHERE content->'name'->0->>'text' LIKE 'xxx%'");
    expect(rows.rows[0].n).toBe(0);
  });

  test('a wrong method is 405 with Allow', async () => {
    const post = await client.post('Patient/123', { resourceType: 'Patient', id: '123' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, PUT, PATCH, DELETE');
    expectOutcome(post.body, 'not-supported');
    expect((await client.delete('metadata')).status).toBe(405);
    expect((await client.put('Patient/_history', {})).status).toBe(405);
    expect((await client.request('OPTIONS', 'Patient')).status).toBe(204);
  });

  test('unknown endpoints are 404 with an OperationOutcome, also outside the FHIR base', async () => {
    const res = await client.get('Patient/1/_history/1/extra');
    expect(res.status).toBe(404);
    expectOutcome(res.body, 'not-found');
    const outside = await fetch(server.baseUrl.replace(/\/fhir$/, '/elsewhere'));
    expect(outside.status).toBe(404);
    expectOutcome((await outside.json()) as object, 'not-found');
  });

  test('a NUL byte (%00) in a search value, an id or conditional criteria is 400 invalid, never 500', async () => {
    const urls = [
      'Patient?name=%00',
      'Patient?family:exact=a%00b',
      'Patient?identifier=a%00',
      'Patient?_tag=%00',
      'Patient?_profile=%00',
      'Patient?_id=a%00',
      'Patient?na%00me=x',
      'Observation?subject=Patient/a%00',
      'Patient/a%00b',
      'Patient/a%00b/_history',
      'Patient/_history?_since=%00',
    ];
    for (const url of urls) {
      const res = await client.get(url);
      expect([url, res.status]).toEqual([url, 400]);
      expectOutcome(res.body, 'invalid');
      expect(res.body.issue[0].diagnostics).toMatch(/NUL/);
    }
    // The same parameters in the form body of POST _search.
    const form = await client.request('POST', 'Patient/_search', {
      rawBody: 'name=%00',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(400);
    expectOutcome(form.body, 'invalid');
    // Conditional criteria (If-None-Exist) and Bundle entries: refused, nothing written.
    const marker = 'nul-marker-' + Date.now();
    const conditional = await client.post('Patient', { resourceType: 'Patient', name: [{ family: marker }] }, { 'If-None-Exist': 'identifier=a%00' });
    expect(conditional.status).toBe(400);
    expectOutcome(conditional.body, 'invalid');
    const batch = await client.post('', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [{ request: { method: 'GET', url: 'Patient?name=%00' } }],
    });
    expect(batch.status).toBe(200);
    expect(batch.body.entry[0].response.status).toMatch(/^400/);
    expect(batch.body.entry[0].response.outcome.issue[0].code).toBe('invalid');
    const rows = await server.pool.query("SELECT count(*)::int AS n FROM resource WHERE content->'name'->0->>'family' = $1", [marker]);
    expect(rows.rows[0].n).toBe(0);
  });

  test('malformed percent-encoding or invalid UTF-8 in the path is 400 invalid, never 500', async () => {
    for (const url of ['Patient/%C3', 'Patient/%E0%A4', 'Patient/%ZZ', 'Patient%C3', 'Patient/1/_history/%C3', 'Patient/1/%C3']) {
      const res = await client.get(url);
      expect([url, res.status]).toEqual([url, 400]);
      expectOutcome(res.body, 'invalid');
      expect(res.body.issue[0].diagnostics).toMatch(/percent-encoded UTF-8/);
    }
    // A correctly encoded path still works.
    expect((await client.get('Patient/%61bc')).status).toBe(404);
  });

  test('malformed percent-encoding or invalid UTF-8 in the query string is 400 invalid, not a search for U+FFFD', async () => {
    for (const url of ['Patient?name=%C3', 'Patient?family=%E0%A4&gender=male', 'Patient?name=50%', 'Patient?name%ZZ=x']) {
      const res = await client.get(url);
      expect([url, res.status]).toEqual([url, 400]);
      expectOutcome(res.body, 'invalid');
      expect(res.body.issue[0].diagnostics).toMatch(/query string is not valid percent-encoded UTF-8/);
    }
    // Correctly encoded UTF-8 and form-encoded spaces still search.
    for (const url of ['Patient?name=%E7%8E%8B', 'Patient?name=a+b&_count=1']) {
      expect([url, (await client.get(url)).status]).toEqual([url, 200]);
    }
  });

  test('injection attempts in ids and paths are refused, not executed', async () => {
    const res = await client.get("Patient/1'%3B%20DROP%20TABLE%20resource%3B--");
    expect(res.status).toBe(400);
    const table = await server.pool.query("SELECT to_regclass('resource') IS NOT NULL AS present");
    expect(table.rows[0].present).toBe(true);
  });

  test('every response carries a request id, echoed when the client sends one', async () => {
    const res = await client.get('metadata', { 'X-Request-Id': 'trace-123' });
    expect(res.headers.get('x-request-id')).toBe('trace-123');
    expect((await client.get('metadata')).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('the server keeps answering after a burst of bad requests', async () => {
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        client.request('POST', i % 2 ? 'Patient' : '', { rawBody: '{bad', headers: { 'Content-Type': 'application/fhir+json' } })
      )
    );
    expect((await client.get('metadata')).status).toBe(200);
  });
});
