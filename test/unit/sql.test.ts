import { sql, usePreparedStatements } from '../../src/store/sql';
import { parseInstantRange } from '../../src/fhir/params';
import { parsePrefer, responseMediaType } from '../../src/http/negotiation';

describe('sql builder', () => {
  test('values become numbered placeholders, nested fragments are renumbered', () => {
    const inner = sql`b = ${2} AND c = ${'x'}`;
    const q = sql`SELECT * FROM t WHERE a = ${1} AND ${inner} AND d = ${[4]}`.toQuery();
    expect(q.text).toBe('SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $3 AND d = $4');
    expect(q.values).toEqual([1, 2, 'x', [4]]);
  });

  test('join, and, or, ident', () => {
    const parts = [sql`x = ${1}`, sql`y = ${2}`];
    expect(sql.and(parts).text).toBe('(x = $1 AND y = $2)');
    expect(sql.or(parts).text).toBe('(x = $1 OR y = $2)');
    expect(sql.and([]).text).toBe('TRUE');
    expect(sql.or([]).text).toBe('FALSE');
    expect(sql`SELECT ${sql.ident('we"ird')}`.text).toBe('SELECT "we""ird"');
  });

  test('a value that looks like SQL stays a value', () => {
    const q = sql`SELECT ${"'; DROP TABLE resource; --"}`.toQuery();
    expect(q.text).toBe('SELECT $1');
  });

  test('a prepared statement is named by its label and text, its values stay parameters', () => {
    const read = (rid: string, filter = sql`TRUE`) => sql`SELECT content FROM resource WHERE rid = ${rid} AND ${filter}`.prepared('read');
    const a = read('a').toQuery();
    const b = read('b').toQuery();
    expect(a.name).toMatch(/^read_[A-Za-z0-9_-]{16}$/);
    // One name for one text, whatever the values; another text gets another name.
    expect(b.name).toBe(a.name);
    expect(b.values).toEqual(['b']);
    const filtered = read('a', sql`compartments && ${['p1']}::text[]`).toQuery();
    expect(filtered.name).not.toBe(a.name);
    expect(filtered.values).toEqual(['a', ['p1']]);
    // Unprepared statements stay unnamed.
    expect(sql`SELECT 1`.toQuery().name).toBeUndefined();
  });

  test('inline gives up on values longer than its limit without rendering them', () => {
    const q = sql`INSERT INTO t SELECT * FROM jsonb_to_recordset(${'x'.repeat(100)}::jsonb) WHERE ${sql`a = ${"it's"}`}`;
    expect(q.inline(50)).toBeUndefined();
    expect(q.inline(1000)).toBe(`INSERT INTO t SELECT * FROM jsonb_to_recordset(E'${'x'.repeat(100)}'::jsonb) WHERE a = E'it''s'`);
    expect(q.inline()).toBe(q.inline(1000));
  });

  test('DB_PREPARED_STATEMENTS=false runs every statement unnamed', () => {
    usePreparedStatements(false);
    try {
      expect(sql`SELECT ${1}`.prepared('off').toQuery().name).toBeUndefined();
    } finally {
      usePreparedStatements(true);
    }
    expect(sql`SELECT ${1}`.prepared('off').toQuery().name).toMatch(/^off_/);
  });
});

describe('FHIR date parameters as instant ranges', () => {
  test.each([
    ['2020', '2020-01-01T00:00:00.000Z', '2020-12-31T23:59:59.999Z'],
    ['2020-02', '2020-02-01T00:00:00.000Z', '2020-02-29T23:59:59.999Z'],
    ['2020-02-03', '2020-02-03T00:00:00.000Z', '2020-02-03T23:59:59.999Z'],
    ['2020-02-03T10:15', '2020-02-03T10:15:00.000Z', '2020-02-03T10:15:59.999Z'],
    ['2020-02-03T10:15:30+08:00', '2020-02-03T02:15:30.000Z', '2020-02-03T02:15:30.999Z'],
    ['2020-02-03T10:15:30.250Z', '2020-02-03T10:15:30.250Z', '2020-02-03T10:15:30.250Z'],
  ])('%s', (value, start, end) => {
    expect(parseInstantRange(value, '_since')).toEqual({ start, end });
  });

  test.each(['yesterday', '2020-13', '2020-02-30', '2020-02-03T25:00', '20200203'])('rejects %s', (value) => {
    expect(() => parseInstantRange(value, '_since')).toThrow(/_since/);
  });
});

describe('negotiation', () => {
  test('Prefer header', () => {
    expect(parsePrefer('return=minimal')).toEqual({ return: 'minimal' });
    expect(parsePrefer('return=representation, handling=strict')).toEqual({ return: 'representation', handling: 'strict' });
    expect(parsePrefer('respond-async')).toEqual({});
  });

  test('Accept quality values are honoured', () => {
    expect(responseMediaType(undefined, 'application/fhir+xml;q=0.9, application/json;q=0.5')).toBe('application/json');
    expect(responseMediaType(undefined, 'application/json;q=0.1, application/fhir+json')).toBe('application/fhir+json');
    expect(() => responseMediaType(undefined, 'application/fhir+xml')).toThrow(/XML/);
  });
});
