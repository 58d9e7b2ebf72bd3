/**
 * Migration 0003 on a database written before it: each current version leaves
 * resource_history (kept once, in resource, with the method that wrote it), replaced versions
 * stay and record when they were replaced, and resource_version still lists every version.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { MIGRATIONS_DIR, migrate } from '../../src/store/migrate';
import { createTestDatabase, dropTestDatabase } from '../helpers/server';

const MIGRATION = '0003_history_superseded_versions.sql';
let scratch: string;
let databaseUrl: string;
let client: pg.Client;

beforeAll(async () => {
  databaseUrl = await createTestDatabase({ empty: true });
  // Every migration but 0003, as a database from before it was written.
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'migrations-'));
  for (const file of fs.readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql') && f !== MIGRATION)) {
    fs.copyFileSync(path.join(MIGRATIONS_DIR, file), path.join(scratch, file));
  }
  await migrate(databaseUrl, scratch);
  client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
});

afterAll(async () => {
  await client.end();
  fs.rmSync(scratch, { recursive: true, force: true });
  await dropTestDatabase(databaseUrl);
});

/** A resource as the old write path stored it: its current row, and every version in history. */
async function oldStyle(id: string, methods: string[], deleted = false): Promise<void> {
  const rid = `00000000-0000-4000-8000-${id.padStart(12, '0')}`;
  const content = (v: number) => (deleted && v === methods.length ? null : JSON.stringify({ resourceType: 'Basic', id, meta: { versionId: String(v) } }));
  const written = (v: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, v)).toISOString();
  await client.query(
    `INSERT INTO resource (rid, resource_type, id, version_id, last_updated, deleted, content) VALUES ($1, 'Basic', $2, $3, $4, $5, $6)`,
    [rid, id, methods.length, written(methods.length), deleted, content(methods.length)]
  );
  for (let v = 1; v <= methods.length; v++) {
    await client.query(
      `INSERT INTO resource_history (rid, version_id, resource_type, id, last_updated, method, content) VALUES ($1, $2, 'Basic', $3, $4, $5, $6)`,
      [rid, v, id, written(v), methods[v - 1], content(v)]
    );
  }
}

test('current versions move out of resource_history with their method; replaced ones stay', async () => {
  await oldStyle('1', ['POST']);
  await oldStyle('2', ['POST', 'PATCH']);
  await oldStyle('3', ['POST', 'PUT', 'DELETE'], true);
  // A current row whose history rows were removed by hand gets the method its state implies.
  await client.query(
    `INSERT INTO resource (rid, resource_type, id, version_id, last_updated, content) VALUES ('00000000-0000-4000-8000-000000000004', 'Basic', '4', 2, now(), '{}')`
  );

  expect(await migrate(databaseUrl)).toEqual([MIGRATION]);

  const current = await client.query('SELECT id, version_id, method FROM resource ORDER BY id');
  expect(current.rows).toEqual([
    { id: '1', version_id: 1, method: 'POST' },
    { id: '2', version_id: 2, method: 'PATCH' },
    { id: '3', version_id: 3, method: 'DELETE' },
    { id: '4', version_id: 2, method: 'PUT' },
  ]);
  // Each replaced version records when its successor was written.
  const replaced = await client.query(
    `SELECT h.id, h.version_id, h.method, h.replaced_at = n.last_updated AS replaced_by_next
     FROM resource_history h JOIN resource_version n ON n.rid = h.rid AND n.version_id = h.version_id + 1 ORDER BY h.id, h.version_id`
  );
  expect(replaced.rows).toEqual([
    { id: '2', version_id: 1, method: 'POST', replaced_by_next: true },
    { id: '3', version_id: 1, method: 'POST', replaced_by_next: true },
    { id: '3', version_id: 2, method: 'PUT', replaced_by_next: true },
  ]);
  expect((await client.query('SELECT count(*)::int AS n FROM resource_history')).rows[0].n).toBe(3);
  const every = await client.query(`SELECT id, version_id, content->'meta'->>'versionId' AS v FROM resource_version WHERE id <> '4' ORDER BY id, version_id`);
  expect(every.rows).toEqual([
    { id: '1', version_id: 1, v: '1' },
    { id: '2', version_id: 1, v: '1' },
    { id: '2', version_id: 2, v: '2' },
    { id: '3', version_id: 1, v: '1' },
    { id: '3', version_id: 2, v: '2' },
    { id: '3', version_id: 3, v: null },
  ]);
});
