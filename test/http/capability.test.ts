/**
 * What conformance tools check first: the CapabilityStatement is valid R4 and true to what the
 * server does, and the canonicals it names resolve.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';

let server: TestServer;
let client: FhirTestClient;
let statement: any;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
  statement = (await client.get('metadata')).body;
});
afterAll(async () => server.close());

test('the CapabilityStatement passes the server\'s own $validate with no error', async () => {
  const res = await client.post('CapabilityStatement/$validate', statement);
  expect(res.status).toBe(200);
  const errors = res.body.issue.filter((i: any) => i.severity === 'error' || i.severity === 'fatal');
  expect(errors).toEqual([]);
  // format "json" is allowed by CapabilityStatement.format's definition: not even a warning.
  expect(statement.format).toContain('json');
  expect(res.body.issue.filter((i: any) => i.code === 'code-invalid')).toEqual([]);
  // It has a narrative (dom-6).
  expect(res.body.issue.filter((i: any) => /dom-6/.test(i.diagnostics))).toEqual([]);
  const other = await client.post('CapabilityStatement/$validate', { ...statement, format: ['application/fhir+json', 'fhir-json'] });
  expect(other.body.issue.filter((i: any) => i.code === 'code-invalid')).toHaveLength(1);
});

test('only R4 resource types are listed and served (not R4B\'s SubscriptionStatus)', async () => {
  const types = statement.rest[0].resource.map((r: any) => r.type);
  expect(types).toHaveLength(146);
  expect(types).not.toContain('SubscriptionStatus');
  const res = await client.post('SubscriptionStatus', { resourceType: 'SubscriptionStatus', status: 'active', type: 'heartbeat' });
  expect(res.status).toBe(404);
  expect(res.body.issue[0].code).toBe('not-found');
});

test('_format=application/fhir+json with the + unencoded (read as a space) is JSON, not 406', async () => {
  for (const [format, type] of [
    ['application/fhir+json', 'application/fhir+json'],
    ['application/json+fhir', 'application/fhir+json'],
    ['application/fhir+json;+fhirVersion=4.0', 'application/fhir+json'],
  ]) {
    const res = await client.get(`metadata?_elements=fhirVersion&_format=${format}`);
    expect([format, res.status, res.headers.get('content-type')]).toEqual([format, 200, `${type}; charset=utf-8`]);
  }
  expect((await client.get('metadata?_format=application/fhir+xml')).status).toBe(406);
});

test('every operation canonical is HL7\'s or an OperationDefinition served here that matches the statement', async () => {
  const listed = new Map<string, { name: string; levels: Set<string> }>();
  const note = (op: any, level: string) => {
    const entry = listed.get(op.definition) ?? { name: op.name, levels: new Set<string>() };
    entry.levels.add(level);
    listed.set(op.definition, entry);
  };
  for (const op of statement.rest[0].operation ?? []) note(op, 'system');
  for (const r of statement.rest[0].resource) for (const op of r.operation ?? []) note(op, 'resource');
  const own = [...listed.keys()].filter((url) => !url.startsWith('http://hl7.org/fhir/OperationDefinition/'));
  expect(own.length).toBeGreaterThan(0);
  for (const url of own) {
    const found = await client.get(`OperationDefinition?url=${encodeURIComponent(url)}`);
    expect([url, found.body.total]).toEqual([url, 1]);
    const definition = found.body.entry[0].resource;
    expect(definition.code).toBe(listed.get(url)!.name);
    expect(definition.status).toBe('active');
    if (listed.get(url)!.levels.has('system')) expect(definition.system).toBe(true);
    const read = await client.get(`OperationDefinition/${definition.id}`);
    expect(read.status).toBe(200);
    const valid = await client.post('OperationDefinition/$validate', definition);
    expect(valid.body.issue.filter((i: any) => i.severity === 'error')).toEqual([]);
  }
});

test('AuditEvent and Provenance: operations that would change them are refused (405) and not listed', async () => {
  const meta = { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { tag: [{ system: 'http://example.org/t', code: 'x' }] } }] };
  for (const type of ['AuditEvent', 'Provenance']) {
    const listed = statement.rest[0].resource.find((r: any) => r.type === type).operation.map((op: any) => op.name);
    expect([type, listed]).toEqual([type, expect.arrayContaining(['meta', 'validate'])]);
    for (const name of ['meta-add', 'meta-delete', 'expunge']) expect([type, listed]).toEqual([type, expect.not.arrayContaining([name])]);
    const target = (await client.get(`${type}?_count=1`)).body.entry[0].resource;
    for (const name of ['meta-add', 'meta-delete', 'expunge']) {
      const res = await client.post(`${type}/${target.id}/$${name}`, meta);
      expect([type, name, res.status]).toEqual([type, name, 405]);
      expect(res.body.issue[0].code).toBe('not-supported');
      expect(res.headers.get('allow')).toBe('');
    }
    const history = (await client.get(`${type}/${target.id}/_history`)).body;
    expect([type, history.total]).toEqual([type, 1]);
    expect((await client.get(`${type}/${target.id}/$meta`)).status).toBe(200);
  }
  // Other types keep them.
  const patient = statement.rest[0].resource.find((r: any) => r.type === 'Patient').operation.map((op: any) => op.name);
  expect(patient).toEqual(expect.arrayContaining(['meta-add', 'meta-delete', 'expunge']));
});

test('mode=terminology answers a valid TerminologyCapabilities; other modes are 400', async () => {
  const res = await client.get('metadata?mode=terminology');
  expect(res.status).toBe(200);
  const tc = res.body;
  expect(tc).toMatchObject({ resourceType: 'TerminologyCapabilities', status: 'active', kind: 'instance', implementation: { url: server.baseUrl } });
  const systems = tc.codeSystem.map((c: any) => c.uri);
  expect(systems).toEqual(expect.arrayContaining(['http://hl7.org/fhir/administrative-gender', 'http://terminology.hl7.org/CodeSystem/v3-ActCode']));
  // SNOMED CT and LOINC are not loaded (content not-present): not claimed.
  expect(systems).not.toContain('http://snomed.info/sct');
  expect(systems).not.toContain('http://loinc.org');
  // What it claims holds: a code of a listed system is decided.
  const lookup = await client.get('CodeSystem/$lookup?system=http://hl7.org/fhir/administrative-gender&code=female');
  expect(lookup.status).toBe(200);
  const valid = await client.post('TerminologyCapabilities/$validate', tc);
  expect(valid.body.issue.filter((i: any) => i.severity === 'error')).toEqual([]);
  const other = await client.get('metadata?mode=normative');
  expect(other.status).toBe(400);
  expect(other.body.issue[0].code).toBe('invalid');
});

test('CORS: a browser SMART app\'s preflight is allowed with the headers it asks for; FHIR headers are exposed', async () => {
  const preflight = await fetch(`${server.baseUrl}/Patient/123`, {
    method: 'OPTIONS',
    headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'authorization,content-type,if-match,x-requested-with' },
  });
  expect(preflight.status).toBe(204);
  expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
  expect(preflight.headers.get('access-control-allow-methods')).toEqual(expect.stringContaining('PUT'));
  const allowed = preflight.headers.get('access-control-allow-headers')!.toLowerCase().split(/\s*,\s*/);
  expect(allowed).toEqual(expect.arrayContaining(['authorization', 'content-type', 'if-match', 'if-none-exist', 'prefer', 'x-requested-with']));
  const created = await fetch(`${server.baseUrl}/Patient`, {
    method: 'POST',
    headers: { Origin: 'https://app.example', Authorization: `Bearer ${server.token}`, 'Content-Type': 'application/fhir+json' },
    body: JSON.stringify({ resourceType: 'Patient' }),
  });
  expect(created.headers.get('access-control-allow-origin')).toBe('*');
  const exposed = created.headers.get('access-control-expose-headers')!.toLowerCase().split(/\s*,\s*/);
  expect(exposed).toEqual(expect.arrayContaining(['location', 'content-location', 'etag', 'last-modified', 'www-authenticate']));
});

test('Parameters has no RESTful endpoint (parameters.html): listed with no interactions, 404 on its paths, its $validate and operation bodies work', async () => {
  const listed = statement.rest[0].resource.find((r: any) => r.type === 'Parameters');
  expect(listed.interaction).toBeUndefined();
  expect(listed.searchParam).toBeUndefined();
  // Type-level operations only ($validate, $meta); nothing on instances, which do not exist.
  expect(listed.operation.map((op: any) => op.name).sort()).toEqual(['meta', 'validate']);
  expect((await client.post('Parameters/$validate', { resourceType: 'Parameters' })).status).toBe(200);
  expect((await client.get('Patient/1/Parameters')).status).toBe(404);
  const body = { resourceType: 'Parameters', parameter: [{ name: 'x', valueString: 'y' }] };
  for (const [method, path] of [['POST', 'Parameters'], ['GET', 'Parameters'], ['GET', 'Parameters/1'], ['PUT', 'Parameters/1'], ['GET', 'Parameters/_history']]) {
    const res = await client.request(method, path, method === 'GET' ? {} : { body: { ...body, ...(path.endsWith('/1') && { id: '1' }) } });
    expect([method, path, res.status]).toEqual([method, path, 404]);
    expect(res.body.issue[0].code).toBe('not-found');
  }
  const lookup = await client.post('CodeSystem/$lookup', {
    resourceType: 'Parameters',
    parameter: [{ name: 'system', valueUri: 'http://hl7.org/fhir/administrative-gender' }, { name: 'code', valueCode: 'male' }],
  });
  expect(lookup.status).toBe(200);
});

test('profiles and search parameter definitions named by the statement are HL7\'s or served here', async () => {
  const profiles = new Set<string>();
  const params = new Set<string>();
  for (const r of statement.rest[0].resource) {
    for (const url of [r.profile, ...(r.supportedProfile ?? [])]) if (url) profiles.add(url);
    for (const sp of r.searchParam ?? []) if (sp.definition) params.add(sp.definition);
  }
  for (const sp of statement.rest[0].searchParam ?? []) if (sp.definition) params.add(sp.definition);
  const own = (urls: Set<string>, hl7: string) => [...urls].filter((u) => !u.startsWith(hl7));
  const ownProfiles = own(profiles, 'http://hl7.org/fhir/StructureDefinition/');
  const ownParams = own(params, 'http://hl7.org/fhir/SearchParameter/');
  expect(ownProfiles.length + ownParams.length).toBeGreaterThan(0);
  for (const [type, urls] of [['StructureDefinition', ownProfiles], ['SearchParameter', ownParams]] as const) {
    for (const url of urls) {
      const found = await client.get(`${type}?url=${encodeURIComponent(url)}&_summary=count`);
      expect([url, found.body.total]).toEqual([url, 1]);
    }
  }
});
