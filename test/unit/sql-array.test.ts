/**
 * sql.array writes the array literals of the index rows itself (pg's own conversion runs two
 * regular expressions per element): PostgreSQL must read back exactly the values given, sent
 * as a parameter or inlined, and the text must be what pg would have sent.
 */
import pg from 'pg';
import { Database } from '../../src/store/database';
import { sql } from '../../src/store/sql';
import { createTestDatabase, dropTestDatabase } from '../helpers/server';

const prepareValue = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils.prepareValue;

let databaseUrl: string;
let db: Database;

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  db = new Database(databaseUrl, 1);
});

afterAll(async () => {
  await db.close();
  await dropTestDatabase(databaseUrl);
});

const strings = ['plain', '', 'NULL', 'with "quotes"', 'back\\slash', '\\"', 'a,b', '{braces}', ' spaced ', "it's", '王小明', 'line\nbreak', null];
const numbers = [0, -1, 2147483647, 1.5, -0.000123, 1e21, null];

test('the literal is the one pg sends for strings; numbers go unquoted', () => {
  expect(sql.array(strings)).toBe(prepareValue(strings));
  expect(sql.array(numbers)).toBe('{0,-1,2147483647,1.5,-0.000123,1e+21,NULL}');
  expect(sql.array([])).toBe('{}');
  expect(sql.array([undefined])).toBe('{NULL}');
});

test('PostgreSQL reads back the same values, as a parameter and inlined', async () => {
  const query = sql`SELECT ${sql.array(strings)}::text[] AS s, ${sql.array(numbers)}::numeric[] AS n, ${sql.array([7, -8, null])}::int4[] AS i`;
  const expected = { s: strings, n: [0, -1, 2147483647, 1.5, -0.000123, 1e21, null], i: [7, -8, null] };
  expect((await db.query(query)).rows[0]).toEqual(expected);
  const inlined = query.inline() as string;
  expect(inlined).not.toContain('$1');
  expect((await db.pool.query(inlined)).rows[0]).toEqual(expected);
});
