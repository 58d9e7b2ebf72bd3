/**
 * The terminology core without a server: code system compilation (case rules, hierarchy),
 * filters (regex safety), and three-valued value set membership.
 */
import type { CodeSystem, ValueSet } from '@medplum/fhirtypes';
import { CompiledCodeSystem } from '../../src/terminology/code-system';
import { compileFilter, compileSafeRegex } from '../../src/terminology/filters';
import { linkValueSet, type LinkContext } from '../../src/terminology/value-set';

const cs = (extra: Partial<CodeSystem> = {}) =>
  new CompiledCodeSystem({
    resourceType: 'CodeSystem',
    url: 'urn:cs',
    status: 'active',
    content: 'complete',
    concept: [
      { code: 'Root', concept: [{ code: 'Mid', concept: [{ code: 'Leaf' }] }] },
      { code: 'Side', property: [{ code: 'parent', valueCode: 'Mid' }] },
      { code: 'Loop', property: [{ code: 'parent', valueCode: 'Loop' }] },
    ],
    ...extra,
  } as CodeSystem);

describe('CompiledCodeSystem', () => {
  test('case: sensitive refuses other case, insensitive and unspecified accept it', () => {
    expect(cs({ caseSensitive: true }).get('leaf')).toBeUndefined();
    expect(cs({ caseSensitive: false }).get('leaf')?.code).toBe('Leaf');
    expect(cs().get('LEAF')?.code).toBe('Leaf');
    expect(cs({ caseSensitive: true }).get('Leaf')?.code).toBe('Leaf');
  });

  test('hierarchy from nesting and parent properties; self-parent does not loop', () => {
    const c = cs();
    const [root, mid, leaf, side, loop] = ['Root', 'Mid', 'Leaf', 'Side', 'Loop'].map((code) => c.get(code)!);
    expect(c.isA(leaf, root)).toBe(true);
    expect(c.isA(side, root)).toBe(true);
    expect(c.isA(root, leaf)).toBe(false);
    expect([...c.descendants(mid)].map((e) => e.code).sort()).toEqual(['Leaf', 'Side']);
    expect(c.ancestors(loop).size).toBe(0);
    expect(c.propertyValues(side, 'parent')).toEqual(['Mid']);
    expect(c.propertyValues(mid, 'child').sort()).toEqual(['Leaf', 'Side']);
  });
});

describe('filters', () => {
  test('regexes that can backtrack catastrophically are refused, others are anchored', () => {
    expect(typeof compileSafeRegex('(a+)+$')).toBe('string');
    expect(typeof compileSafeRegex('(a|aa)*b')).toBe('string');
    expect(typeof compileSafeRegex('(x)\\1')).toBe('string');
    expect(typeof compileSafeRegex('[')).toBe('string');
    expect(typeof compileSafeRegex('((?:a)+)*')).toBe('string');
    expect(compileSafeRegex('(?:ab)*c')).toBeInstanceOf(RegExp);
    const ok = compileSafeRegex('[A-Z]{2}\\d*');
    expect(ok).toBeInstanceOf(RegExp);
    expect((ok as RegExp).test('AB12')).toBe(true);
    expect((ok as RegExp).test('xAB12')).toBe(false);
  });

  test('unknown property or operator: unavailable with a reason, never a guess', () => {
    const c = cs();
    expect(compileFilter(c, { property: 'colour', op: '=', value: 'red' }).unavailable).toMatch(/colour/);
    expect(compileFilter(c, { property: 'concept', op: 'exists' as never, value: 'x' }).unavailable).toMatch(/exists/);
    const gen = compileFilter(c, { property: 'concept', op: 'generalizes', value: 'Leaf' });
    expect(c.concepts.filter((e) => gen.test(e)).map((e) => e.code)).toEqual(['Root', 'Mid', 'Leaf']);
  });
});

describe('value set membership is three-valued', () => {
  const known = cs({ url: 'urn:known' });
  const ctx: LinkContext = {
    async codeSystem(system) {
      if (system === 'urn:known') return { cs: known, pure: true };
      return { missing: `${system} is not here`, pure: true };
    },
    async valueSet(url) {
      return { missing: `${url} is not here`, pure: true };
    },
  };
  const link = (compose: ValueSet['compose']) => linkValueSet({ resourceType: 'ValueSet', status: 'active', url: 'urn:vs', compose }, ctx, 100, { builtin: true });

  test('a decidable include answers even when another include is undecidable; expansion is refused', async () => {
    const vs = await link({
      include: [
        { system: 'urn:known', filter: [{ property: 'concept', op: 'is-a', value: 'Mid' }] },
        { system: 'urn:external', filter: [{ property: 'concept', op: 'is-a', value: '123' }] },
      ],
    });
    expect(vs.lookup('urn:known', 'Leaf').result).toBe(true);
    expect(vs.lookup('urn:known', 'Root').result).toBe(false);
    expect(vs.lookup('urn:external', '456').result).toBeUndefined();
    expect(() => vs.expansion()).toThrow(/urn:external/);
  });

  test('an undecidable exclude makes members undecidable, unless it concerns another system', async () => {
    const vs = await link({
      include: [{ system: 'urn:known' }, { system: 'urn:external', concept: [{ code: 'e1' }] }],
      exclude: [{ system: 'urn:external', filter: [{ property: 'concept', op: 'is-a', value: 'x' }] }],
    });
    expect(vs.lookup('urn:known', 'Leaf').result).toBe(true);
    expect(vs.lookup('urn:external', 'e1').result).toBeUndefined();
    expect(() => vs.expansion()).toThrow(/not here/);
  });

  test('an unresolved import leaves its include undecided; the size limit is too-costly', async () => {
    const vs = await link({ include: [{ valueSet: ['urn:missing'] }] });
    expect(vs.lookup('urn:known', 'Leaf')).toMatchObject({ result: undefined, message: expect.stringMatching(/urn:missing/) });
    const big = await linkValueSet({ resourceType: 'ValueSet', status: 'active', compose: { include: [{ system: 'urn:known' }] } }, ctx, 2, { builtin: true });
    expect(() => big.expansion()).toThrow(/more than 2 codes/);
  });
});
