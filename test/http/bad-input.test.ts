/**
 * A hostile or buggy client: bodies, encodings and parameters that are wrong in ways the
 * other HTTP tests do not cover. Every answer is a 4xx (or a correct 2xx) with an
 * OperationOutcome, nothing is stored half or altered, and the server keeps serving.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import type { FhirTestClient, HttpResult } from '../helpers/fhir-client';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
});
afterAll(async () => server.close());

const expectOutcome = (res: HttpResult, status: number, code?: string) => {
  expect([res.status, res.text.slice(0, 300)]).toEqual([status, expect.any(String)]);
  expect(res.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
  expect(res.body.resourceType).toBe('OperationOutcome');
  expect(res.body.issue[0].severity).toBe('error');
  expect(typeof res.body.issue[0].diagnostics).toBe('string');
  if (code) expect(res.body.issue[0].code).toBe(code);
};

const postRaw = (path: string, rawBody: string | Buffer, contentType = 'application/fhir+json') =>
  client.request('POST', path, { rawBody, headers: { 'Content-Type': contentType } });

async function countPatients(family: string): Promise<number> {
  const res = await client.get(`Patient?family=${encodeURIComponent(family)}&_summary=count`);
  return res.body.total;
}

describe('JSON bodies', () => {
  test('U+0000 or a lone surrogate in a key or a string value is 400 invalid, not 500, and nothing is stored', async () => {
    const bodies = [
      '{"resourceType":"Patient","name":[{"family":"nul1"}],"a\\u0000b":1}',
      '{"resourceType":"Patient","name":[{"family":"nul1","fa\\udc00mily":"x"}]}',
      '{"resourceType":"Patient","name":[{"family":"nul1","given":["a\\ud800b"]}]}',
      '{"resourceType":"Patient","name":[{"family":"nul1"}],"extension":[{"url":"http://x","valueString":"\\udfff"}]}',
    ];
    for (const body of bodies) {
      const res = await postRaw('Patient', body);
      expectOutcome(res, 400, 'invalid');
      expect(res.body.issue[0].diagnostics).toMatch(/NUL character .* or an unpaired surrogate/);
    }
    // The path names where: a key, or an element of an array.
    expect((await postRaw('Patient', bodies[2])).body.issue[0].diagnostics).toContain('"name[0].given[0]"');
    // A JSON Patch and the X-Provenance header are JSON too.
    const created = await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'nul1' }] });
    const patched = await client.request('PATCH', `Patient/${created.body.id}`, {
      rawBody: '[{"op":"add","path":"/name/0/given","value":["\\ud800"]}]',
      headers: { 'Content-Type': 'application/json-patch+json' },
    });
    expectOutcome(patched, 400, 'invalid');
    const withHeader = await client.post('Patient', { resourceType: 'Patient' }, { 'X-Provenance': '{"resourceType":"Provenance","a\\u0000":1}' });
    expectOutcome(withHeader, 400, 'invalid');
    expect(await countPatients('nul1')).toBe(1);
    // Escapes of other characters, and surrogate pairs, are fine.
    const ok = await postRaw('Patient', '{"resourceType":"Patient","name":[{"family":"nul1","given":["\\u738b\\ud83d\\ude00\\\\u0000"]}]}');
    expect(ok.status).toBe(201);
    expect(ok.body.name[0].given[0]).toBe('王😀\\u0000');
  });

  test('a deeply nested body with an escape is checked without overflowing the stack', async () => {
    const deep = '{"resourceType":"Patient","extension":[' + '{"url":"http://x","extension":['.repeat(5000) + ']}'.repeat(5000) + '],"_a":"\\u0041"}';
    const res = await postRaw('Patient', deep);
    expect(res.status).toBe(422);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  test('a body that is not valid UTF-8 is 400, not stored with U+FFFD in place of the bytes', async () => {
    const latin1 = Buffer.concat([Buffer.from('{"resourceType":"Patient","name":[{"family":"M'), Buffer.from([0xfc]), Buffer.from('ller-utf8"}]}')]);
    const res = await postRaw('Patient', latin1);
    expectOutcome(res, 400, 'invalid');
    expect(res.body.issue[0].diagnostics).toMatch(/not valid UTF-8/);
    expect(await countPatients('Mller-utf8')).toBe(0);
    // A U+FFFD the client really sent is kept.
    const ok = await postRaw('Patient', '{"resourceType":"Patient","name":[{"family":"M\uFFFDller-utf8"}]}');
    expect(ok.status).toBe(201);
    expect(ok.body.name[0].family).toBe('M\uFFFDller-utf8');
  });

  test('a charset other than UTF-8 is 415; utf-8 in any spelling is fine', async () => {
    for (const type of ['application/fhir+json;charset=latin1', 'application/fhir+json; charset="ISO-8859-1"', 'application/json; charset=utf-16']) {
      const res = await postRaw('Patient', '{"resourceType":"Patient","name":[{"family":"charset"}]}', type);
      expectOutcome(res, 415, 'not-supported');
      expect(res.body.issue[0].diagnostics).toMatch(/UTF-8/);
    }
    expect(await countPatients('charset')).toBe(0);
    for (const type of ['application/fhir+json; charset=UTF-8', 'application/fhir+json;charset="utf-8"', 'application/fhir+json; charset=utf8']) {
      expect((await postRaw('Patient', '{"resourceType":"Patient"}', type)).status).toBe(201);
    }
  });

  test('a byte order mark before the JSON is ignored (RFC 8259 §8.1)', async () => {
    const res = await postRaw('Patient', '\uFEFF{"resourceType":"Patient","name":[{"family":"bom"}]}');
    expect(res.status).toBe(201);
    expect(res.body.name[0].family).toBe('bom');
  });

  test('a form body must be valid percent-encoded UTF-8, like a query string', async () => {
    const res = await postRaw('Patient/_search', 'family=%C3', 'application/x-www-form-urlencoded');
    expectOutcome(res, 400, 'invalid');
  });
});

describe('resource content', () => {
  test('deeply nested JSON is refused after 100 levels, quickly, instead of holding the event loop', async () => {
    const nested = (depth: number) =>
      '{"resourceType":"Patient","extension":[' + '{"url":"http://x","extension":['.repeat(depth) + '{"url":"y","valueString":"z"}' + ']}'.repeat(depth) + ']}';
    const started = Date.now();
    const res = await postRaw('Patient', nested(20000));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(res.status).toBe(422);
    expect(res.body.issue.find((i: any) => i.code === 'too-costly')?.diagnostics).toMatch(/nested more than 100 objects deep/);
    // The server is free for others meanwhile, and $validate says the same.
    const validated = await postRaw('Patient/$validate', nested(20000));
    expect(validated.body.issue.some((i: any) => i.code === 'too-costly')).toBe(true);
    // Real nesting (a Questionnaire's items 30 deep) is fine.
    const item = (depth: number): any => ({ linkId: `q${depth}`, type: 'group', text: 'x', ...(depth ? { item: [item(depth - 1)] } : { type: 'string' }) });
    const questionnaire = await client.post('Questionnaire', { resourceType: 'Questionnaire', status: 'draft', item: [item(30)] });
    expect(questionnaire.status).toBe(201);
  });

  test('JSON null for a primitive\'s "_" element is refused like null for its value, and not stored', async () => {
    for (const body of ['{"resourceType":"Patient","_gender":null}', '{"resourceType":"Patient","gender":null,"_gender":{"id":"g"}}', '{"resourceType":"Patient","gender":"male","_gender":null}']) {
      const res = await postRaw('Patient', body);
      expectOutcome(res, 422, 'structure');
      expect(res.body.issue[0].diagnostics).toMatch(/"_?gender" must not be null/);
    }
    // In an array, null keeps the places of "given" and "_given" aligned: that stays allowed.
    const ok = await postRaw('Patient', '{"resourceType":"Patient","name":[{"given":["a","b"],"_given":[null,{"id":"x"}]}]}');
    expect(ok.status).toBe(201);
  });
});

describe('operation inputs', () => {
  test('a Parameters body whose parameter or part lists are malformed is 400 for every operation, not 500', async () => {
    const created = await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'ops' }] });
    const bodies = [
      { resourceType: 'Parameters', parameter: {} },
      { resourceType: 'Parameters', parameter: [null] },
      { resourceType: 'Parameters', parameter: [5, 'x'] },
      { resourceType: 'Parameters', parameter: [{ valueString: 'no name' }] },
      { resourceType: 'Parameters', parameter: [{ name: 'x', part: { name: 'y' } }] },
      { resourceType: 'Parameters', parameter: [{ name: 'x', part: [null] }] },
    ];
    for (const path of ['Patient/$validate', `Patient/${created.body.id}/$meta-add`, 'ValueSet/$expand', 'CodeSystem/$lookup', 'ConceptMap/$translate', 'ValueSet/$validate-code']) {
      for (const body of bodies) {
        const res = await client.post(path, body);
        expectOutcome(res, 400, 'invalid');
        expect(res.body.issue[0].diagnostics).toMatch(/^Parameters\.parameter/);
      }
    }
  });

  test('$meta-add and $meta-delete with tag, security or profile that are not lists are 400 and change nothing', async () => {
    const created = await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'metaops' }] });
    const metas = [{ tag: 5 }, { tag: [null] }, { security: [1, 'x'] }, { profile: 'http://x' }, { profile: [{}] }, { tag: { code: 'x' } }];
    for (const op of ['$meta-add', '$meta-delete']) {
      for (const valueMeta of metas) {
        const res = await client.post(`Patient/${created.body.id}/${op}`, { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta }] });
        expectOutcome(res, 400, 'invalid');
      }
    }
    expect((await client.get(`Patient/${created.body.id}`)).body.meta.versionId).toBe('1');
  });
});

describe('search size', () => {
  test('too many parameters, values or sort keys are 400 too-costly before any SQL runs (was 500 or minutes)', async () => {
    const many = Array.from({ length: 101 }, (_, i) => `name=a${i}`).join('&');
    expectOutcome(await client.get(`Patient?${many}`), 400, 'too-costly');
    const form = Array.from({ length: 20000 }, (_, i) => `name=a${i}`).join('&');
    expectOutcome(await postRaw('Patient/_search', form, 'application/x-www-form-urlencoded'), 400, 'too-costly');
    const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `x${from + i}`).join(',');
    expectOutcome(await client.get(`Patient?_id=${ids(1001)}`), 400, 'too-costly');
    // Values count in all: each patient a search names gets an AuditEvent of its own.
    expectOutcome(await client.get(`Patient?_id=${ids(600)}&_id=${ids(600, 600)}`), 400, 'too-costly');
    expectOutcome(await client.get(`Patient?_sort=${Array(2000).fill('name').join(',')}`), 400, 'too-costly');
    expectOutcome(await client.get(`Patient?_sort=name,birthdate,gender,family,given,_id&_sort=-name,address,-_lastUpdated,phone,email`), 400, 'too-costly');
    // At the limits, searches run.
    const hundred = Array.from({ length: 100 }, (_, i) => `identifier=s|v${i}`).join('&');
    expect((await client.get(`Patient?${hundred}`)).status).toBe(200);
    expect((await client.get(`Patient?_id=${ids(990)}&_summary=count`)).status).toBe(200);
    expect((await client.get('Patient?_sort=name,birthdate,gender,family,given,_id,-address,-_lastUpdated,phone,email')).status).toBe(200);
  });
});

test('the server keeps serving, and Object.prototype is untouched', async () => {
  expect((await client.get('metadata')).status).toBe(200);
  expect(Object.keys(Object.prototype)).toEqual([]);
});

test('an audit record the database refuses fails only its own request, not the others in its group commit', async () => {
  const ctx = {
    principal: { kind: 'anonymous', scopes: [] },
    requestId: 'bad-input-audit',
    remoteAddress: '127.0.0.1',
    baseUrl: server.baseUrl,
  } as any;
  const record = (outcomeText: string) => ({ interaction: 'read' as const, method: 'GET', url: `${server.baseUrl}/Patient/x`, status: 404, outcomeText });
  // Written in the same turn of the event loop: one batch. PostgreSQL's jsonb cannot hold U+0000.
  const [poisoned, clean] = await Promise.allSettled([
    server.services.audit.write(ctx, [record('poison\u0000')]),
    server.services.audit.write(ctx, [record('clean-audit-record')]),
  ]);
  expect(poisoned.status).toBe('rejected');
  expect(clean.status).toBe('fulfilled');
  const stored = await server.pool.query(`SELECT count(*)::int AS n FROM resource WHERE resource_type = 'AuditEvent' AND content::text LIKE '%clean-audit-record%'`);
  expect(stored.rows[0].n).toBe(1);
});

test('a NUL (%00) in a parameter of the OAuth endpoints is invalid_request, not a database error (500)', async () => {
  const cases: [string, string, string?][] = [
    ['GET', 'oauth2/authorize?response_type=code&client_id=%00&redirect_uri=https%3A%2F%2Fapp.example%2Fcb'],
    ['POST', 'oauth2/authorize', 'response_type=code&client_id=%00'],
    ['POST', 'oauth2/token', 'grant_type=client_credentials&client_id=a%00b'],
    ['POST', 'oauth2/introspect', 'token=%00'],
  ];
  for (const [method, path, form] of cases) {
    const res = await fetch(`${server.baseUrl}/${path}`, {
      method,
      body: form,
      headers: form ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {},
      redirect: 'manual',
    });
    expect([path, res.status]).toEqual([path, 400]);
    expect(await res.json()).toEqual({ error: 'invalid_request', error_description: expect.stringMatching(/NUL/) });
  }
});
