/**
 * Shared bits of the terminology tests: the fixture folder (loaded as a profile pack) and
 * readers for Parameters outputs.
 */
import path from 'node:path';
import { FhirTestClient } from './fhir-client';
import { startTestServer, type TestServer } from './server';

export const TERMINOLOGY_FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'terminology');

const valueOf = (p: any) => p && Object.entries(p).find(([k]) => k.startsWith('value'))?.[1];

/** The value of the first out parameter of that name (or the parameter itself when it has parts). */
export const out = (body: any, name: string) => {
  const p = body?.parameter?.find((x: any) => x.name === name);
  return p && (valueOf(p) ?? p);
};

/** Every out parameter of that name. */
export const all = (body: any, name: string): any[] => (body?.parameter ?? []).filter((p: any) => p.name === name);

/** The value of a part of a multi-part parameter. */
export const part = (p: any, name: string) => valueOf(p?.part?.find((q: any) => q.name === name));

export const params = (...parameter: object[]) => ({ resourceType: 'Parameters', parameter });

/** Starts a server with the terminology fixtures as its profile pack. */
export async function startTerminologyServer(env: Record<string, string> = {}): Promise<{ server: TestServer; client: FhirTestClient }> {
  const server = await startTestServer({ PROFILES_DIR: TERMINOLOGY_FIXTURES, ...env });
  return { server, client: server.client() };
}
