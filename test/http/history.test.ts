/**
 * history at instance, type and system level: Bundle shape, _since, _at, _count and
 * paging links that stay valid while new versions are written.
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('instance history lists every version newest first with request and response', async () => {
  const v1 = (await client.post('Observation', { resourceType: 'Observation', status: 'preliminary', code: { text: 'BP' } })).body;
  const v2 = (await client.put(`Observation/${v1.id}`, { ...v1, status: 'final' })).body;
  await client.delete(`Observation/${v1.id}`);
  const res = await client.get(`Observation/${v1.id}/_history`);
  expect(res.status).toBe(200);
  const bundle = res.body;
  expect(bundle.resourceType).toBe('Bundle');
  expect(bundle.type).toBe('history');
  expect(bundle.total).toBe(3);
  expect(bundle.entry.map((e: any) => [e.request.method, e.request.url, e.response.status, e.response.etag])).toEqual([
    ['DELETE', `Observation/${v1.id}`, '204 No Content', 'W/"3"'],
    ['PUT', `Observation/${v1.id}`, '200 OK', 'W/"2"'],
    ['POST', 'Observation', '201 Created', 'W/"1"'],
  ]);
  expect(bundle.entry[1].resource).toEqual(v2);
  expect(bundle.entry[2].fullUrl).toBe(`${server.baseUrl}/Observation/${v1.id}`);
  expect(bundle.entry[2].response.lastModified).toBe(v1.meta.lastUpdated);
  expect(bundle.link[0]).toEqual({ relation: 'self', url: `${server.baseUrl}/Observation/${v1.id}/_history` });
});

test('instance history of an unknown resource is 404', async () => {
  expect((await client.get('Observation/nope/_history')).status).toBe(404);
});

test('type and system history, _count paging with next/previous links that survive new writes', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    ids.push((await client.post('Device', { resourceType: 'Device', serialNumber: `SN-${i}` })).body.id);
  }
  const page1 = (await client.get('Device/_history?_count=2')).body;
  expect(page1.entry.map((e: any) => e.resource.serialNumber)).toEqual(['SN-4', 'SN-3']);
  const next1 = page1.link.find((l: any) => l.relation === 'next').url;
  expect(page1.link.find((l: any) => l.relation === 'previous')).toBeUndefined();
  // A write between pages must not shift what the next page holds.
  await client.post('Device', { resourceType: 'Device', serialNumber: 'SN-new' });
  const page2 = (await client.get(next1)).body;
  expect(page2.entry.map((e: any) => e.resource.serialNumber)).toEqual(['SN-2', 'SN-1']);
  const page3 = (await client.get(page2.link.find((l: any) => l.relation === 'next').url)).body;
  expect(page3.entry.map((e: any) => e.resource.serialNumber)).toEqual(['SN-0']);
  expect(page3.link.find((l: any) => l.relation === 'next')).toBeUndefined();
  const back = (await client.get(page3.link.find((l: any) => l.relation === 'previous').url)).body;
  expect(back.entry.map((e: any) => e.resource.serialNumber)).toEqual(['SN-2', 'SN-1']);
  expect(page2.link.find((l: any) => l.relation === 'first').url).toBe(`${server.baseUrl}/Device/_history?_count=2`);

  const system = (await client.get('_history?_count=100')).body;
  expect(system.type).toBe('history');
  const types = new Set(system.entry.map((e: any) => e.resource?.resourceType ?? e.request.url.split('/')[0]));
  expect(types.has('Device')).toBe(true);
  expect(types.has('Observation')).toBe(true);
  expect((await client.get('_history?_cursor=garbage')).status).toBe(400);
  expect((await client.get('Device/_history?_count=abc')).status).toBe(400);
});

test('_since keeps versions written at or after the instant; _at the versions current then', async () => {
  const a = (await client.post('Location', { resourceType: 'Location', name: 'Ward A' })).body;
  await sleep(20);
  const between = new Date().toISOString();
  await sleep(20);
  await client.put(`Location/${a.id}`, { ...a, name: 'Ward A (renamed)' });
  const b = (await client.post('Location', { resourceType: 'Location', name: 'Ward B' })).body;

  const since = (await client.get(`Location/_history?_since=${encodeURIComponent(between)}`)).body;
  expect(since.entry.map((e: any) => e.resource.name).sort()).toEqual(['Ward A (renamed)', 'Ward B']);

  const at = (await client.get(`Location/_history?_at=${encodeURIComponent(between)}`)).body;
  expect(at.entry.map((e: any) => e.resource.name)).toEqual(['Ward A']);
  expect(at.entry.every((e: any) => e.resource.id !== b.id)).toBe(true);

  // The same instant with a +08:00 offset whose "+" the client left unencoded (it arrives as a space).
  const inChina = new Date(Date.parse(between) + 8 * 3600_000).toISOString().replace('Z', '+08:00');
  const unencoded = await client.get(`Location/_history?_since=${inChina}`);
  expect(unencoded.status).toBe(200);
  expect(unencoded.body.entry.map((e: any) => e.resource.name).sort()).toEqual(['Ward A (renamed)', 'Ward B']);

  expect((await client.get('Location/_history?_since=yesterday')).status).toBe(400);
  expect((await client.get('Location/_history?_since=2020-02-30')).status).toBe(400);
});

test('_at at instance, type and system level: the version current then, a deletion included', async () => {
  const instants: string[] = [];
  const pause = async () => {
    await sleep(20);
    instants.push(new Date().toISOString());
    await sleep(20);
  };
  const start = new Date().toISOString();
  const v1 = (await client.post('Location', { resourceType: 'Location', name: 'At v1' })).body;
  await pause();
  await client.put(`Location/${v1.id}`, { ...v1, name: 'At v2' });
  await pause();
  await client.put(`Location/${v1.id}`, { ...v1, name: 'At v3' });
  await pause();
  expect((await client.delete(`Location/${v1.id}`)).status).toBe(204);
  await pause();
  const mine = (bundle: any) =>
    (bundle.entry ?? [])
      .filter((e: any) => (e.resource?.id ?? e.request.url.split('/')[1]) === v1.id)
      .map((e: any) => e.resource?.name ?? e.request.method);
  const at = async (path: string, when: string) => mine((await client.get(`${path}?_at=${encodeURIComponent(when)}&_count=1000`)).body);
  for (const path of [`Location/${v1.id}/_history`, 'Location/_history', '_history']) {
    expect([path, await at(path, instants[0])]).toEqual([path, ['At v1']]);
    expect([path, await at(path, instants[1])]).toEqual([path, ['At v2']]);
    expect([path, await at(path, instants[2])]).toEqual([path, ['At v3']]);
    expect([path, await at(path, instants[3])]).toEqual([path, ['DELETE']]);
    // A date is a range: every version current at some moment of it, newest first (the day, or
    // the month or year when the test ran across midnight).
    const range = [10, 7, 4].map((n) => start.slice(0, n)).find((prefix) => instants[3].startsWith(prefix));
    if (range) expect([path, await at(path, range)]).toEqual([path, ['DELETE', 'At v3', 'At v2', 'At v1']]);
  }
});

test('a history with no versions has no entry element (FHIR JSON has no empty arrays)', async () => {
  const created = (await client.post('Patient', { resourceType: 'Patient' })).body;
  for (const path of [`Patient/${created.id}/_history?_since=2999-01-01T00:00:00Z`, 'Patient/_history?_since=2999-01-01T00:00:00Z', '_history?_since=2999-01-01T00:00:00Z']) {
    const res = await client.get(path);
    expect([path, res.status]).toEqual([path, 200]);
    expect(res.body.type).toBe('history');
    expect(res.body.link[0].relation).toBe('self');
    expect('entry' in res.body).toBe(false);
    expect(res.text).not.toContain('"entry"');
  }
  // Not just absent: with versions to show, they are there.
  expect((await client.get(`Patient/${created.id}/_history`)).body.entry).toHaveLength(1);
});

test('a version that re-created a deleted resource reports 201 Created, as the write answered', async () => {
  const id = `recreated-${Date.now()}`;
  const first = await client.put(`Patient/${id}`, { resourceType: 'Patient', id, gender: 'male' });
  expect(first.status).toBe(201);
  expect((await client.put(`Patient/${id}`, { resourceType: 'Patient', id, gender: 'female' })).status).toBe(200);
  expect((await client.delete(`Patient/${id}`)).status).toBe(204);
  const recreated = await client.put(`Patient/${id}`, { resourceType: 'Patient', id, gender: 'other' });
  expect([recreated.status, recreated.headers.get('etag')]).toEqual([201, 'W/"4"']);
  // Re-created inside a transaction too.
  expect((await client.delete(`Patient/${id}`)).status).toBe(204);
  const tx = await client.post('', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [{ resource: { resourceType: 'Patient', id, gender: 'unknown' }, request: { method: 'PUT', url: `Patient/${id}` } }],
  });
  expect(tx.body.entry[0].response.status).toBe('201 Created');
  const expected = [
    ['PUT', '201 Created', 'W/"6"'],
    ['DELETE', '204 No Content', 'W/"5"'],
    ['PUT', '201 Created', 'W/"4"'],
    ['DELETE', '204 No Content', 'W/"3"'],
    ['PUT', '200 OK', 'W/"2"'],
    ['PUT', '201 Created', 'W/"1"'],
  ];
  const instance = (await client.get(`Patient/${id}/_history`)).body;
  expect(instance.entry.map((e: any) => [e.request.method, e.response.status, e.response.etag])).toEqual(expected);
  // The same at type level, paged one version at a time (each page its own query).
  const statuses: string[][] = [];
  let url: string | undefined = `Patient/_history?_count=1&_since=${first.body.meta.lastUpdated}`;
  while (url) {
    const page: any = (await client.get(url)).body;
    for (const e of page.entry ?? []) if (e.fullUrl.endsWith(`/Patient/${id}`)) statuses.push([e.request.method, e.response.status, e.response.etag]);
    url = page.link.find((l: any) => l.relation === 'next')?.url;
  }
  expect(statuses).toEqual(expected);
});

test('parameters history does not support are ignored, and refused under Prefer: handling=strict', async () => {
  const a = (await client.post('Endpoint', { resourceType: 'Endpoint', status: 'active', connectionType: { code: 'hl7-fhir-rest' }, payloadType: [{ text: 'x' }], address: 'https://a.example' })).body;
  await client.post('Endpoint', { ...a, id: undefined, address: 'https://b.example' });
  const lenient = await client.get(`Endpoint/_history?_id=${a.id}`);
  expect([lenient.status, lenient.body.entry.length]).toEqual([200, 2]);
  const strict = await client.get(`Endpoint/_history?_id=${a.id}&_list=x&_count=5`, { Prefer: 'handling=strict' });
  expect(strict.status).toBe(400);
  expect(strict.body.issue[0].expression).toEqual(['_id', '_list']);
  const fine = await client.get(`Endpoint/_history?_count=1&_since=2000-01-01&_format=json&_pretty=true`, { Prefer: 'handling=strict' });
  expect(fine.status).toBe(200);
  const next = fine.body.link.find((l: any) => l.relation === 'next').url;
  expect((await client.get(next, { Prefer: 'handling=strict' })).status).toBe(200);
});
