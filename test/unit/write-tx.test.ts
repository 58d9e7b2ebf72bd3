/**
 * Write transactions with BEGIN deferred: a transaction that only queues rows is committed as
 * one statement (all or nothing), one that reads first is a real transaction, and a throw
 * undoes everything either way.
 */
import type { Resource } from '@medplum/fhirtypes';
import { Database } from '../../src/store/database';
import { ridOf } from '../../src/store/rid';
import { sql } from '../../src/store/sql';
import { runWriteTransaction, type ResourceRow } from '../../src/store/write-tx';
import type { ResourceIndexer } from '../../src/services';
import { createTestDatabase, dropTestDatabase } from '../helpers/server';

let databaseUrl: string;
let db: Database;
const statements: string[] = [];
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
  };
}

async function stored(id: string): Promise<boolean> {
  const result = await db.pool.query('SELECT 1 FROM resource WHERE rid = $1', [ridOf('Basic', id)]);
  return result.rowCount === 1;
}

test('a transaction that only queues writes is one statement without BEGIN or COMMIT', async () => {
  statements.length = 0;
  await runWriteTransaction(db, noIndex, async (tx) => {
    tx.queueNewResource(row('q1'));
    tx.queueHistory({ ...row('q1'), method: 'POST' });
  });
  expect(statements).toEqual(['WITH w0 AS']);
  expect(await stored('q1')).toBe(true);
});

test('the single statement is all or nothing', async () => {
  await expect(
    runWriteTransaction(db, noIndex, async (tx) => {
      tx.queueNewResource(row('q2'));
      // The same key twice: the second insert fails, so the first must not stay either.
      tx.queueStatement(sql`INSERT INTO resource (rid, resource_type, id, version_id, last_updated, content)
                            VALUES (${ridOf('Basic', 'q1')}, 'Basic', 'q1', 1, now(), '{}')`);
    })
  ).rejects.toThrow(/duplicate key/);
  expect(await stored('q2')).toBe(false);
});

test('a transaction that reads first begins, commits, and rolls back on a throw', async () => {
  statements.length = 0;
  await runWriteTransaction(db, noIndex, async (tx) => {
    await tx.query(sql`SELECT 1`);
    tx.queueNewResource(row('q3'));
  });
  expect(statements).toEqual(['BEGIN ISOLATION LEVEL', 'SELECT 1', 'INSERT INTO resource', 'COMMIT']);
  expect(await stored('q3')).toBe(true);

  await expect(
    runWriteTransaction(db, noIndex, async (tx) => {
      tx.queueNewResource(row('q4'));
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
      await tx.client.query(`INSERT INTO resource (rid, resource_type, id, version_id, last_updated, content)
                             VALUES ('${ridOf('Basic', 'q5')}', 'Basic', 'q5', 1, now(), '{}')`);
      throw new Error('undo');
    })
  ).rejects.toThrow('undo');
  expect(statements[0]).toBe('BEGIN ISOLATION LEVEL');
  expect(statements).toContain('ROLLBACK');
  expect(await stored('q5')).toBe(false);
});
