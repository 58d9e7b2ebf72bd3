/**
 * Fixtures created under a key, and searches answered with those keys, so a search test reads
 * as the data it set up: expect(await search('Patient?name=x')).toEqual(['p1']).
 */
import type { FhirTestClient } from './fhir-client';

export function keyedFixtures(client: () => FhirTestClient) {
  const ids: Record<string, string> = {};

  async function create(key: string, resource: Record<string, unknown>) {
    const res = await client().post(resource.resourceType as string, resource);
    if (res.status !== 201) throw new Error(`${key}: ${res.status} ${JSON.stringify(res.body)}`);
    ids[key] = res.body.id;
    return res.body;
  }

  /** The ids (by fixture key) a search returns as matches, sorted. */
  async function search(query: string, headers?: Record<string, string>): Promise<string[]> {
    const res = await client().get(query, headers);
    if (res.status !== 200) throw new Error(`${query}: ${res.status} ${JSON.stringify(res.body.issue)}`);
    const byId = new Map(Object.entries(ids).map(([k, v]) => [v, k]));
    return (
      res.body.entry
        ?.filter((e: any) => e.search.mode === 'match')
        .map((e: any) => byId.get(e.resource.id) ?? e.resource.id)
        .sort() ?? []
    );
  }

  return { ids, create, search };
}
