/**
 * Write transactions with BEGIN deferred: a transaction that only queues rows is committed as
 * one statement (all or nothing), one that reads first is a real transaction, and a throw
 * undoes everything either way.
 */
import type { Resource } from '@medplum/fhirtypes';
import { Database } from '../../src/store/database';
import { ridOf } from '../../src/store/rid';
import { sql, usePreparedStatements } from '../../src/store/sql';
import { runWriteTransaction, type ResourceRow } from '../../src/store/write-tx';
import type { ResourceIndexer } from '../../src/services';
import { createTestDatabase, dropTestDatabase } from '../helpers/server';

let databaseUrl: string;
let db: Database;
const statements: string[] = [];
/** The same messages, whole (whitespace collapsed). */
const messages: string[] = [];
/** The prepared statement name of each message, if it had one. */
const names: (string | undefined)[] = [];
const noIndex: ResourceIndexer = { index: async () => undefined, statements: () => [] };

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  db = new Database(databaseUrl, 2);
  // Every statement the pool's connections send, in order.
  db.pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text;
      statements.push(text.trim().split(/\s+/).slice(0, 3).join(' '));
      messages.push(text.trim().replace(/\s+/g, ' '));
      names.push(typeof args[0] === 'string' ? undefined : (args[0] as { name?: string }).name);
      return query(...args);
    };
  });
});

afterAll(async () => {
  await db.close();
  await dropTestDatabase(databaseUrl);
});

function row(id: string): ResourceRow {
  const content = { resourceType: 'Basic', id, code: { text: 'x' } } as Resource;
  return {
    rid: ridOf('Basic', id),
    resource_type: 'Basic',
    id,
    version_id: 1,
    last_updated: new Date().toISOString(),
    deleted: false,
    content,
    compartments: [],
    custodian: null,
    method: 'POST',
  };
}

async function stored(id: string): Promise<boolean> {
  const result = await db.pool.query('SELECT 1 FROM resource WHERE rid = $1', [ridOf('Basic', id)]);
  return result.rowCount === 1;
}

test('a transaction that only queues writes is one statement without BEGIN or COMMIT', async () => {
  statements.length = 0;
  await runWriteTransaction(db, noIndex, async (tx) => {
    tx.queueCreate(row('q1'));
    tx.queueCreate(row('q1b'));
  });
  expect(statements).toEqual(['INSERT INTO resource']);
  expect(await stored('q1')).toBe(true);
});

test('the single statement is all or nothing', async () => {
  await expect(
    runWriteTransaction(db, noIndex, async (tx) => {
      tx.queueCreate(row('q2'));
      // The same key twice: the second insert fails, so the first must not stay either.
      tx.queueStatement(sql`INSERT INTO resource (rid, resource_type, id, version_id, last_updated, content, method)
                            VALUES (${ridOf('Basic', 'q1')}, 'Basic', 'q1', 1, now(), '{}', 'POST')`);
    })
  ).rejects.toThrow(/duplicate key/);
  expect(await stored('q2')).toBe(false);
});

test('a transaction that reads first begins, commits, and rolls back on a throw', async () => {
  messages.length = 0;
  names.length = 0;
  await runWriteTransaction(db, noIndex, async (tx) => {
    await tx.query(sql`SELECT 1`);
    tx.queueCreate(row('q3'));
  });
  // BEGIN travels with the first statement; the last is a prepared statement, then COMMIT.
  expect(messages).toHaveLength(3);
  expect(messages[0]).toBe('BEGIN ISOLATION LEVEL READ COMMITTED; SELECT 1');
  expect(messages[1]).toMatch(/^INSERT INTO resource .*\$1::jsonb/);
  expect(names[1]).toMatch(/^write_/);
  expect(messages[2]).toBe('COMMIT');
  expect(await stored('q3')).toBe(true);

  // Without prepared statements (a pooler in transaction mode), the last statement is inlined
  // and carries COMMIT: two round trips.
  usePreparedStatements(false);
  try {
    messages.length = 0;
    await runWriteTransaction(db, noIndex, async (tx) => {
      await tx.query(sql`SELECT 1`);
      tx.queueCreate(row('q3b'));
    });
  } finally {
    usePreparedStatements(true);
  }
  expect(messages).toHaveLength(2);
  expect(messages[1]).toMatch(/^INSERT INTO resource .*; COMMIT$/);
  expect(await stored('q3b')).toBe(true);

  await expect(
    runWriteTransaction(db, noIndex, async (tx) => {
      tx.queueCreate(row('q4'));
      await tx.query(sql`SELECT 1`);
      throw new Error('refused after writing');
    })
  ).rejects.toThrow('refused after writing');
  expect(await stored('q4')).toBe(false);
});

test('using the connection directly begins the transaction first', async () => {
  statements.length = 0;
  await expect(
    runWriteTransaction(db, noIndex, async (tx) => {
      await tx.client.query(`INSERT INTO resource (rid, resource_type, id, version_id, last_updated, content, method)
                             VALUES ('${ridOf('Basic', 'q5')}', 'Basic', 'q5', 1, now(), '{}', 'POST')`);
      throw new Error('undo');
    })
  ).rejects.toThrow('undo');
  expect(statements[0]).toBe('BEGIN ISOLATION LEVEL');
  expect(statements).toContain('ROLLBACK');
  expect(await stored('q5')).toBe(false);
});

test('a failing last statement is not committed, and nothing stays', async () => {
  await expect(
    runWriteTransaction(db, noIndex, async (tx) => {
      await tx.query(sql`SELECT 1`);
      tx.queueCreate(row('q6'));
      // The same key again: the combined last statement fails as a whole.
      tx.queueStatement(sql`INSERT INTO resource (rid, resource_type, id, version_id, last_updated, content, method)
                            VALUES (${ridOf('Basic', 'q1')}, 'Basic', 'q1', 1, now(), '{}', 'POST')`);
    })
  ).rejects.toThrow(/duplicate key/);
  expect(await stored('q6')).toBe(false);
});

test('values sent as literals with BEGIN arrive exactly as bound parameters would', async () => {
  const awkward = {
    text: "it's a \\ back\\slash, a \"quote\", E'x', $1, -- not a comment; 漢字 \u00e9 😀",
    list: ['a"b', "c'd", 'e\\f', null],
    n: 1.5e-7,
  };
  const values: unknown[] = [awkward.text, awkward.list, awkward, 42, true, null, new Date('2024-02-29T12:34:56.789Z')];
  const q = sql`SELECT ${values[0]}::text AS t, ${values[1]}::text[] AS l, ${values[2]}::jsonb AS j, ${values[3]}::int AS i,
                       ${values[4]}::boolean AS b, ${values[5]}::text AS z, ${values[6]}::timestamptz AS d`;
  const bound = (await db.query(q)).rows[0];
  messages.length = 0;
  const inlined = await runWriteTransaction(db, noIndex, async (tx) => (await tx.send(q)).rows[0]);
  expect(messages[0].startsWith('BEGIN ISOLATION LEVEL READ COMMITTED; SELECT ')).toBe(true);
  expect(inlined).toEqual(bound);
  expect(inlined.t).toBe(awkward.text);
  expect(inlined.j).toEqual(awkward);
  expect(inlined.l).toEqual(awkward.list);
});

test('a long last statement keeps its parameters and is followed by COMMIT on its own', async () => {
  messages.length = 0;
  const big = row('q7');
  big.content = { ...(big.content as Resource), text: { status: 'generated', div: `<div>${'x'.repeat(100_000)}</div>` } } as Resource;
  await runWriteTransaction(db, noIndex, async (tx) => {
    await tx.query(sql`SELECT 1`);
    tx.queueCreate(big);
  });
  expect(messages).toHaveLength(3);
  expect(messages[1]).toMatch(/^INSERT INTO resource .*\$1::jsonb/);
  expect(messages[2]).toBe('COMMIT');
  expect(await stored('q7')).toBe(true);
});

test('a replaced version moves to resource_history in the statement that writes the new one', async () => {
  await runWriteTransaction(db, noIndex, async (tx) => tx.queueCreate(row('q8')));
  messages.length = 0;
  const v2 = { ...row('q8'), version_id: 2, method: 'PUT', content: { resourceType: 'Basic', id: 'q8', code: { text: 'y' } } as Resource };
  await runWriteTransaction(db, noIndex, async (tx) => {
    await tx.query(sql`SELECT 1 FROM resource WHERE rid = ${v2.rid} FOR UPDATE`);
    tx.queueReplace(v2);
  });
  // BEGIN with the lock, the copy and the update in one statement, then COMMIT.
  expect(messages).toHaveLength(3);
  expect(messages[1]).toMatch(/^WITH w0 AS \(INSERT INTO resource_history .* FROM resource WHERE rid = \$2\), w1 AS \(UPDATE resource SET/);
  const history = await db.pool.query(
    'SELECT version_id, method, content, replaced_at = $2::timestamptz AS replaced_by_v2 FROM resource_history WHERE rid = $1',
    [v2.rid, v2.last_updated]
  );
  // The replaced version records when the new one replaced it (history _at filters on it).
  expect(history.rows).toEqual([{ version_id: 1, method: 'POST', content: row('q8').content, replaced_by_v2: true }]);
  const current = await db.pool.query('SELECT version_id, method, content FROM resource WHERE rid = $1', [v2.rid]);
  expect(current.rows).toEqual([{ version_id: 2, method: 'PUT', content: v2.content }]);
});
