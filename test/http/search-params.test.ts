/**
 * Search by every parameter type and modifier: string, token, date, number, quantity, uri,
 * reference (incl. chains and _has), composite, :missing, _id, _lastUpdated, _tag.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import type { FhirTestClient } from '../helpers/fhir-client';
import { keyedFixtures } from '../helpers/keyed-fixtures';

let server: TestServer;
let client: FhirTestClient;
const { ids, create, search } = keyedFixtures(() => client);

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
  await create('org', { resourceType: 'Organization', name: 'Peking Union Medical College Hospital', identifier: [{ system: 'urn:oid:2.16.156.10011.1.5', value: 'PUMCH' }] });
  await create('wang', {
    resourceType: 'Patient',
    identifier: [
      { system: 'urn:oid:2.16.156.10011.1.3', value: '11010519491231002X' },
      { system: 'urn:oid:2.16.156.10011.1.13', value: 'MRN-7', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }], text: 'Medical record number' } },
    ],
    name: [{ family: '王', given: ['芳'], text: '王芳' }],
    gender: 'female',
    birthDate: '1949-12-31',
    active: true,
    telecom: [{ system: 'phone', value: '010-12345678' }],
    address: [{ city: 'Beijing', district: 'Xicheng', postalCode: '100032' }],
    managingOrganization: { reference: `Organization/${ids.org}` },
    meta: { tag: [{ system: 'urn:tags', code: 'vip' }], profile: ['http://fhir-server.dev/cn/StructureDefinition/cn-patient'] },
  });
  await create('zoe', {
    resourceType: 'Patient',
    name: [{ family: 'Émile', given: ['Zoë', 'Anne'] }],
    gender: 'female',
    birthDate: '1980-05',
    active: false,
    address: [{ city: 'Shanghai' }],
    meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] },
  });
  await create('smith', { resourceType: 'Patient', name: [{ family: 'Smithson', given: ['John'] }], gender: 'male', birthDate: '2001-02-03T10:00:00+08:00'.slice(0, 10), meta: { source: 'http://his.example.org/adt' } });
  await create('bp', {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs', display: 'Vital Signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '85354-9', display: 'Blood pressure panel' }], text: 'Blood pressure' },
    subject: { reference: `Patient/${ids.wang}` },
    effectiveDateTime: '2021-03-04T10:00:00+08:00',
    component: [
      { code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: { value: 150, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } },
      { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 95, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } },
    ],
  });
  await create('glucose', {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '2345-7', display: 'Glucose' }] },
    subject: { reference: `${server.baseUrl}/Patient/${ids.zoe}` },
    effectivePeriod: { start: '2021-03-01', end: '2021-03-10' },
    valueQuantity: { value: 5.6, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
  });
  await create('note', {
    resourceType: 'Observation',
    status: 'preliminary',
    code: { text: 'Free text note' },
    subject: { reference: `Patient/${ids.smith}`, display: 'John' },
    performer: [{ identifier: { system: 'urn:oid:2.16.156.10011.1.4', value: 'DOC-1' } }],
    valueString: 'stable',
  });
  await create('risk', { resourceType: 'RiskAssessment', status: 'final', subject: { reference: `Patient/${ids.wang}` }, prediction: [{ probabilityDecimal: 0.25 }] });
  await create('onset', { resourceType: 'Condition', subject: { reference: `Patient/${ids.smith}` }, onsetString: 'childhood' });
  await create('onsetDate', { resourceType: 'Condition', subject: { reference: `Patient/${ids.smith}` }, onsetDateTime: '2010-06-01' });
  await create('vs', { resourceType: 'ValueSet', status: 'active', url: 'http://example.org/fhir/ValueSet/colours' });
  await create('vs2', { resourceType: 'ValueSet', status: 'active', url: 'http://example.org/fhir/ValueSet/colours/warm' });
});
afterAll(async () => server.close());

describe('string', () => {
  test('default is a case- and accent-insensitive prefix match on every name part', async () => {
    expect(await search('Patient?name=emil')).toEqual(['zoe']);
    expect(await search('Patient?name=ZOE')).toEqual(['zoe']);
    expect(await search('Patient?name=ann')).toEqual(['zoe']);
    expect(await search('Patient?name=王')).toEqual(['wang']);
    expect(await search('Patient?family=smith')).toEqual(['smith']);
    expect(await search('Patient?address-city=bei')).toEqual(['wang']);
    expect(await search('Patient?address=xicheng')).toEqual(['wang']);
  });
  test(':exact and :contains', async () => {
    expect(await search('Patient?name:exact=Émile')).toEqual(['zoe']);
    expect(await search('Patient?name:exact=emile')).toEqual([]);
    expect(await search('Patient?name:contains=mith')).toEqual(['smith']);
    expect(await search('Patient?name:contains=芳')).toEqual(['wang']);
  });
  test('comma is OR, repetition is AND', async () => {
    expect(await search('Patient?name=smith,emile')).toEqual(['smith', 'zoe']);
    expect(await search('Patient?name=zoe&name=anne')).toEqual(['zoe']);
    expect(await search('Patient?name=zoe&name=john')).toEqual([]);
  });
});

describe('token', () => {
  test('code, system|code, |code and system|', async () => {
    expect(await search('Patient?gender=male')).toEqual(['smith']);
    expect(await search('Patient?identifier=urn:oid:2.16.156.10011.1.3|11010519491231002X')).toEqual(['wang']);
    expect(await search('Patient?identifier=11010519491231002X')).toEqual(['wang']);
    expect(await search('Patient?identifier=urn:other|11010519491231002X')).toEqual([]);
    expect(await search('Patient?identifier=urn:oid:2.16.156.10011.1.13|')).toEqual(['wang']);
    expect(await search('Observation?code=http://loinc.org|2345-7')).toEqual(['glucose']);
    expect(await search('Patient?gender=|female')).toEqual(['wang', 'zoe']);
    expect(await search('Patient?active=true')).toEqual(['wang']);
    expect(await search('Patient?telecom=010-12345678')).toEqual(['wang']);
  });
  test(':not, :text, :of-type', async () => {
    expect(await search('Patient?gender:not=female')).toEqual(['smith']);
    expect(await search('Observation?code:text=blood')).toEqual(['bp']);
    expect(await search('Observation?code:text=gluc')).toEqual(['glucose']);
    expect(await search('Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|MRN-7')).toEqual(['wang']);
    expect(await search('Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|other')).toEqual([]);
  });
  test('_tag, _profile, _security, _source and _id', async () => {
    expect(await search('Patient?_tag=urn:tags|vip')).toEqual(['wang']);
    expect(await search('Patient?_tag:not=urn:tags|vip')).toEqual(['smith', 'zoe']);
    expect(await search('Patient?_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R')).toEqual(['zoe']);
    expect(await search('Patient?_security=R&_tag=urn:tags|vip')).toEqual([]);
    expect(await search('Patient?_source=http://his.example.org/adt')).toEqual(['smith']);
    expect(await search('Patient?_source:below=http://his.example.org')).toEqual(['smith']);
    expect(await search('Patient?_profile:missing=true')).toEqual(['smith', 'zoe']);
    expect(await search('Patient?_profile=http://fhir-server.dev/cn/StructureDefinition/cn-patient')).toEqual(['wang']);
    expect(await search(`Patient?_id=${ids.zoe},${ids.smith}`)).toEqual(['smith', 'zoe']);
    expect(await search(`Patient?_id:not=${ids.zoe}`)).toEqual(['smith', 'wang']);
  });
});

describe('date', () => {
  test('precision as range with every prefix', async () => {
    expect(await search('Patient?birthdate=1949')).toEqual(['wang']);
    expect(await search('Patient?birthdate=1949-12-31')).toEqual(['wang']);
    expect(await search('Patient?birthdate=1980-05-04')).toEqual([]); // the stored month is wider than the day
    expect(await search('Patient?birthdate=1980')).toEqual(['zoe']);
    expect(await search('Patient?birthdate=ne1980')).toEqual(['smith', 'wang']);
    expect(await search('Patient?birthdate=lt1980')).toEqual(['wang']);
    expect(await search('Patient?birthdate=gt1980')).toEqual(['smith']);
    expect(await search('Patient?birthdate=ge1980-05')).toEqual(['smith', 'zoe']);
    expect(await search('Patient?birthdate=le1980-05')).toEqual(['wang', 'zoe']);
    expect(await search('Patient?birthdate=sa1980-06')).toEqual(['smith']);
    expect(await search('Patient?birthdate=eb1950')).toEqual(['wang']);
    expect(await search('Patient?birthdate=ap2001-02-01')).toEqual(['smith']);
  });
  test('dateTime with time zone and Period', async () => {
    expect(await search('Observation?date=2021-03-04')).toEqual(['bp']);
    expect(await search('Observation?date=2021-03-04T02:00:00Z')).toEqual(['bp']);
    expect(await search('Observation?date=ge2021-03-05')).toEqual(['glucose']);
    expect(await search('Observation?date=2021-03')).toEqual(['bp', 'glucose']);
    expect(await search('Observation?date=lt2021-03-02')).toEqual(['glucose']);
  });
  test('_lastUpdated', async () => {
    expect((await search('Patient?_lastUpdated=gt2000-01-01')).length).toBe(3);
    expect(await search('Patient?_lastUpdated=lt2000-01-01')).toEqual([]);
  });
});

describe('number, quantity, uri, composite', () => {
  test('number with precision and prefixes', async () => {
    expect(await search('RiskAssessment?probability=0.25')).toEqual(['risk']);
    // 0.3 stands for [0.25, 0.35): 0.25 is its lower bound.
    expect(await search('RiskAssessment?probability=0.3')).toEqual(['risk']);
    expect(await search('RiskAssessment?probability=0.4')).toEqual([]);
    expect(await search('RiskAssessment?probability=0.250')).toEqual(['risk']);
    expect(await search('RiskAssessment?probability=gt0.2')).toEqual(['risk']);
    expect(await search('RiskAssessment?probability=le0.2')).toEqual([]);
  });
  test('quantity with prefixes and units', async () => {
    expect(await search('Observation?value-quantity=5.6')).toEqual(['glucose']);
    expect(await search('Observation?value-quantity=gt5|http://unitsofmeasure.org|mmol/L')).toEqual(['glucose']);
    expect(await search('Observation?value-quantity=gt5||mmol/L')).toEqual(['glucose']);
    expect(await search('Observation?value-quantity=gt5||mg')).toEqual([]);
    expect(await search('Observation?component-value-quantity=ge150')).toEqual(['bp']);
  });
  test('uri with :below and :above', async () => {
    expect(await search('ValueSet?url=http://example.org/fhir/ValueSet/colours')).toEqual(['vs']);
    expect(await search('ValueSet?url:below=http://example.org/fhir/ValueSet/colours')).toEqual(['vs', 'vs2']);
    expect(await search('ValueSet?url:above=http://example.org/fhir/ValueSet/colours/warm/extra')).toEqual(['vs', 'vs2']);
  });
  test('composite: code and value of the same component', async () => {
    expect(await search('Observation?component-code-value-quantity=http://loinc.org|8480-6$gt140')).toEqual(['bp']);
    // 95 belongs to the diastolic component, not the systolic one.
    expect(await search('Observation?component-code-value-quantity=8480-6$lt100')).toEqual([]);
    expect(await search('Observation?code-value-quantity=2345-7$5.6')).toEqual(['glucose']);
    expect(await search('Observation?code-value-string=Free text note$stab')).toEqual([]);
  });
});

describe('reference', () => {
  test('id, Type/id, absolute URL, :Type, :identifier', async () => {
    expect(await search(`Observation?subject=Patient/${ids.wang}`)).toEqual(['bp']);
    expect(await search(`Observation?subject=${ids.zoe}`)).toEqual(['glucose']);
    expect(await search(`Observation?subject=${server.baseUrl}/Patient/${ids.zoe}`)).toEqual(['glucose']);
    expect(await search(`Observation?subject:Patient=${ids.smith}`)).toEqual(['note']);
    expect(await search(`Observation?patient=${ids.wang},${ids.smith}`)).toEqual(['bp', 'note']);
    expect(await search('Observation?performer:identifier=urn:oid:2.16.156.10011.1.4|DOC-1')).toEqual(['note']);
  });
  test('absolute references to this server count as local for every parameter, compartments too', async () => {
    // glucose.subject is an absolute URL: `patient` (Observation.subject.where(resolve() is Patient)) must see it.
    expect(await search(`Observation?patient=${ids.zoe}`)).toEqual(['glucose']);
    expect(await search(`Observation?patient=Patient/${ids.zoe}`)).toEqual(['glucose']);
    expect(await search(`Patient/${ids.zoe}/Observation`)).toEqual(['glucose']);
    const rows = await server.pool.query('SELECT compartments FROM resource WHERE id = $1', [ids.glucose]);
    expect(rows.rows[0].compartments).toEqual([ids.zoe]);
  });
  test('chained: one level, typed, and two levels', async () => {
    expect(await search('Observation?subject:Patient.name=王')).toEqual(['bp']);
    expect(await search('Observation?subject.gender=male')).toEqual(['note']);
    expect(await search('Observation?patient.organization.name=peking')).toEqual(['bp']);
    expect(await search('Observation?patient.organization.identifier=urn:oid:2.16.156.10011.1.5|PUMCH')).toEqual(['bp']);
  });
  test('_has, nested', async () => {
    expect(await search('Patient?_has:Observation:patient:code=85354-9')).toEqual(['wang']);
    expect(await search('Patient?_has:Observation:subject:status=preliminary')).toEqual(['smith']);
    expect(await search('Organization?_has:Patient:organization:_has:Observation:patient:code=85354-9')).toEqual(['org']);
  });
});

describe('choice elements', () => {
  test('as(type) keeps only values of that type', async () => {
    expect(await search('Condition?onset-info=child')).toEqual(['onset']);
    expect(await search('Condition?onset-info=2010')).toEqual([]);
    expect(await search('Condition?onset-date=2010')).toEqual(['onsetDate']);
  });
});

describe(':missing', () => {
  test('true and false on several types', async () => {
    expect(await search('Patient?address:missing=true')).toEqual(['smith']);
    expect(await search('Patient?address:missing=false')).toEqual(['wang', 'zoe']);
    expect(await search('Observation?value-quantity:missing=true')).toEqual(['bp', 'note']);
    expect(await search('Patient?organization:missing=false')).toEqual(['wang']);
  });
});

describe('errors and warnings', () => {
  test('unknown parameters: ignored with a warning, or 400 under handling=strict', async () => {
    const res = await client.get('Patient?gender=male&nonsense=1');
    expect(res.status).toBe(200);
    const outcomeEntry = res.body.entry.find((e: any) => e.search.mode === 'outcome');
    expect(outcomeEntry.resource.issue[0]).toMatchObject({ severity: 'warning', code: 'not-supported' });
    expect(outcomeEntry.resource.issue[0].diagnostics).toMatch(/nonsense/);
    expect(res.body.link[0].url).toBe(`${server.baseUrl}/Patient?gender=male`);
    const strict = await client.get('Patient?gender=male&nonsense=1', { Prefer: 'handling=strict' });
    expect(strict.status).toBe(400);
    expect(strict.body.issue[0].diagnostics).toMatch(/nonsense/);
    const chained = await client.get('Observation?subject.nosuchparam=1');
    expect(chained.status).toBe(200);
    expect(chained.body.entry.find((e: any) => e.search.mode === 'outcome')).toBeDefined();
    expect((await client.get('Observation?subject.nosuchparam=1', { Prefer: 'handling=strict' })).status).toBe(400);
  });
  test('malformed values and unsupported modifiers are always 400', async () => {
    for (const q of ['Patient?birthdate=31-12-1949', 'Patient?birthdate=2020-02-30', 'RiskAssessment?probability=abc', 'Patient?gender:exact=male', 'Patient?name:below=x', 'Patient?address:missing=maybe', 'Patient?_sort=nosuch', 'Patient?_count=-1', 'Patient?_include=Patient:name', 'Observation?component-code-value-quantity=8480-6']) {
      const res = await client.get(q);
      expect({ q, status: res.status }).toEqual({ q, status: 400 });
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
  });
  test('injection attempts are values, not SQL', async () => {
    expect(await search("Patient?name=x'%20OR%20'1'='1")).toEqual([]);
    expect(await search('Patient?name=%25')).toEqual([]);
    expect(await search('Patient?name=_')).toEqual([]);
    const rows = await server.pool.query("SELECT count(*)::int AS n FROM resource WHERE resource_type = 'Patient'");
    expect(rows.rows[0].n).toBe(3);
  });
});
