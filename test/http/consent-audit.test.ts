/**
 * The audit side of consent-based sharing: break the glass (a practitioner stating ETREAT sees
 * records without consent, and every such request's AuditEvent carries the BTG label), denied
 * accesses leave an AuditEvent, and a patient lists every access to their record (who, from
 * which institution, why) by searching AuditEvents, seeing no other patient's events.
 */
import { startTestServer, type TestServer } from '../helpers/server';
import type { FhirTestClient } from '../helpers/fhir-client';
import { ACT_REASON, actor, consent, ids, resourceClass, setUpHospitals, type Hospitals } from '../helpers/hospitals';

let server: TestServer;
let root: FhirTestClient;
let drA: FhirTestClient;
let drB: FhirTestClient;
let pat1: FhirTestClient;
let pat2: FhirTestClient;
let hospitals: Hospitals;
const started = new Date(Date.now() - 1000).toISOString();
const BTG = `${ACT_REASON}|BTG`;

/** The AuditEvents (as the admin sees them) of one request, by its X-Request-Id. */
async function eventsOf(requestId: string): Promise<any[]> {
  const rows = await server.pool.query(
    `SELECT content FROM resource WHERE resource_type = 'AuditEvent'
       AND content->'entity' @> jsonb_build_array(jsonb_build_object('what', jsonb_build_object('identifier', jsonb_build_object('value', $1::text))))`,
    [requestId]
  );
  return rows.rows.map((r) => r.content);
}
const requestIdOf = (event: any) => event.entity.find((e: any) => e.type?.code === 'XrequestId')?.what.identifier.value;
const references = (event: any) => [...event.agent.map((a: any) => a.who?.reference), ...event.entity.map((e: any) => e.what?.reference)].filter(Boolean);
const purposes = (event: any) => (event.purposeOfEvent ?? []).map((p: any) => p.coding[0].code);

beforeAll(async () => {
  server = await startTestServer();
  root = server.client();
  hospitals = await setUpHospitals(server, ['pat1', 'pat2']);
  drA = await hospitals.login('drA');
  drB = await hospitals.login('drB');
  pat1 = await hospitals.login('pat1', 'user/*.rs user/Consent.c');
  pat2 = await hospitals.login('pat2', 'user/*.rs');
  for (const id of ['pat1', 'pat2']) {
    await drA.put(`Patient/${id}`, { resourceType: 'Patient', id, name: [{ family: id }] });
    await drA.put(`Observation/obs-${id}`, { resourceType: 'Observation', id: `obs-${id}`, status: 'final', code: { text: 'glucose' }, subject: { reference: `Patient/${id}` } });
  }
  await drA.put('Condition/cond-pat2', { resourceType: 'Condition', id: 'cond-pat2', code: { text: 'diabetes' }, subject: { reference: 'Patient/pat2' } });
});
afterAll(async () => server.close());

describe('denied access', () => {
  test('a read refused for want of consent leaves an AuditEvent with the refusal, findable by entity, agent and outcome', async () => {
    const res = await drB.get('Observation/obs-pat2', { 'X-Request-Id': 'denied-read' });
    expect(res.status).toBe(404);
    const [event] = await eventsOf('denied-read');
    expect(event.outcome).toBe('4');
    expect(references(event)).toEqual(expect.arrayContaining(['Practitioner/drB', 'Organization/hospB', 'Observation/obs-pat2']));
    const found = await root.get('AuditEvent?entity=Observation/obs-pat2&outcome=4&agent=Practitioner/drB&subtype=read');
    expect(found.body.entry.map((e: any) => requestIdOf(e.resource))).toContain('denied-read');
  });

  test('a refused write is audited too', async () => {
    const obs = (await drA.get('Observation/obs-pat1')).body;
    const res = await drB.put('Observation/obs-pat1', obs, { 'X-Request-Id': 'denied-write' });
    expect(res.status).toBe(403);
    const [event] = await eventsOf('denied-write');
    expect([event.outcome, event.action, event.subtype[0].code]).toEqual(['4', 'U', 'update']);
  });

  test('a refused read of the patient, or a search for their records, names them: the patient sees the attempt', async () => {
    expect((await drB.get('Patient/pat1', { 'X-Request-Id': 'denied-patient' })).status).toBe(404);
    const mine = await pat1.get('AuditEvent?patient=Patient/pat1&outcome=4&_count=100');
    expect(mine.body.entry.map((e: any) => requestIdOf(e.resource))).toContain('denied-patient');
    const search = await drB.get('Condition?patient=pat1&code:text=asthma', { 'X-Request-Id': 'empty-search' });
    expect(ids(search.body)).toEqual([]);
    const [event] = await eventsOf('empty-search');
    expect(references(event)).toContain('Patient/pat1');
    const listed = await pat1.get('AuditEvent?patient=pat1&subtype=search-type&_count=100');
    expect(listed.body.entry.map((e: any) => requestIdOf(e.resource))).toContain('empty-search');
  });
});

describe('break the glass', () => {
  test('a practitioner stating ETREAT sees the records without consent; the events are flagged BTG', async () => {
    const emergency = drB.withHeaders({ 'X-Purpose-Of-Use': 'ETREAT' });
    const read = await emergency.get('Observation/obs-pat2', { 'X-Request-Id': 'btg-read' });
    expect(read.status).toBe(200);
    const search = await emergency.get('Condition?subject=Patient/pat2', { 'X-Request-Id': 'btg-search' });
    expect(ids(search.body)).toEqual(['Condition/cond-pat2']);
    for (const requestId of ['btg-read', 'btg-search']) {
      const [event] = await eventsOf(requestId);
      expect(event.meta.security).toEqual([expect.objectContaining({ system: ACT_REASON, code: 'BTG' })]);
      expect(purposes(event)).toEqual(['ETREAT']);
      expect(references(event)).toEqual(expect.arrayContaining(['Practitioner/drB', 'Organization/hospB', 'Patient/pat2']));
    }
    // Emergency access is for reading: another institution's record stays unchangeable.
    const obs = read.body;
    expect((await emergency.put('Observation/obs-pat2', { ...obs, status: 'amended' })).status).toBe(403);
    // The next request without the emergency purpose is back under consent.
    expect((await drB.get('Observation/obs-pat2')).status).toBe(404);
  });

  test('flagged events are found with _security; ordinary ones and a patient stating ETREAT are not flagged', async () => {
    expect((await pat1.withHeaders({ 'X-Purpose-Of-Use': 'ETREAT' }).get('Observation', { 'X-Request-Id': 'patient-etreat' })).status).toBe(200);
    expect((await drA.get('Observation/obs-pat1', { 'X-Request-Id': 'ordinary' })).status).toBe(200);
    const flagged = await root.get(`AuditEvent?_security=${encodeURIComponent(BTG)}&_count=100`);
    const events = flagged.body.entry.map((e: any) => e.resource);
    expect(events.map(requestIdOf)).toEqual(expect.arrayContaining(['btg-read', 'btg-search']));
    expect(events.map(requestIdOf)).not.toEqual(expect.arrayContaining(['patient-etreat']));
    expect(events.map(requestIdOf)).not.toEqual(expect.arrayContaining(['ordinary']));
    for (const event of events) {
      expect(purposes(event)).toEqual(['ETREAT']);
      expect(references(event)).toContain('Practitioner/drB');
    }
    expect((await eventsOf('patient-etreat'))[0].meta?.security).toBeUndefined();
    expect((await eventsOf('ordinary'))[0].meta?.security).toBeUndefined();
  });

  test('the patient sees the emergency access in their own audit trail', async () => {
    const mine = await pat2.get(`AuditEvent?patient=pat2&_security=${encodeURIComponent(BTG)}&_count=100`);
    expect(mine.body.entry.map((e: any) => requestIdOf(e.resource))).toEqual(expect.arrayContaining(['btg-read', 'btg-search']));
  });
});

describe('a patient lists every access to their record', () => {
  beforeAll(async () => {
    expect((await pat1.post('Consent', consent('pat1', {
      actor: [actor('Organization/hospB')], purpose: [{ system: ACT_REASON, code: 'TREAT' }], class: resourceClass('Patient', 'Observation'),
    }))).status).toBe(201);
    expect((await drB.get('Observation/obs-pat1', { 'X-Request-Id': 'b-reads-pat1' })).status).toBe(200);
    // One search returning both patients: one AuditEvent per patient, each naming only its patient.
    expect(ids((await root.get('Patient?_count=10', { 'X-Request-Id': 'both-patients' })).body)).toEqual(['Patient/pat1', 'Patient/pat2']);
  });

  test('who looked, from which institution, and why', async () => {
    const mine = await pat1.get('AuditEvent?patient=pat1&_count=1000');
    expect(mine.status).toBe(200);
    const event = mine.body.entry.map((e: any) => e.resource).find((e: any) => requestIdOf(e) === 'b-reads-pat1');
    const user = event.agent.find((a: any) => a.who?.reference === 'Practitioner/drB');
    expect(user.purposeOfUse[0].coding[0]).toEqual({ system: ACT_REASON, code: 'TREAT' });
    expect(event.agent.find((a: any) => a.who?.reference === 'Organization/hospB')).toBeDefined();
    expect(event.entity.map((e: any) => e.what?.reference)).toContain('Observation/obs-pat1/_history/1');
    // The practitioner and the organization are directory resources the patient can read.
    expect((await pat1.get('Organization/hospB')).body.name).toBe('Hospital B');
    expect((await pat1.get('Practitioner/drB')).status).toBe(200);
  });

  test('only their own events: a multi-patient search is split, another patient\'s events are invisible', async () => {
    const mine = (await pat1.get('AuditEvent?_count=1000')).body.entry.map((e: any) => e.resource);
    expect(mine.length).toBeGreaterThan(5);
    for (const event of mine) {
      expect(references(event).filter((r: string) => r.startsWith('Patient/')).map((r: string) => r.split('/')[1])).toEqual(
        expect.arrayContaining(['pat1'])
      );
      expect(JSON.stringify(event)).not.toContain('Patient/pat2');
    }
    expect(mine.filter((e: any) => requestIdOf(e) === 'both-patients')).toHaveLength(1);
    expect((await eventsOf('both-patients')).map((e) => references(e).filter((r) => r.startsWith('Patient/')))).toEqual(
      expect.arrayContaining([['Patient/pat1'], ['Patient/pat2']])
    );
    expect((await pat1.get('AuditEvent?patient=pat2')).body.entry ?? []).toEqual([]);
    const theirs = (await eventsOf('btg-read'))[0];
    expect((await pat1.get(`AuditEvent/${theirs.id}`)).status).toBe(404);
  });

  test('with a patient/ scope too, and only AuditEvents: patient/AuditEvent.rs', async () => {
    const app = await hospitals.login('pat1', 'launch/patient patient/AuditEvent.rs');
    const mine = await app.get('AuditEvent?patient=pat1&_count=1000');
    expect(mine.body.entry.map((e: any) => requestIdOf(e.resource))).toContain('b-reads-pat1');
    // About pat2, pat1 sees only their own earlier request that named pat2 (they are its agent).
    const other = (await app.get('AuditEvent?patient=pat2')).body.entry ?? [];
    expect(other.map((e: any) => references(e.resource))).toEqual(other.map(() => expect.arrayContaining(['Patient/pat1', 'Patient/pat2'])));
    expect(other.every((e: any) => e.resource.agent.some((a: any) => a.requestor && a.who?.reference === 'Patient/pat1'))).toBe(true);
    expect((await app.get('Observation')).status).toBe(403);
  });

  test('AuditEvents are searchable by patient, agent, date, entity, type, subtype and outcome', async () => {
    const all: any[] = (await pat1.get('AuditEvent?patient=pat1&_count=1000')).body.entry.map((e: any) => e.resource);
    /** The search finds exactly the events that meet the criterion (the patient's own searches add events as we go). */
    const check = async (query: string, meets: (event: any) => boolean) => {
      const res = await pat1.get(`AuditEvent?patient=pat1&_count=1000&${query}`);
      expect([query, res.status]).toEqual([query, 200]);
      const found: any[] = (res.body.entry ?? []).map((e: any) => e.resource);
      expect([query, found.every(meets)]).toEqual([query, true]);
      const expected = all.filter(meets).map((e) => e.id);
      expect(found.map((e) => e.id)).toEqual(expect.arrayContaining(expected));
      return found;
    };
    expect((await check('agent=Practitioner/drB', (e) => references(e).includes('Practitioner/drB'))).length).toBeGreaterThan(0);
    expect((await check(`date=ge${started}`, (e) => e.recorded >= started)).length).toBeGreaterThanOrEqual(all.length);
    expect(await check('date=lt2000-01-01', () => false)).toEqual([]);
    const byEntity = await check('entity=Observation/obs-pat1', (e) => references(e).some((r: string) => r.startsWith('Observation/obs-pat1')));
    expect(byEntity.map(requestIdOf)).toContain('b-reads-pat1');
    await check('type=http://terminology.hl7.org/CodeSystem/audit-event-type|rest', (e) => e.type.code === 'rest');
    expect((await check('subtype=search-type', (e) => e.subtype[0].code === 'search-type')).length).toBeGreaterThan(0);
    expect((await check('subtype=read', (e) => e.subtype[0].code === 'read')).map(requestIdOf)).toContain('b-reads-pat1');
    expect((await check('outcome=4', (e) => e.outcome === '4')).map(requestIdOf)).toContain('denied-patient');
  });
});
