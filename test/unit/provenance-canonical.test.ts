/**
 * RFC 8785 (JCS) against the RFC's own examples, the canonical forms signatures cover, the
 * detached JWS format, and the stable choice of chain.
 */
import { generateKeyPair } from 'jose';
import { canonicalize, clientForm, serverForm, sha256, statementOf, type SignedVersion } from '../../src/provenance/canonical';
import { parseSignatureData, signDetached, toSignatureData, verifyDetached } from '../../src/provenance/jws';
import { chainOf } from '../../src/provenance/writer';

describe('RFC 8785', () => {
  test('3.2.2: literals, numbers and string escapes', () => {
    const input = JSON.parse(
      String.raw`{
        "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
        "literals": [null, true, false]
      }`
    );
    expect(canonicalize(input)).toBe(String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`);
  });

  test('3.2.3: properties sorted by UTF-16 code units, not by insertion or as integers', () => {
    const input = JSON.parse(
      String.raw`{
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\ud83d\ude00": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis"
      }`
    );
    const values = Object.values(JSON.parse(canonicalize(input)) as Record<string, string>);
    const order = [...canonicalize(input).matchAll(/"([^"]+)":"([^"]+)"/g)].map((m) => m[2]);
    expect(order).toEqual([
      'Carriage Return',
      'One',
      'Control',
      'Latin Small Letter O With Diaeresis',
      'Euro Sign',
      'Emoji: Grinning Face',
      'Hebrew Letter Dalet With Dagesh',
    ]);
    expect(values).toHaveLength(7);
    // Non-ASCII stays as is (UTF-8 on the wire), control characters are escaped in lower case.
    expect(canonicalize({ a: '\u20ac\u0080\u001f' })).toBe('{"a":"€\u0080\\u001f"}');
  });

  test('appendix B: IEEE 754 doubles in ECMAScript form', () => {
    const cases: [string, string][] = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [hex, text] of cases) {
      expect([hex, canonicalize(Buffer.from(hex, 'hex').readDoubleBE(0))]).toEqual([hex, text]);
    }
    for (const hex of ['7fffffffffffffff', '7ff0000000000000']) {
      expect(() => canonicalize(Buffer.from(hex, 'hex').readDoubleBE(0))).toThrow();
    }
  });

  test('no canonical form for lone surrogates; undefined members are absent as in JSON', () => {
    expect(() => canonicalize({ a: '\ud800' })).toThrow(/lone surrogate/);
    expect(canonicalize({ b: undefined, a: [undefined, 1] })).toBe('{"a":[null,1]}');
    expect(canonicalize({ a: '\ud83d\ude00' })).toBe('{"a":"😀"}');
  });
});

describe('signed forms', () => {
  const content = {
    resourceType: 'Patient',
    id: 'p1',
    meta: { versionId: '2', lastUpdated: '2024-01-02T03:04:05.678Z', source: 'urn:app', tag: [{ code: 't' }] },
    name: [{ family: 'X' }],
  } as any;
  const version: SignedVersion = { resourceType: 'Patient', id: 'p1', versionId: '2', lastUpdated: content.meta.lastUpdated, content, method: 'PUT' };

  test('the server signs the whole stored version', () => {
    expect(serverForm(version)).toBe(canonicalize(content));
    expect(serverForm({ ...version, content: undefined, method: 'DELETE', versionId: '3' })).toBe(
      '{"request":{"method":"DELETE","url":"Patient/p1"},"response":{"etag":"W/\\"3\\"","lastModified":"2024-01-02T03:04:05.678Z"}}'
    );
  });

  test('a client signs it without server-assigned parts (and without the id of a POST create)', () => {
    expect(clientForm(version)).toBe('{"id":"p1","meta":{"tag":[{"code":"t"}]},"name":[{"family":"X"}],"resourceType":"Patient"}');
    expect(clientForm({ ...version, method: 'POST', content: { ...content, meta: { versionId: '1', lastUpdated: 'x' } } })).toBe(
      '{"name":[{"family":"X"}],"resourceType":"Patient"}'
    );
    expect(clientForm({ ...version, content: undefined, method: 'DELETE' })).toBeUndefined();
  });

  test('the statement of a Provenance leaves out meta and the server signature', () => {
    const provenance = { resourceType: 'Provenance', id: 'x', meta: { versionId: '1' }, recorded: 'r', signature: [{ data: 'a' }, { data: 'server' }] } as any;
    expect(statementOf(provenance, 1)).toBe('{"id":"x","recorded":"r","resourceType":"Provenance","signature":[{"data":"a"}]}');
    expect(statementOf({ ...provenance, signature: [{ data: 'server' }] }, 0)).toBe('{"id":"x","recorded":"r","resourceType":"Provenance"}');
  });
});

describe('detached JWS', () => {
  test('signs with node:crypto what jose verifies; tampering and format errors are told apart', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const compact = signDetached(privateKey, { alg: 'ES256', kid: 'k' }, '{"a":1}');
    expect(compact.split('.')[1]).toBe('');
    const parsed = parseSignatureData(toSignatureData(compact));
    if (typeof parsed === 'string') throw new Error(parsed);
    expect(parsed.header).toEqual({ alg: 'ES256', kid: 'k' });
    expect(await verifyDetached(parsed, '{"a":1}', publicKey, ['ES256'])).toBe(true);
    expect(await verifyDetached(parsed, '{"a":2}', publicKey, ['ES256'])).toBe(false);
    expect(await verifyDetached(parsed, '{"a":1}', publicKey, ['RS256'])).toBe(false);
    expect(parseSignatureData(undefined)).toMatch(/no data/);
    expect(parseSignatureData(Buffer.from('a.b.c').toString('base64'))).toMatch(/detached payload/);
    expect(parseSignatureData(Buffer.from('nonsense').toString('base64'))).toMatch(/not a JWS/);
    expect(sha256('')).toBe('47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU');
  });
});

test('the chain of a write follows its patient, else its resource, and never changes', () => {
  const a = chainOf({ resourceType: 'Observation', id: 'o1', compartments: ['p1'] }, 64);
  expect(chainOf({ resourceType: 'Condition', id: 'c9', compartments: ['p1', 'p2'] }, 64)).toBe(a);
  expect(chainOf({ resourceType: 'Patient', id: 'p1', compartments: ['p1'] }, 64)).toBe(a);
  const spread = new Set(Array.from({ length: 200 }, (_, i) => chainOf({ resourceType: 'Basic', id: `b${i}`, compartments: [] }, 64)));
  expect(spread.size).toBeGreaterThan(40);
  // A fixed function of the key: the same key gives the same chain in every process and release.
  expect(chainOf({ resourceType: 'Organization', id: 'org1', compartments: [] }, 64)).toBe(
    require('node:crypto').createHash('sha256').update('Organization/org1').digest().readUInt32BE(0) % 64
  );
});
