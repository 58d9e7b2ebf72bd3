/**
 * Two hospitals sharing one server: Organizations hospA and hospB, a practitioner user of
 * each (drA, drB), a patient user, and one app registered for the purposes of use TREAT,
 * HOPERAT and ETREAT, with user tokens obtained through the real authorization-code flow.
 */
import type { FhirTestClient, HttpResult } from './fhir-client';
import type { TestServer } from './server';
import { launchToken, registerClient, registerUser } from './smart';

export const REDIRECT = 'http://127.0.0.1:9/cb';
export const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
export const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
export const CONFIDENTIALITY = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';

export interface Hospitals {
  app: string;
  /** Logs a user in through the app and returns a client sending their token. */
  login(username: string, scope?: string): Promise<FhirTestClient>;
}

export async function setUpHospitals(server: TestServer, patients: string[]): Promise<Hospitals> {
  const root = server.client();
  for (const org of ['hospA', 'hospB']) {
    await root.put(`Organization/${org}`, { resourceType: 'Organization', id: org, name: org === 'hospA' ? 'Hospital A' : 'Hospital B' });
  }
  for (const [id, org] of [['drA', 'hospA'], ['drB', 'hospB'], ['drB2', 'hospB']]) {
    await root.put(`Practitioner/${id}`, { resourceType: 'Practitioner', id, name: [{ family: id }] });
    await registerUser(server, { username: id, password: `${id}-password`, fhirUser: `Practitioner/${id}`, organization: org });
  }
  for (const id of patients) {
    await registerUser(server, { username: id, password: `${id}-password`, fhirUser: `Patient/${id}` });
  }
  const app = (
    await registerClient(server, {
      name: 'Hospital app',
      type: 'public',
      redirectUris: [REDIRECT],
      scopes: ['launch/patient', 'openid', 'fhirUser', 'user/*.cruds', 'patient/*.rs'],
      purposeOfUse: ['TREAT', 'HOPERAT', 'ETREAT'],
    })
  ).clientId;
  return {
    app,
    async login(username, scope = 'user/*.cruds') {
      const res = await launchToken(server, { clientId: app, redirectUri: REDIRECT, scope, username, password: `${username}-password` });
      if (res.status !== 200) throw new Error(`login of ${username}: ${JSON.stringify(res.body)}`);
      return server.client(res.body.access_token);
    },
  };
}

/** "Type/id" of the resources of a searchset or history Bundle (outcome entries left out), sorted. */
/**
 * The Provenances in a bundle, as the versions they record: a hospital sees the Provenance of
 * its own writes (it is their custodian), never one of a record it may not see.
 */
export function provenanceTargets(bundle: any): string[] {
  return (bundle.entry ?? [])
    .filter((e: any) => e.resource?.resourceType === 'Provenance')
    .flatMap((e: any) => e.resource.target.map((t: any) => t.reference))
    .sort();
}

/** The non-Provenance resources of a bundle (see provenanceTargets for the others). */
export function recordIds(bundle: any): string[] {
  return ids(bundle).filter((id) => !id.startsWith('Provenance/'));
}

export function ids(bundle: any): string[] {
  return (bundle.entry ?? [])
    .filter((e: any) => e.resource && e.resource.resourceType !== 'OperationOutcome')
    .map((e: any) => `${e.resource.resourceType}/${e.resource.id}`)
    .sort();
}

/** Every page of a search, following next links. */
export async function allPages(client: FhirTestClient, path: string): Promise<{ ids: string[]; pages: number }> {
  const found: string[] = [];
  let url: string | undefined = path;
  let pages = 0;
  while (url) {
    const res: HttpResult = await client.get(url);
    if (res.status !== 200) throw new Error(`${url}: ${res.status} ${res.text}`);
    found.push(...ids(res.body));
    pages++;
    url = res.body.link?.find((l: any) => l.relation === 'next')?.url;
  }
  return { ids: found.sort(), pages };
}

export function consent(patient: string, provision: Record<string, unknown>, status = 'active') {
  return {
    resourceType: 'Consent',
    status,
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: `Patient/${patient}` },
    policyRule: { coding: [{ system: ACT_CODE, code: 'OPTIN' }] },
    provision,
  };
}

export const actor = (reference: string) => ({
  role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] },
  reference: { reference },
});

export const resourceClass = (...types: string[]) => types.map((code) => ({ system: 'http://hl7.org/fhir/resource-types', code }));
