/**
 * The national pack served by a running server (PROFILES_DIR = profiles/): its value sets
 * decide the codes of the binding-only invalid fixtures, its concept maps translate national
 * codes, its naming systems resolve the community OIDs, its search parameters find the
 * extensions, and the AuditEvents the server writes meet CN AuditEvent.
 */
import type { AuditEvent, Bundle, Coding, Extension, Patient } from '@medplum/fhirtypes';
import type { FhirTestClient } from '../helpers/fhir-client';
import { errorsOf, fixture, PROFILES_DIR, validateAgainst } from '../helpers/profiles';
import { startTestServer, type TestServer } from '../helpers/server';
import { out, params } from '../helpers/terminology';

const CN = 'http://fhir-server.dev/cn';
const ETHNICITY = 'urn:oid:2.16.156.10011.2.3.3.3';

let server: TestServer;
let client: FhirTestClient;

beforeAll(async () => {
  server = await startTestServer({ PROFILES_DIR });
  client = server.client();
});
afterAll(async () => server.close());

const validateCode = async (valueSet: string, system: string, code: string) =>
  (await client.get(`ValueSet/$validate-code?url=${encodeURIComponent(`${CN}/ValueSet/${valueSet}`)}&system=${encodeURIComponent(system)}&code=${encodeURIComponent(code)}`)).body;

describe('value sets of the pack decide national codes', () => {
  test('an unknown ethnic group (the invalid-unknown-ethnicity fixture) is not in GB 3304; 汉族 is', async () => {
    const coding = (fixture('cn-patient', 'invalid-unknown-ethnicity') as Patient).extension?.[0].valueCoding;
    const rejected = await validateCode('gb-3304', coding?.system as string, coding?.code as string);
    expect(out(rejected, 'result')).toBe(false);
    expect(out(rejected, 'message')).toMatch(/99/);
    const accepted = await validateCode('gb-3304', ETHNICITY, '01');
    expect([out(accepted, 'result'), out(accepted, 'display')]).toEqual([true, '汉族']);
  });

  test('every coded value of the valid CN Patient is in the value set its binding names', async () => {
    const patient = fixture('cn-patient', 'valid-full') as Patient & { _gender?: { extension?: Extension[] } };
    const sex = patient._gender?.extension?.[0].valueCoding as Coding;
    const checks: [string, string, string][] = [
      ['gb-3304', ETHNICITY, '01'],
      ['gb-t-2659', 'urn:oid:2.16.156.10011.2.3.3.1', '156'],
      ['gb-t-4658', 'urn:oid:2.16.156.10011.2.3.3.6', '60'],
      ['gb-t-2261-1', sex.system as string, sex.code as string],
      ['gb-t-2261-2', 'urn:oid:2.16.156.10011.2.3.3.5', '20'],
      ['gb-t-2260', 'urn:oid:2.16.156.10011.2.3.3.2', '110102'],
      ['cn-identifier-type', 'urn:oid:2.16.156.10011.2.3.1.1', '03'],
      ['cn-identifier-type', 'http://terminology.hl7.org/CodeSystem/v2-0203', 'MR'],
    ];
    for (const [vs, system, code] of checks) expect([vs, code, out(await validateCode(vs, system, code), 'result')]).toEqual([vs, code, true]);
    expect(out(await validateCode('gb-t-2261-1', 'urn:oid:2.16.156.10011.2.3.3.4', '5'), 'result')).toBe(false); // 1980 edition only
    expect(out(await validateCode('gb-t-2260', 'urn:oid:2.16.156.10011.2.3.3.2', '130171'), 'result')).toBe(false); // a development zone
    expect(out(await validateCode('cn-signature-type', 'urn:iso-astm:E1762-95:2013', '1.2.840.10065.1.12.1.5'), 'result')).toBe(true);
    expect(out(await validateCode('cn-provenance-activity', 'http://terminology.hl7.org/CodeSystem/v3-DataOperation', 'READ'), 'result')).toBe(false);
    expect(out(await validateCode('cn-dicom-modality', 'http://dicom.nema.org/resources/ontology/DCM', 'CT'), 'result')).toBe(true);
  });

  test('the division hierarchy serves lookups and is-a expansions', async () => {
    const lookup = await client.get('CodeSystem/$lookup?system=urn:oid:2.16.156.10011.2.3.3.2&code=110102');
    expect(out(lookup.body, 'display')).toBe('西城区');
    const beijing = await client.post('ValueSet/$expand', params({
      name: 'valueSet',
      resource: { resourceType: 'ValueSet', status: 'active', compose: { include: [{ system: 'urn:oid:2.16.156.10011.2.3.3.2', filter: [{ property: 'concept', op: 'descendent-of', value: '110000' }] }] } },
    }));
    const codes = beijing.body.expansion.contains.map((c: { code: string }) => c.code);
    expect(codes).toContain('110100');
    expect(codes).toContain('110102');
    expect(codes.every((c: string) => c.startsWith('11'))).toBe(true);
    const all = await client.get(`ValueSet/$expand?url=${CN}/ValueSet/gb-t-2260&count=1`);
    expect(all.body.expansion.total).toBeGreaterThan(3000);
  });
});

describe('concept maps and naming systems of the pack', () => {
  const translate = async (system: string, code: string, target: string) => {
    const res = await client.get(`ConceptMap/$translate?system=${encodeURIComponent(system)}&code=${code}&targetsystem=${encodeURIComponent(target)}`);
    return (res.body.parameter ?? [])
      .filter((p: { name: string }) => p.name === 'match')
      .map((m: { part: { name: string; valueCode?: string; valueCoding?: { code: string } }[] }) => [
        m.part.find((p) => p.name === 'equivalence')?.valueCode,
        m.part.find((p) => p.name === 'concept')?.valueCoding?.code,
      ]);
  };

  test('sex, patient type and marital status translate to FHIR codes', async () => {
    expect(await translate('urn:oid:2.16.156.10011.2.3.3.4', '9', 'http://hl7.org/fhir/administrative-gender')).toEqual([['wider', 'unknown']]);
    expect(await translate('urn:oid:2.16.156.10011.2.3.3.4', '2', 'http://hl7.org/fhir/administrative-gender')).toEqual([['equivalent', 'female']]);
    expect(await translate('urn:oid:2.16.156.10011.2.3.1.271', '3', 'http://terminology.hl7.org/CodeSystem/v3-ActCode')).toEqual([['equivalent', 'IMP']]);
    expect(await translate('urn:oid:2.16.156.10011.2.3.3.5', '22', 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus')).toEqual([['wider', 'M']]);
    expect(await translate('urn:oid:2.16.156.10011.2.3.3.5', '90', 'http://terminology.hl7.org/CodeSystem/v3-NullFlavor')).toEqual([['equivalent', 'UNK']]);
  });

  test('the HL7 China community OIDs of the identity card resolve to the national namespace', async () => {
    for (const community of ['2.16.840.1.113883.2.23.1.19.1', '2.16.840.1.113883.2.23.1.19.2']) {
      const res = await client.get(`NamingSystem/$preferred-id?id=${community}&type=uri`);
      expect([community, out(res.body, 'result')]).toEqual([community, 'urn:oid:2.16.156.10011.1.3']);
    }
  });
});

describe('search parameters of the pack', () => {
  test('patients are found by ethnic group, division code and marital status; the CapabilityStatement lists them', async () => {
    const patient = fixture('cn-patient', 'valid-full');
    const created = await client.post('Patient', patient);
    expect(created.status).toBe(201);
    await client.post('Patient', fixture('cn-patient', 'valid-minimal'));
    const ids = async (query: string) => ((await client.get(`Patient?${query}`)).body as Bundle).entry?.map((e) => e.resource?.id) ?? [];
    expect(await ids(`ethnicity=${encodeURIComponent(`${ETHNICITY}|01`)}`)).toEqual([created.body.id]);
    expect(await ids(`ethnicity=${encodeURIComponent(`${ETHNICITY}|02`)}`)).toEqual([]);
    expect(await ids('address-division=110102')).toEqual([created.body.id]);
    expect(await ids(`marital-status=${encodeURIComponent('urn:oid:2.16.156.10011.2.3.3.5|20')}`)).toEqual([created.body.id]);
    expect(await ids('nationality=156')).toEqual([created.body.id]);
    const metadata = await client.get('metadata');
    const patientParams = metadata.body.rest[0].resource.find((r: { type: string }) => r.type === 'Patient').searchParam.map((p: { name: string }) => p.name);
    expect(patientParams).toEqual(expect.arrayContaining(['ethnicity', 'nationality', 'education', 'marital-status', 'address-division']));
  });
});

test('the AuditEvents this server writes meet CN AuditEvent', async () => {
  await client.get('Patient?_count=1');
  await client.get('Patient/does-not-exist');
  await fetch(`${server.baseUrl}/Patient`); // refused: no token
  const events = ((await client.get('AuditEvent?_count=50&_sort=-_lastUpdated')).body as Bundle<AuditEvent>).entry?.map((e) => e.resource as AuditEvent) ?? [];
  expect(events.length).toBeGreaterThanOrEqual(3);
  expect(new Set(events.map((e) => e.outcome))).toEqual(new Set(['0', '4']));
  for (const event of events) expect([event.id, errorsOf(validateAgainst(`${CN}/StructureDefinition/cn-audit-event`, event))]).toEqual([event.id, []]);
});
