/**
 * Index extraction skips the parameters whose elements are all absent from the resource
 * (search/extract.ts). Skipping must never change the rows: for every resource below, the
 * rows equal those of evaluating every parameter.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { patientRecord } from '../../bench/data/generator';
import { loadDefinitions } from '../../src/fhir/definitions';
import { extractRows } from '../../src/search/extract';
import { indexedParamsOf } from '../../src/search/registry';

const BASE_URL = 'http://localhost:8080/fhir';
const EXAMPLES = path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'r4-examples');
const SYNTHEA = path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'synthea-r4');

beforeAll(() => loadDefinitions());

/** The resource and everything contained in it, or in it as a Bundle entry. */
function withNested(resource: Resource): Resource[] {
  const nested = resource.resourceType === 'Bundle' ? ((resource as Bundle).entry ?? []).flatMap((e) => (e.resource ? withNested(e.resource) : [])) : [];
  return [resource, ...nested];
}

function expectSameRows(resources: Resource[]): number {
  let rows = 0;
  for (const resource of resources) {
    const skipping = extractRows(resource, '00000000-0000-0000-0000-000000000001', BASE_URL);
    const every = extractRows(resource, '00000000-0000-0000-0000-000000000001', BASE_URL, undefined, true);
    expect({ id: `${resource.resourceType}/${resource.id}`, rows: skipping }).toEqual({ id: `${resource.resourceType}/${resource.id}`, rows: every });
    rows += Object.values(every).reduce((n, table) => n + table.length, 0);
  }
  return rows;
}

test('the benchmark generator’s national records', () => {
  const resources = Array.from({ length: 5 }, (_, i) => patientRecord(1, i).bundle.entry!.map((e) => e.resource as Resource)).flat();
  expect(resources.length).toBeGreaterThan(300);
  expect(expectSameRows(resources)).toBeGreaterThan(3000);
});

test('a choice element and a primitive known only by its extension are found', () => {
  const observation = {
    resourceType: 'Observation',
    id: 'o1',
    status: 'final',
    code: { text: 'x' },
    valueQuantity: { value: 5, unit: 'mg' },
    _effectiveDateTime: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] },
  } as Resource;
  const rows = extractRows(observation, '00000000-0000-0000-0000-000000000001', BASE_URL);
  expect(rows.quantity.map((r) => r[2])).toContain(5);
  expect(expectSameRows([observation])).toBeGreaterThan(0);
  // Parameters that are really skipped: the roots are known for most of Observation's.
  const known = indexedParamsOf('Observation').filter((p) => p.roots);
  expect(known.length).toBeGreaterThan(30);
  expect(known.find((p) => p.code === 'value-quantity')?.roots).toEqual(['value']);
});

describe('official R4 examples (../shared/data/r4-examples)', () => {
  if (!fs.existsSync(EXAMPLES)) {
    test.skip('skipped: ../shared/data/r4-examples is absent in this checkout', () => undefined);
    return;
  }
  test('every example, with its contained and bundled resources', () => {
    const resources = fs
      .readdirSync(EXAMPLES)
      .filter((f) => f.endsWith('.json'))
      .flatMap((f) => withNested(JSON.parse(fs.readFileSync(path.join(EXAMPLES, f), 'utf8')) as Resource));
    expect(resources.length).toBeGreaterThan(700);
    expect(expectSameRows(resources)).toBeGreaterThan(5000);
  });
});

describe('Synthea records (../shared/data/synthea-r4)', () => {
  if (!fs.existsSync(SYNTHEA)) {
    test.skip('skipped: ../shared/data/synthea-r4 is absent in this checkout', () => undefined);
    return;
  }
  test('five patients’ records', () => {
    const files = fs.readdirSync(SYNTHEA).filter((f) => f.endsWith('.json') && !/Information/.test(f)).slice(0, 5);
    const resources = files.flatMap((f) => withNested(JSON.parse(fs.readFileSync(path.join(SYNTHEA, f), 'utf8')) as Resource)).filter((r) => r.resourceType !== 'Bundle');
    expect(resources.length).toBeGreaterThan(200);
    expect(expectSameRows(resources)).toBeGreaterThan(2000);
  });
});
