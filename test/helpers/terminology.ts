/**
 * Shared bits of the terminology tests: the fixture folder (loaded as a profile pack) and
 * readers for Parameters outputs.
 */
import path from 'node:path';

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
