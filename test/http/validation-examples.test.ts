/**
 * The official R4 examples (../shared/data/r4-examples, 712 resources of 126 types) must pass
 * base validation: no error-level issue. The few official examples that break a rule of R4
 * itself are listed below with the rule; each was checked by hand against the R4
 * definitions (the HL7 validator reports the same errors).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Resource } from '@medplum/fhirtypes';
import { startTestServer, type TestServer } from '../helpers/server';

const EXAMPLES = path.resolve(__dirname, '..', '..', '..', 'shared', 'data', 'r4-examples');

/** Official examples that are invalid R4, and why. */
const KNOWN_INVALID: Record<string, RegExp> = {
  // DeviceMetric.parent is Reference(Device); the example points to a DeviceDefinition.
  'DeviceMetric-example.json': /DeviceMetric.parent may refer to Device, not to DeviceDefinition/,
  // DeviceUseStatement.reasonReference allows Condition, Observation, DiagnosticReport, DocumentReference, Media; not Procedure.
  'DeviceUseStatement-example.json': /reasonReference may refer to .*, not to Procedure/,
  // MedicationRequest.dispenseRequest.performer is Reference(Organization); the example names a Practitioner.
  'MedicationRequest-medrx0301.json': /dispenseRequest.performer may refer to Organization, not to Practitioner/,
  // Observation.performer does not allow Encounter.
  'Observation-clinical-gender.json': /Observation.performer may refer to .*, not to Encounter/,
  // Questionnaire.item.linkId is 1..1; nested items of this example have none.
  'Questionnaire-qs1.json': /Questionnaire.item.linkId: minimum required = 1, but only found 0/,
};

/** Files of the folder that are not examples. */
const NOT_EXAMPLES = new Set(['package.json']);

describe('official R4 examples (../shared/data/r4-examples)', () => {
  if (!fs.existsSync(EXAMPLES)) {
    test.skip('skipped: ../shared/data/r4-examples is absent in this checkout', () => undefined);
    return;
  }

  let server: TestServer;
  beforeAll(async () => {
    // The R4 base only: no profile pack.
    server = await startTestServer({ PROFILES_DIR: path.join(EXAMPLES, 'no-profile-pack-here') });
  }, 180_000);
  afterAll(async () => {
    await server?.close();
  });

  test('every example passes base validation, except the known-invalid ones, which fail for their known reason', async () => {
    const files = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.json') && !NOT_EXAMPLES.has(f)).sort();
    expect(files.length).toBeGreaterThanOrEqual(712);
    const failures: Record<string, string[]> = {};
    for (const file of files) {
      const resource = JSON.parse(fs.readFileSync(path.join(EXAMPLES, file), 'utf8')) as Resource;
      const issues = await server.services.validator.validate(resource, { mode: 'create' });
      const errors = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
      if (errors.length) failures[file] = errors.map((i) => `${i.expression?.[0]}: ${i.diagnostics}`);
    }
    expect(Object.keys(failures).sort()).toEqual(Object.keys(KNOWN_INVALID).sort());
    for (const [file, reason] of Object.entries(KNOWN_INVALID)) {
      expect(failures[file].every((text) => reason.test(text))).toBe(true);
    }
  }, 120_000);

  test('a sample of examples (one of each type) is accepted over HTTP as well', async () => {
    const client = server.client();
    const seen = new Set<string>();
    for (const file of fs.readdirSync(EXAMPLES).sort()) {
      const type = file.split('-')[0];
      if (seen.has(type) || NOT_EXAMPLES.has(file) || KNOWN_INVALID[file] || type === 'Bundle' || type === 'Parameters') continue;
      seen.add(type);
      const resource = JSON.parse(fs.readFileSync(path.join(EXAMPLES, file), 'utf8'));
      const res = await client.post(resource.resourceType, resource);
      expect({ file, status: res.status < 300 ? 'ok' : res.status, issue: res.status < 300 ? undefined : res.body.issue }).toEqual({ file, status: 'ok', issue: undefined });
    }
    expect(seen.size).toBeGreaterThan(100);
  }, 120_000);
});
