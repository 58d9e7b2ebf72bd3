/**
 * Search correctness at scale of combinations: a deterministic generator builds a varied data
 * set (names with accents and CJK, identifiers, codes, dates of every precision and time
 * zones, periods open and closed, quantities with and without units, references, nested
 * references for chains), then for 200 generated parameter combinations the server's result
 * (every page, followed through `next` links) must be exactly what the in-memory oracle
 * (test/helpers/search-oracle.ts: @medplum/core's matchesSearchRequest where it follows the
 * spec, the spec itself where it does not) returns: same set, no duplicates, no gaps, in the
 * order _sort asks for. Some walks go back through `previous` links and must see the same pages;
 * some are repeated as POST [type]/_search with a form body and must give the same first page.
 */
import type { Resource } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';
import { SearchOracle } from '../helpers/search-oracle';

let server: TestServer;
let client: FhirTestClient;
let oracle: SearchOracle;

// ---- deterministic data --------------------------------------------------------------------

function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(20261123);
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
const chance = (p: number) => random() < p;
const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
const pad = (n: number) => String(n).padStart(2, '0');

const FAMILIES = ['Smith', 'Smithson', 'Émile', 'Müller', 'Muller', 'García', 'O’Brien', '王', '王小', '李', '김', 'Nguyễn', 'Ångström', 'de la Cruz'];
const GIVENS = ['Zoë', 'Zoe', 'Anne', 'Ann', 'José', 'Jose', '芳', '伟', 'Li', 'Łukasz', 'Chloé', 'Mary-Jane'];
const CITIES = ['Beijing', 'Shanghai', 'São Paulo', 'Zürich', 'Bern', 'Hangzhou', '北京'];
const CODES = [
  { system: 'http://loinc.org', code: '8480-6', display: 'Systolic blood pressure' },
  { system: 'http://loinc.org', code: '8462-4', display: 'Diastolic blood pressure' },
  { system: 'http://loinc.org', code: '2345-7', display: 'Glucose' },
  { system: 'http://loinc.org', code: '718-7', display: 'Hemoglobin' },
  { system: 'urn:local:lab', code: 'GLU', display: 'Glucose, local' },
  { code: 'nosys-1', display: 'No system' },
];
const UNITS = [
  { unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
  { unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
  { unit: 'g/dL', system: 'http://unitsofmeasure.org', code: 'g/dL' },
  { unit: 'mg' },
];
const ZONES = ['Z', '+08:00', '-05:00', '+01:00'];

/** A date or dateTime of random precision (year, month, day, minute, second, millisecond). */
function randomDate(fromYear: number, toYear: number): string {
  const y = int(fromYear, toYear);
  const precision = int(0, 5);
  let text = String(y);
  if (precision >= 1) text += `-${pad(int(1, 12))}`;
  if (precision >= 2) text += `-${pad(int(1, 28))}`;
  if (precision >= 3) {
    text += `T${pad(int(0, 23))}:${pad(int(0, 59))}:${pad(int(0, 59))}`;
    if (precision >= 4) text += `.${String(int(0, 999)).padStart(3, '0')}`;
    text += pick(ZONES);
  }
  return text;
}

type Generated = Record<string, any> & { resourceType: string; id: string };

/** Ids are chosen here (the resources are PUT), so that the queries can be generated up front. */
function generate(): Generated[] {
  const out: Generated[] = [];
  const orgs = Array.from({ length: 6 }, (_, i) => {
    const id = `org-${i}`;
    out.push({
        id,
        resourceType: 'Organization',
        name: pick(['Peking Union Hospital', 'Hôpital Saint-Louis', '协和医院', 'General Hospital', 'Clinic Zürich']) + ` ${i}`,
        identifier: [{ system: 'urn:org', value: `ORG-${i}` }],
    });
    return `Organization/${id}`;
  });
  const patients = Array.from({ length: 80 }, (_, i) => {
    const id = `pat-${i}`;
    const resource: Generated = {
      resourceType: 'Patient',
      id,
      identifier: [{ system: pick(['urn:mrn:a', 'urn:mrn:b']), value: `MRN-${i % 60}` }],
      name: [{ family: pick(FAMILIES), given: chance(0.8) ? [pick(GIVENS), ...(chance(0.3) ? [pick(GIVENS)] : [])] : undefined }],
      gender: pick(['male', 'female', 'other', undefined]),
    };
    if (chance(0.9)) resource.birthDate = randomDate(1940, 2020).slice(0, pick([4, 7, 10]));
    if (chance(0.7)) resource.active = chance(0.5);
    if (chance(0.6)) resource.address = [{ city: pick(CITIES) }];
    if (chance(0.7)) resource.managingOrganization = { reference: pick(orgs) };
    if (chance(0.2)) resource.identifier = [...(resource.identifier as unknown[]), { value: `NOSYS-${i}` }];
    out.push(resource);
    return `Patient/${id}`;
  });
  for (let i = 0; i < 240; i++) {
    const coding = pick(CODES);
    const resource: Generated = {
      resourceType: 'Observation',
      id: `obs-${i}`,
      status: pick(['final', 'preliminary', 'amended']),
      category: chance(0.8) ? [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: pick(['vital-signs', 'laboratory']) }] }] : undefined,
      code: { coding: [coding], text: chance(0.5) ? coding.display : undefined },
      subject: chance(0.95) ? { reference: pick(patients) } : undefined,
    };
    const effective = int(0, 3);
    if (effective === 0) resource.effectiveDateTime = randomDate(2015, 2024);
    if (effective === 1) {
      const start = randomDate(2015, 2024);
      resource.effectivePeriod = chance(0.3) ? { start } : { start, end: `${Number(start.slice(0, 4)) + int(0, 2)}-12-31` };
    }
    if (effective === 2) resource.effectiveInstant = `${int(2015, 2024)}-0${int(1, 9)}-1${int(0, 9)}T10:00:00.000Z`;
    const value = int(0, 3);
    if (value <= 1) resource.valueQuantity = { value: Math.round(random() * 2000) / 10, ...pick(UNITS) };
    if (value === 2) resource.valueString = pick(['stable', 'Stable condition', 'improving', '稳定']);
    out.push(resource);
  }
  for (let i = 0; i < 60; i++) {
    const start = randomDate(2018, 2024);
    out.push({
        resourceType: 'Encounter',
        id: `enc-${i}`,
        status: pick(['finished', 'in-progress', 'planned']),
        class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: pick(['AMB', 'IMP', 'EMER']) },
        subject: { reference: pick(patients) },
        serviceProvider: chance(0.8) ? { reference: pick(orgs) } : undefined,
        period: chance(0.8) ? { start, ...(chance(0.7) && { end: `${Number(start.slice(0, 4)) + 1}` }) } : undefined,
    });
  }
  for (let i = 0; i < 30; i++) {
    out.push({
        resourceType: 'RiskAssessment',
        id: `risk-${i}`,
        status: 'final',
        subject: { reference: pick(patients) },
        prediction: [{ probabilityDecimal: pick([0.05, 0.1, 0.15, 0.25, 0.3, 0.333, 0.5, 0.75, 1]) }],
    });
  }
  // JSON drops undefined members, as the server will.
  return JSON.parse(JSON.stringify(out));
}

const DATA = generate();

// ---- generated queries ----------------------------------------------------------------------

type Param = [string, string];

/** Values taken from the stored data (so that queries match something), or made up (so that some do not). */
function valuesOf(type: string, read: (r: any) => unknown[]): string[] {
  return [...new Set(DATA.filter((r) => r.resourceType === type).flatMap((r) => read(r).filter((v): v is string => typeof v === 'string')))];
}

function prefixOf(text: string, min = 1): string {
  return text.slice(0, int(min, Math.max(min, text.length)));
}

/** A date search value: random, or a stored value cut to a coarser precision (where the range rules bite). */
function dateQuery(from: number, to: number, stored: string[] = []): string {
  const prefix = pick(['', 'eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb']);
  if (stored.length && chance(0.6)) {
    const value = pick(stored);
    return prefix + (chance(0.3) ? value : value.slice(0, Math.min(value.length, pick([4, 7, 10]))));
  }
  return prefix + randomDate(from, to);
}

/** A piece from the middle of a word: a prefix search must not find it, :contains must. */
function infixOf(text: string): string {
  const start = int(1, Math.max(1, text.length - 1));
  return text.slice(start, start + int(1, 3)) || text;
}

function generators(): Record<string, (() => Param)[]> {
  const ids = (type: string) => DATA.filter((r) => r.resourceType === type).map((r) => `${type}/${r.id}`);
  const patients = ids('Patient');
  const orgs = ids('Organization');
  const families = valuesOf('Patient', (p) => p.name.map((n: any) => n.family));
  const givens = valuesOf('Patient', (p) => p.name.flatMap((n: any) => n.given ?? []));
  const mrns = valuesOf('Patient', (p) => p.identifier.map((i: any) => `${i.system ?? ''}|${i.value}`));
  const birthDates = valuesOf('Patient', (p) => [p.birthDate]);
  const effective = valuesOf('Observation', (o) => [o.effectiveDateTime, o.effectiveInstant, o.effectivePeriod?.start, o.effectivePeriod?.end]);
  const periods = valuesOf('Encounter', (e) => [e.period?.start, e.period?.end]);
  const periodEnds = valuesOf('Observation', (o) => [o.effectivePeriod?.end]);
  const periodStarts = valuesOf('Observation', (o) => [o.effectivePeriod?.start]);
  const token = (c: (typeof CODES)[number]) => pick([c.code, `${c.system ?? ''}|${c.code}`, ...(c.system ? [`${c.system}|`] : [])]);
  const quantity = () => pick(['', 'gt', 'lt', 'ge', 'le', 'ne']) + pick(['5', '5.6', '120', '95.5', '0.3', '150']) + pick(['', '', '||mmHg', '||mg', '|http://unitsofmeasure.org|mm[Hg]', '|http://unitsofmeasure.org|mmol/L']);
  return {
    Patient: [
      () => ['name', prefixOf(pick([...families, ...givens]).replace(/./, (c) => (chance(0.5) ? c.toUpperCase() : c)))],
      () => ['name', [prefixOf(pick(families)), prefixOf(pick(givens))].join(',')],
      () => ['name', infixOf(pick([...families, ...givens]))],
      () => ['name:contains', infixOf(pick([...families, ...givens]))],
      () => ['family', pick(['smith', 'MULLER', 'emile', 'Ångst', 'ang', '王', 'nguyen', 'de la'])],
      () => ['family:exact', pick([...families, 'smith', 'Muller'])],
      () => ['name:contains', pick(['ll', 'ÜLL', 'oe', '小', 'la c', 'ann', 'E'])],
      () => ['given', pick(givens)],
      () => ['identifier', pick([...mrns, 'MRN-3', 'urn:mrn:a|', '|NOSYS-4', 'urn:mrn:b|MRN-7', 'urn:none|MRN-1'])],
      () => ['gender', pick(['male', 'female', 'other', 'male,other'])],
      () => ['gender:not', pick(['male', 'female'])],
      () => ['birthdate', dateQuery(1940, 2020, birthDates)],
      () => ['active', pick(['true', 'false'])],
      () => ['active:missing', pick(['true', 'false'])],
      () => ['organization', pick(orgs)],
      () => ['organization:missing', pick(['true', 'false'])],
      () => ['address-city', pick(['bei', 'SAO', 'zur', 'Bern', '北'])],
      () => ['organization.name', pick(['peking', 'hopital', '协和', 'clinic zur'])],
      () => ['_has:Observation:patient:code', token(pick(CODES))],
      () => ['_has:Encounter:subject:status', pick(['finished', 'planned'])],
      () => ['_id', patients.slice(0, int(1, 5)).map((r) => r.split('/')[1]).join(',')],
      () => ['_lastUpdated', `${pick(['gt', 'lt', 'ge', 'le'])}2000-01-01`],
    ],
    Observation: [
      () => ['code', token(pick(CODES))],
      () => ['code', [pick(CODES).code, pick(CODES).code].join(',')],
      () => ['code:text', pick(['glu', 'SYSTOLIC', 'blood', 'hemo'])],
      () => ['category', pick(['vital-signs', 'laboratory', 'http://terminology.hl7.org/CodeSystem/observation-category|laboratory'])],
      () => ['status', pick(['final', 'amended,preliminary'])],
      () => ['status:not', pick(['final', 'preliminary'])],
      () => ['subject', pick(patients)],
      () => ['patient', [pick(patients), pick(patients)].join(',')],
      () => ['date', dateQuery(2015, 2024, effective)],
      // Periods that end (start) inside the searched range but start (end) outside it: ge (le) is gt (lt) or eq, not "overlaps".
      () => ['date', 'ge' + pick(periodEnds).slice(0, pick([4, 7, 10]))],
      () => ['date', 'le' + pick(periodStarts).slice(0, pick([4, 7, 10]))],
      () => ['value-quantity', quantity()],
      () => ['value-quantity:missing', pick(['true', 'false'])],
      () => ['value-string', pick(['stab', 'STABLE c', 'impr', '稳'])],
      () => ['value-string:exact', pick(['stable', 'Stable condition'])],
      () => ['code-value-quantity', `${pick(CODES).code}$${quantity().split('|')[0]}`],
      () => ['subject:Patient.name', prefixOf(pick(families))],
      () => ['subject.gender', pick(['male', 'female'])],
      () => ['patient.organization.name', pick(['peking', 'hopital', 'general'])],
      () => ['patient.organization.identifier', `urn:org|ORG-${int(0, 5)}`],
    ],
    Encounter: [
      () => ['status', pick(['finished', 'in-progress', 'planned'])],
      () => ['class', pick(['AMB', 'IMP', 'EMER'])],
      () => ['date', dateQuery(2018, 2025, periods)],
      () => ['date', pick(['ge', 'le']) + pick(periods).slice(0, pick([4, 7, 10]))],
      () => ['subject', pick(patients)],
      () => ['service-provider', pick(orgs)],
      () => ['service-provider:missing', pick(['true', 'false'])],
      () => ['subject.birthdate', dateQuery(1940, 2020, birthDates)],
    ],
    RiskAssessment: [
      () => ['probability', pick(['', 'gt', 'lt', 'ge', 'le', 'ne']) + pick(['0.3', '0.25', '0.1', '0.33', '1', '0.5', '0.250'])],
      () => ['subject.gender', pick(['male', 'female'])],
    ],
    Organization: [
      () => ['name', pick(['peking', 'HOP', '协', 'clinic', 'general hospital 1'])],
      () => ['identifier', `urn:org|ORG-${int(0, 5)}`],
      () => ['_has:Patient:organization:_has:Observation:patient:code', token(pick(CODES))],
      () => ['_has:Encounter:service-provider:class', pick(['AMB', 'IMP'])],
    ],
  };
}

const SORTS: Record<string, string[]> = {
  Patient: ['family', 'birthdate', 'gender', '_id', 'identifier', 'address-city'],
  Observation: ['date', 'value-quantity', 'code', 'status', '_lastUpdated'],
  Encounter: ['date', 'status', 'class'],
  RiskAssessment: ['probability'],
  Organization: ['name'],
};

interface Case {
  resourceType: string;
  params: Param[];
  sort: string[];
  count: number;
}

function generateCases(total: number): Case[] {
  const byType = generators();
  const types = Object.keys(byType);
  const cases: Case[] = [];
  for (let i = 0; i < total; i++) {
    const resourceType = types[i % types.length];
    const menu = byType[resourceType];
    const params = Array.from({ length: pick([1, 1, 2, 2, 3]) }, () => pick(menu)());
    const sort = chance(0.7) ? Array.from({ length: pick([1, 1, 2]) }, () => (chance(0.5) ? '-' : '') + pick(SORTS[resourceType])) : [];
    cases.push({ resourceType, params, sort, count: pick([2, 3, 5, 8, 50]) });
  }
  return cases;
}

// ---- running and comparing ------------------------------------------------------------------

/** Negative, zero or positive as a resource sorts before, with or after another under these keys. */
function compareByKeys(a: Resource, b: Resource, sort: string[]): number {
  for (const key of sort) {
    const descending = key.startsWith('-');
    const code = descending ? key.slice(1) : key;
    const x = oracle.sortValue(a, code, descending);
    const y = oracle.sortValue(b, code, descending);
    if (x === y) continue;
    if (x === undefined) return 1; // missing values last
    if (y === undefined) return -1;
    return (x < y ? -1 : 1) * (descending ? -1 : 1);
  }
  return 0;
}

async function walk(url: string, relation: 'next' | 'previous'): Promise<{ pages: string[][]; resources: Resource[]; last: string }> {
  const pages: string[][] = [];
  const resources: Resource[] = [];
  let next: string | undefined = url;
  let last = url;
  while (next) {
    const res: { status: number; body: any } = await client.get(next);
    if (res.status !== 200) throw new Error(`${next}: ${res.status} ${JSON.stringify(res.body?.issue)}`);
    const matches = (res.body.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource);
    const outcome = (res.body.entry ?? []).find((e: any) => e.search.mode === 'outcome');
    if (outcome) throw new Error(`${next}: unexpected warning ${JSON.stringify(outcome.resource.issue)}`);
    pages.push(matches.map((r: Resource) => r.id as string));
    resources.push(...matches);
    last = next;
    next = res.body.link.find((l: any) => l.relation === relation)?.url;
    if (pages.length > 200) throw new Error('too many pages');
  }
  return { pages, resources, last };
}

beforeAll(async () => {
  server = await startTestServer({ AUDIT_ENABLED: 'false' });
  client = server.client();
  const res = await client.post('', {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: DATA.map((resource) => ({ resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } })),
  });
  if (res.status !== 200) throw new Error(JSON.stringify(res.body.issue));
  const rows = await server.pool.query<{ content: Resource }>('SELECT content FROM resource WHERE NOT deleted');
  oracle = new SearchOracle(rows.rows.map((r) => r.content));
});
afterAll(async () => server.close());

const CASES = generateCases(200);

test('the data set is varied enough to mean something', () => {
  // Every write also recorded a Provenance, which the oracle knows too (system searches find them).
  // (The profile pack's conformance resources and the Provenances of writes are there too.)
  const written = new Set(DATA.map((r) => `${r.resourceType}/${r.id}`));
  expect(oracle.resources.filter((r) => written.has(`${r.resourceType}/${r.id}`))).toHaveLength(416);
  const answered = CASES.filter((c) => oracle.search(c.resourceType, c.params).length > 0);
  // Most combinations match something, some match nothing.
  expect(answered.length).toBeGreaterThan(100);
  expect(answered.length).toBeLessThan(200);
});

describe.each(CASES.map((c, i) => [i, c] as const))('case %i', (i, c) => {
  const extra: Param[] = [...(c.sort.length ? [['_sort', c.sort.join(',')] as Param] : []), ['_count', String(c.count)]];
  const query = new URLSearchParams([...c.params, ...extra]);
  test(`${c.resourceType}?${decodeURIComponent(query.toString())}`, async () => {
    const expected = oracle.search(c.resourceType, c.params);
    const { pages, resources, last } = await walk(`${c.resourceType}?${query}`, 'next');
    const ids = resources.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length); // no duplicates across pages
    expect([...ids].sort()).toEqual(expected.map((r) => r.id).sort()); // no gaps, nothing extra
    expect(pages.slice(0, -1).every((p) => p.length === c.count)).toBe(true);
    // In the requested order (ties in any order); newest first without _sort.
    const sort = c.sort.length ? c.sort : ['-_lastUpdated'];
    for (let k = 1; k < resources.length; k++) {
      expect({ k, order: compareByKeys(resources[k - 1], resources[k], sort) <= 0 }).toEqual({ k, order: true });
    }
    // POST [type]/_search with the same parameters as a form body answers the same.
    if (i % 4 === 0) {
      const post = await client.request('POST', `${c.resourceType}/_search`, {
        rawBody: query.toString(),
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      });
      expect(post.status).toBe(200);
      expect((post.body.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id)).toEqual(pages[0]);
    }
    // Every third walk comes back through the previous links and must see the same pages.
    if (i % 3 === 0 && pages.length > 1) {
      const back = await walk(last, 'previous');
      expect(back.pages.reverse()).toEqual(pages);
    }
  });
});
