/**
 * The CapabilityStatement lists exactly the search parameters that work: every listed
 * parameter of every type is accepted by a real search (no warning, no error), and the ones
 * this server does not support (near, _text, _content, Medplum's _compartment) are not listed
 * and draw a warning, or a 400 under Prefer: handling=strict.
 * Also :in / :not-in, which need the terminology service to expand value sets.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import { FhirTestClient } from '../helpers/fhir-client';
import type { TerminologyService } from '../../src/services';

let server: TestServer;
let client: FhirTestClient;
let statement: any;

beforeAll(async () => {
  server = await startTestServer({ AUDIT_ENABLED: 'false' });
  client = server.client();
  statement = (await client.get('metadata')).body;
});
afterAll(async () => server.close());

/** A well-formed value for a parameter of this type (composites: by their components). */
function sampleValue(type: string, name: string): string {
  switch (type) {
    case 'string':
      return 'a';
    case 'token':
      return 'http://example.org|a';
    case 'date':
      return 'ge2020-01-01';
    case 'number':
      return '1';
    case 'quantity':
      return '1|http://unitsofmeasure.org|mg';
    case 'uri':
      return 'http://example.org/a';
    case 'reference':
      return 'Patient/1';
    case 'composite':
      return compositeValue(name);
    default:
      throw new Error(`unexpected type ${type}`);
  }
}

/** Composites by the shape their names reveal (token$token otherwise). */
function compositeValue(name: string): string {
  if (name.endsWith('quantity')) return 'a$1';
  if (name.endsWith('date')) return 'a$2020';
  if (name.endsWith('string')) return 'a$b';
  if (name.endsWith('coordinate')) return 'a$1$1';
  if (name === 'relatesto' || name === 'relationship') return 'DocumentReference/1$replaces';
  return 'a$a';
}

describe('CapabilityStatement search parameters', () => {
  test('every listed parameter of every type is accepted by a search, with no warning', async () => {
    const failures: string[] = [];
    let checked = 0;
    for (const resource of statement.rest[0].resource) {
      const params: any[] = resource.searchParam ?? [];
      // One batch per type: each entry a search by one listed parameter.
      const entry = params.map((p) => ({
        request: { method: 'GET', url: `${resource.type}?${encodeURIComponent(p.name)}=${encodeURIComponent(sampleValue(p.type, p.name))}&_count=1` },
      }));
      if (!entry.length) continue;
      const res = await client.withHeaders({ Prefer: 'handling=strict' }).post('', { resourceType: 'Bundle', type: 'batch', entry });
      expect(res.status).toBe(200);
      res.body.entry.forEach((e: any, i: number) => {
        checked++;
        const warnings = e.resource?.entry?.filter((x: any) => x.search?.mode === 'outcome') ?? [];
        if (!e.response.status.startsWith('200') || warnings.length) {
          failures.push(`${entry[i].request.url}: ${e.response.status} ${JSON.stringify(e.response.outcome?.issue?.[0]?.diagnostics ?? warnings)}`);
        }
      });
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(2500);
  });

  test('unsupported parameters are not listed, and are warned about (or refused under handling=strict)', async () => {
    const location = statement.rest[0].resource.find((r: any) => r.type === 'Location');
    const patient = statement.rest[0].resource.find((r: any) => r.type === 'Patient');
    expect(location.searchParam.map((p: any) => p.name)).not.toContain('near');
    expect(patient.searchParam.map((p: any) => p.name)).not.toContain('_compartment');
    expect(patient.searchParam.map((p: any) => p.name)).toEqual(expect.arrayContaining(['_id', '_lastUpdated', '_tag', '_profile', '_security', '_source', 'identifier']));
    expect(patient.searchParam.find((p: any) => p.name === '_tag').definition).toBe('http://hl7.org/fhir/SearchParameter/Resource-tag');
    expect(patient.searchRevInclude).toEqual(expect.arrayContaining(['*', 'Observation:subject', 'Encounter:patient']));
    for (const query of ['Location?near=1|2|10|km', 'Patient?_text=x', 'Patient?_content=x', 'Patient?_compartment=Patient/1', 'Patient?_filter=name eq x']) {
      const lenient = await client.get(query);
      expect({ query, status: lenient.status }).toEqual({ query, status: 200 });
      expect(lenient.body.entry.find((e: any) => e.search.mode === 'outcome').resource.issue[0].severity).toBe('warning');
      const strict = await client.get(query, { Prefer: 'handling=strict' });
      expect({ query, status: strict.status }).toEqual({ query, status: 400 });
    }
    const binary = statement.rest[0].resource.find((r: any) => r.type === 'Binary');
    expect(binary.searchParam.map((p: any) => p.name).sort()).toEqual(['_id', '_lastUpdated']);
  });
});

describe(':in and :not-in', () => {
  const VITALS = 'http://example.org/fhir/ValueSet/blood-pressure';
  let original: TerminologyService;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    original = server.services.terminology;
    const obs = (key: string, system: string, code: string) =>
      client
        .post('Observation', { resourceType: 'Observation', status: 'final', code: { coding: [{ system, code }] } })
        .then((r) => (ids[key] = r.body.id));
    await obs('systolic', 'http://loinc.org', '8480-6');
    await obs('diastolic', 'http://loinc.org', '8462-4');
    await obs('glucose', 'http://loinc.org', '2345-7');
    await obs('wrongSystem', 'http://example.org/local', '8480-6');
  });
  afterEach(() => {
    server.services.terminology = original;
  });

  const matches = async (query: string) => {
    const res = await client.get(query);
    expect(res.status).toBe(200);
    const byId = new Map(Object.entries(ids).map(([k, v]) => [v, k]));
    return (res.body.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => byId.get(e.resource.id)).sort();
  };

  test('without a terminology service that can expand the value set: 400 "cannot expand"', async () => {
    const res = await client.get(`Observation?code:in=${VITALS}`);
    expect(res.status).toBe(400);
    expect(res.body.issue[0]).toMatchObject({ severity: 'error', code: 'not-supported' });
    expect(res.body.issue[0].diagnostics).toMatch(/cannot expand the value set/);
  });

  test('codes of the expansion match by system and code; :not-in is the complement', async () => {
    const asked: string[] = [];
    // The real service's other methods stay (they live on its prototype, which a spread would lose).
    server.services.terminology = Object.assign(Object.create(original), {
      expandCodes: async (url: string) => {
        asked.push(url);
        return url === VITALS
          ? [
              { system: 'http://loinc.org', code: '8480-6' },
              { system: 'http://loinc.org', code: '8462-4' },
            ]
          : url === 'http://example.org/fhir/ValueSet/empty'
            ? []
            : undefined;
      },
    });
    expect(await matches(`Observation?code:in=${VITALS}`)).toEqual(['diastolic', 'systolic']);
    expect(await matches(`Observation?code:not-in=${VITALS}`)).toEqual(['glucose', 'wrongSystem']);
    expect(await matches(`Observation?code:in=http://example.org/fhir/ValueSet/empty`)).toEqual([]);
    expect(await matches(`Observation?code:in=http://example.org/fhir/ValueSet/empty,${VITALS}`)).toEqual(['diastolic', 'systolic']);
    expect(asked).toContain(VITALS);
    expect((await client.get('Observation?code:in=http://example.org/fhir/ValueSet/unknown')).status).toBe(400);
    // Also as a conditional criterion.
    const conditional = await client.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'x' } }, { 'If-None-Exist': `code:in=${VITALS}` });
    expect(conditional.status).toBe(412);
  });
});
