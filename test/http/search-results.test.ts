/**
 * Result parameters and forms of search: _sort, _count and paging links under concurrent
 * writes, _total, _summary, _elements, _include/_revinclude (:iterate, *), POST _search,
 * system search, compartment search, Patient/$everything.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';

let server: TestServer;
let client: FhirTestClient;
let org: string;
let patients: string[] = [];

const names = (bundle: any) => bundle.entry.filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.name?.[0]?.family);
const link = (bundle: any, relation: string) => bundle.link.find((l: any) => l.relation === relation)?.url;

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
  org = (await client.post('Organization', { resourceType: 'Organization', name: 'Hospital' })).body.id;
  const families = ['Delta', 'Alpha', 'Echo', 'Charlie', 'Bravo', 'Foxtrot', 'Golf'];
  for (const [i, family] of families.entries()) {
    const p = await client.post('Patient', {
      resourceType: 'Patient',
      name: [{ family }],
      gender: i % 2 ? 'male' : 'female',
      birthDate: `19${50 + i}-01-01`,
      managingOrganization: { reference: `Organization/${org}` },
    });
    patients.push(p.body.id);
  }
  for (const [i, id] of patients.slice(0, 3).entries()) {
    await client.post('Encounter', { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${id}` }, serviceProvider: { reference: `Organization/${org}` } });
    await client.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: `obs-${i}` }, subject: { reference: `Patient/${id}` } });
  }
});
afterAll(async () => server.close());

describe('sort and paging', () => {
  test('_sort by one and several keys, ascending and descending', async () => {
    expect(names((await client.get('Patient?_sort=family')).body)).toEqual(['Alpha', 'Bravo', 'Charlie', 'Delta', 'Echo', 'Foxtrot', 'Golf']);
    expect(names((await client.get('Patient?_sort=-family')).body)).toEqual(['Golf', 'Foxtrot', 'Echo', 'Delta', 'Charlie', 'Bravo', 'Alpha']);
    expect(names((await client.get('Patient?_sort=gender,-birthdate')).body)).toEqual(['Golf', 'Bravo', 'Echo', 'Delta', 'Foxtrot', 'Charlie', 'Alpha']);
    expect(names((await client.get('Patient?_sort=_id')).body)).toHaveLength(7);
    // A repeated _sort adds keys after the earlier ones.
    expect(names((await client.get('Patient?_sort=gender&_sort=-birthdate')).body)).toEqual(['Golf', 'Bravo', 'Echo', 'Delta', 'Foxtrot', 'Charlie', 'Alpha']);
  });

  test('next, previous and first links walk every match once, even while new data arrives', async () => {
    const seen: string[] = [];
    let bundle = (await client.get('Patient?_sort=family&_count=3')).body;
    expect(link(bundle, 'previous')).toBeUndefined();
    seen.push(...names(bundle));
    const second = link(bundle, 'next');
    await client.post('Patient', { resourceType: 'Patient', name: [{ family: 'Aardvark' }] }); // sorts before the page
    bundle = (await client.get(second)).body;
    seen.push(...names(bundle));
    expect(names(bundle)).toEqual(['Delta', 'Echo', 'Foxtrot']);
    expect(link(bundle, 'first')).toBe(`${server.baseUrl}/Patient?_sort=family&_count=3`);
    const back = (await client.get(link(bundle, 'previous'))).body;
    expect(names(back)).toEqual(['Alpha', 'Bravo', 'Charlie']);
    bundle = (await client.get(link(bundle, 'next'))).body;
    seen.push(...names(bundle));
    expect(link(bundle, 'next')).toBeUndefined();
    expect(seen).toEqual(['Alpha', 'Bravo', 'Charlie', 'Delta', 'Echo', 'Foxtrot', 'Golf']);
    expect((await client.get('Patient?_page=garbage')).status).toBe(400);
  });

  test('_count caps at MAX_PAGE_SIZE; _count=0 gives only the total', async () => {
    const zero = (await client.get('Patient?_count=0')).body;
    expect(zero.entry).toBeUndefined();
    expect(zero.total).toBe(8);
  });
});

describe('_total, _summary, _elements', () => {
  test('_total accurate, estimate and none; total known for free when everything fits', async () => {
    expect((await client.get('Patient?_count=2&_total=accurate')).body.total).toBe(8);
    expect(typeof (await client.get('Patient?_count=2&_total=estimate')).body.total).toBe('number');
    expect((await client.get('Patient?_count=2&_total=none')).body.total).toBeUndefined();
    expect((await client.get('Patient?_count=2')).body.total).toBeUndefined();
    expect((await client.get('Patient?gender=female&_count=50')).body.total).toBe(4);
  });
  test('_total=estimate is never below the matches already known; exact while the matches are few', async () => {
    // Practitioners, so that the Patients the other tests count stay as they are.
    const family = `Estimate${Date.now()}`;
    for (let i = 0; i < 7; i++) {
      expect((await client.post('Practitioner', { resourceType: 'Practitioner', name: [{ family }] })).status).toBe(201);
    }
    // Fresh rows: the planner's statistics do not know them (it estimated 1 for 25 matches).
    const first = (await client.get(`Practitioner?family=${family}&_total=estimate&_count=5`)).body;
    expect(first.entry).toHaveLength(5);
    expect(first.link.some((l: any) => l.relation === 'next')).toBe(true);
    expect(first.total).toBe(7);
    const next = first.link.find((l: any) => l.relation === 'next').url;
    const second = (await client.get(next)).body;
    expect(second.entry).toHaveLength(2);
    expect(second.total).toBe(7);
    expect((await client.get(`Practitioner?family=${family}&_total=estimate&_summary=count`)).body.total).toBe(7);
  });
  test('_summary=count, _summary=true and _elements', async () => {
    const count = (await client.get('Patient?gender=male&_summary=count')).body;
    expect(count).toMatchObject({ type: 'searchset', total: 3 });
    expect(count.entry).toBeUndefined();
    const summary = (await client.get('Patient?_summary=true&_count=1')).body.entry[0].resource;
    expect(summary.meta.tag[0].code).toBe('SUBSETTED');
    const data = (await client.get('Patient?_summary=data&_count=1')).body.entry[0].resource;
    expect(data.text).toBeUndefined();
    expect(data.name).toBeDefined();
    const text = (await client.get('Patient?_summary=text&_count=1')).body.entry[0].resource;
    expect(text.name).toBeUndefined();
    const estimate = (await client.get('Patient?gender=male&_total=estimate&_count=1')).body.total;
    expect(estimate).toBeGreaterThanOrEqual(1);
    expect(estimate).toBeLessThan(100);
    const elements = (await client.get('Patient?gender=male&_elements=gender&_count=1')).body.entry[0].resource;
    expect(Object.keys(elements).sort()).toEqual(['gender', 'id', 'meta', 'resourceType']);
  });
});

describe('_include and _revinclude', () => {
  test('include the referenced organization once, marked include', async () => {
    const bundle = (await client.get('Patient?_include=Patient:organization&_sort=family')).body;
    const modes = bundle.entry.map((e: any) => `${e.resource.resourceType}:${e.search.mode}`);
    expect(modes.filter((m: string) => m === 'Organization:include')).toHaveLength(1);
    expect(modes.filter((m: string) => m === 'Patient:match')).toHaveLength(8);
  });
  test('revinclude, typed include, * and :iterate', async () => {
    const rev = (await client.get(`Patient?_id=${patients[0]}&_revinclude=Observation:subject&_revinclude=Encounter:subject`)).body;
    expect(rev.entry.map((e: any) => e.resource.resourceType).sort()).toEqual(['Encounter', 'Observation', 'Patient']);
    const anyRev = (await client.get(`Patient?_id=${patients[0]}&_revinclude=*`)).body;
    expect(anyRev.entry.map((e: any) => `${e.resource.resourceType}:${e.search.mode}`).filter((t: string) => !t.startsWith('AuditEvent')).sort()).toEqual([
      'Encounter:include',
      'Observation:include',
      'Patient:match',
      // The Provenance of the patient's one version (its target is Patient/[id]/_history/1).
      'Provenance:include',
    ]);
    const star = (await client.get(`Encounter?subject=${patients[1]}&_include=*`)).body;
    expect(star.entry.map((e: any) => e.resource.resourceType).sort()).toEqual(['Encounter', 'Organization', 'Patient']);
    const typed = (await client.get(`Encounter?subject=${patients[1]}&_include=Encounter:subject:Patient`)).body;
    expect(typed.entry.map((e: any) => e.resource.resourceType).sort()).toEqual(['Encounter', 'Patient']);
    const iterate = (await client.get(`Observation?subject=${patients[2]}&_include=Observation:subject&_include:iterate=Patient:organization`)).body;
    expect(iterate.entry.map((e: any) => `${e.resource.resourceType}:${e.search.mode}`).sort()).toEqual(['Observation:match', 'Organization:include', 'Patient:include']);
  });
});

describe('the JSON of search results', () => {
  // Matches and included resources are written from PostgreSQL's text (store/stored-resource.ts).
  test('each entry is the stored resource, resourceType first, also pretty-printed and with _include', async () => {
    const response = await client.get(`Patient?_id=${patients[0]}&_include=Patient:organization`);
    expect(response.status).toBe(200);
    expect(Number(response.headers.get('content-length'))).toBe(Buffer.byteLength(response.text));
    const [match, included] = response.body.entry;
    expect(response.text).toMatch(/"resource":\{"resourceType": ?"Patient",/);
    expect(Object.keys(match.resource)[0]).toBe('resourceType');
    expect(match.resource).toEqual((await client.get(`Patient/${patients[0]}`)).body);
    expect(included.resource).toEqual((await client.get(`Organization/${org}`)).body);
    expect(included.search).toEqual({ mode: 'include' });
    const pretty = await client.get(`Patient?_id=${patients[0]}&_include=Patient:organization&_pretty=true`);
    expect(pretty.text).toContain('\n  "resourceType": "Bundle"');
    expect(pretty.body.entry).toEqual(response.body.entry);
  });
});

describe('_include with paging', () => {
  test('each page includes the targets of its own matches, and only of those', async () => {
    for (const name of ['Inc-A', 'Inc-B', 'Inc-C']) {
      const o = (await client.post('Organization', { resourceType: 'Organization', name })).body.id;
      await client.post('Patient', { resourceType: 'Patient', name: [{ family: `Inc${name}` }], managingOrganization: { reference: `Organization/${o}` } });
    }
    const first = (await client.get('Patient?family:contains=Inc-&_sort=family&_count=2&_include=Patient:organization')).body;
    // Matches in the page's order, then the included resources (in no defined order).
    const entries = (bundle: any) => {
      const all: string[] = bundle.entry.map((e: any) => `${e.search.mode}:${e.resource.name?.[0]?.family ?? e.resource.name}`);
      return [...all.filter((e) => e.startsWith('match:')), ...all.filter((e) => !e.startsWith('match:')).sort()];
    };
    // The page's two matches and their organizations; not the organization of the row that
    // only tells that another page follows.
    expect(entries(first)).toEqual(['match:IncInc-A', 'match:IncInc-B', 'include:Inc-A', 'include:Inc-B']);

    const second = (await client.get(link(first, 'next'))).body;
    expect(entries(second)).toEqual(['match:IncInc-C', 'include:Inc-C']);
    const back = (await client.get(link(second, 'previous'))).body;
    expect(entries(back)).toEqual(entries(first));
    // A second _include that finds nothing changes nothing.
    const two = (await client.get(`Patient?family:contains=Inc-&_sort=family&_count=2&_include=Patient:organization&_include=Patient:general-practitioner`)).body;
    expect(entries(two)).toEqual(entries(first));
  });
});

describe('forms of search', () => {
  test('POST _search with a form body gives the same results as GET', async () => {
    const get = (await client.get('Patient?gender=male&_sort=family')).body;
    const post = await client.request('POST', 'Patient/_search', {
      rawBody: 'gender=male&_sort=family',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    expect(post.status).toBe(200);
    expect(names(post.body)).toEqual(names(get));
    expect(link(post.body, 'self')).toBe(`${server.baseUrl}/Patient?gender=male&_sort=family`);
  });
  test('POST _search takes only a form body (or none): any other body is 415 naming the form type', async () => {
    const bodies: [string, string][] = [
      ['application/json', '{"gender":"male"}'],
      ['application/fhir+json', JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'gender', valueString: 'male' }] })],
      ['text/plain', 'gender=male'],
    ];
    for (const path of ['Patient/_search', '_search']) {
      for (const [type, rawBody] of bodies) {
        const res = await client.request('POST', path, { rawBody, headers: { 'Content-Type': type } });
        expect([path, type, res.status]).toEqual([path, type, 415]);
        expect(res.body.resourceType).toBe('OperationOutcome');
        expect(res.body.issue[0].code).toBe('not-supported');
        expect(res.body.issue[0].diagnostics).toContain('application/x-www-form-urlencoded');
        expect(res.body.issue[0].diagnostics).toContain(type);
      }
    }
    // An empty body, whatever its Content-Type, is a search with the URL's parameters.
    const empty = await client.request('POST', 'Patient/_search?gender=male&_sort=family', { rawBody: '', headers: { 'Content-Type': 'application/fhir+json' } });
    expect(empty.status).toBe(200);
    expect(names(empty.body)).toEqual(names((await client.get('Patient?gender=male&_sort=family')).body));
    const system = await client.request('POST', '_search', {
      rawBody: `_type=Patient&_id=${patients[0]}`,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' },
    });
    expect(system.status).toBe(200);
    expect(system.body.entry.map((e: any) => e.resource.id)).toEqual([patients[0]]);
  });
  test('a search with no matches has no entry element (FHIR JSON has no empty arrays)', async () => {
    for (const path of ['Patient?_id=nonexistent', 'Patient?_id=nonexistent&_total=accurate', 'Patient?_id=nonexistent&_summary=count', `Patient/${patients[0]}/$everything?_since=2999-01-01`, '?_type=Patient&_id=nonexistent']) {
      const res = await client.get(path);
      expect([path, res.status]).toEqual([path, 200]);
      expect(res.body.type).toBe('searchset');
      expect(res.body.total ?? 0).toBe(0);
      expect('entry' in res.body).toBe(false);
      expect(res.text).not.toContain('"entry"');
    }
    // A warning still comes as an outcome entry.
    const warned = (await client.get('Patient?_id=nonexistent&unknown-param=1')).body;
    expect(warned.entry.map((e: any) => e.search.mode)).toEqual(['outcome']);
  });
  test('system search with _type, and over all types', async () => {
    const bundle = (await client.get(`?_type=Patient,Organization&_id=${org},${patients[0]}`)).body;
    expect(bundle.entry.map((e: any) => e.resource.resourceType).sort()).toEqual(['Organization', 'Patient']);
    const all = (await client.get(`?_id=${org}`)).body;
    expect(all.entry.map((e: any) => e.resource.id)).toEqual([org]);
    expect((await client.get('?_type=Nope')).status).toBe(400);
  });
  test('_type on a type-level search: 400 under handling=strict, else ignored with a warning and left out of the self link', async () => {
    const strict = await client.get('Patient?_type=Observation&_count=1', { Prefer: 'handling=strict' });
    expect(strict.status).toBe(400);
    expect(strict.body.resourceType).toBe('OperationOutcome');
    expect(strict.body.issue[0].code).toBe('invalid');
    expect(strict.body.issue[0].diagnostics).toContain('_type');
    const lenient = (await client.get('Patient?_type=Observation&_count=1')).body;
    expect(link(lenient, 'self')).toBe(`${server.baseUrl}/Patient?_count=1`);
    const modes = lenient.entry.map((e: any) => `${e.resource.resourceType}:${e.search.mode}`);
    expect(modes).toEqual(['Patient:match', 'OperationOutcome:outcome']);
    const warning = lenient.entry[1].resource.issue[0];
    expect([warning.severity, warning.code, warning.expression]).toEqual(['warning', 'not-supported', ['_type']]);
    expect(warning.diagnostics).toContain('_type');
    // At system level _type is what chooses the types, and the self link says so.
    const system = (await client.get(`?_type=Patient&_id=${patients[0]}`)).body;
    expect(new URL(link(system, 'self')).searchParams.get('_type')).toBe('Patient');
  });
  test('compartment search: one type, and every type', async () => {
    const obs = (await client.get(`Patient/${patients[0]}/Observation`)).body;
    expect(obs.entry.map((e: any) => e.resource.code.text)).toEqual(['obs-0']);
    const all = (await client.get(`Patient/${patients[0]}/*?_type=Encounter,Observation`)).body;
    expect(all.entry.map((e: any) => e.resource.resourceType).sort()).toEqual(['Encounter', 'Observation']);
    expect((await client.get(`Encounter/x/Observation`)).status).toBe(400);
  });
});

describe('Patient/$everything', () => {
  test('the patient, their compartment and what it references, paged; _type and _since', async () => {
    const id = patients[0];
    const all = (await client.get(`Patient/${id}/$everything`)).body;
    const types = all.entry.map((e: any) => e.resource.resourceType).sort();
    expect(types).toEqual(['Encounter', 'Observation', 'Organization', 'Patient']);
    expect(all.entry.find((e: any) => e.resource.resourceType === 'Organization').search.mode).toBe('include');
    const paged = (await client.get(`Patient/${id}/$everything?_count=1`)).body;
    expect(paged.entry.filter((e: any) => e.search.mode === 'match')).toHaveLength(1);
    const page2 = (await client.get(link(paged, 'next'))).body;
    expect(page2.entry.filter((e: any) => e.search.mode === 'match')).toHaveLength(1);
    expect(page2.entry[0].resource.id).not.toBe(paged.entry[0].resource.id);
    const onlyObs = (await client.get(`Patient/${id}/$everything?_type=Observation`)).body;
    expect(onlyObs.entry.map((e: any) => e.resource.resourceType)).toEqual(['Observation']);
    // Care dates: the encounter of 2020 is out of a 2021 range; undated resources stay.
    await client.put(`Encounter/${(all.entry.find((e: any) => e.resource.resourceType === 'Encounter')).resource.id}`, {
      ...all.entry.find((e: any) => e.resource.resourceType === 'Encounter').resource,
      period: { start: '2020-03-01', end: '2020-03-02' },
    });
    const in2021 = (await client.get(`Patient/${id}/$everything?start=2021-01-01&end=2021-12-31`)).body;
    expect(in2021.entry.map((e: any) => e.resource.resourceType).sort()).toEqual(['Observation', 'Organization', 'Patient']);
    const in2020 = (await client.get(`Patient/${id}/$everything?start=2020-03&end=2020-03`)).body;
    expect(in2020.entry.map((e: any) => e.resource.resourceType).sort()).toEqual(['Encounter', 'Observation', 'Organization', 'Patient']);
    expect((await client.get(`Patient/${id}/$everything?start=March`)).status).toBe(400);
    const future = (await client.get(`Patient/${id}/$everything?_since=2999-01-01`)).body;
    expect(future.entry ?? []).toEqual([]);
    expect((await client.get('Patient/unknown/$everything')).status).toBe(404);
  });
});
