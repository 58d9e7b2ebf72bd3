/**
 * The README's promise, end to end: `node dist/main.js` (what `npm start` runs after building)
 * with no DATABASE_URL starts an embedded PostgreSQL in DATA_DIR, prints (once) how to get an
 * access token, serves FHIR to the holder of that token, stops cleanly on SIGTERM, and finds
 * its data again on the next start. Runs with two cluster workers.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/store/embedded';

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'dist', 'main.js');

let dataDir: string;

beforeAll(() => {
  if (!fs.existsSync(MAIN)) {
    throw new Error('dist/main.js is missing: run `npm run build` first (npm test does)');
  }
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-e2e-'));
  fs.chmodSync(dataDir, 0o755);
});
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

async function start(port: number, workers: number): Promise<{ child: ChildProcess; output: () => string }> {
  let output = '';
  const child = spawn(process.execPath, [MAIN], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), DATA_DIR: dataDir, WORKERS: String(workers), DATABASE_URL: '', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited early:\n${output}`);
    try {
      const res = await fetch(`http://localhost:${port}/fhir/metadata`);
      if (res.status === 200) return { child, output: () => output };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill('SIGKILL');
  throw new Error(`server did not start:\n${output}`);
}

async function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

test('starts on the embedded database, serves FHIR with two workers, restarts with its data', async () => {
  const port = await freePort();
  const first = await start(port, 2);
  const base = `http://localhost:${port}/fhir`;
  // The printed quick start: a curl command that gets a token, and one that uses it.
  const printed = first.output();
  expect(printed.match(/client_secret:/g)).toHaveLength(1);
  const getToken = /^\s*(TOKEN=\$\(curl .*)$/m.exec(printed)?.[1];
  const useToken = /^\s*(curl -s -H "Authorization: Bearer \$TOKEN" .*)$/m.exec(printed)?.[1];
  expect(getToken).toBeDefined();
  expect(useToken).toBeDefined();
  const token = execFileSync('bash', ['-c', `${getToken}\necho "$TOKEN"`], { encoding: 'utf8' }).trim();
  expect(token.split('.')).toHaveLength(3);
  const listed = JSON.parse(execFileSync('bash', ['-c', `TOKEN='${token}'\n${useToken}`], { encoding: 'utf8' }));
  expect(listed.resourceType).toBe('Bundle');
  expect((await fetch(`${base}/Patient`)).status).toBe(401);
  const auth = { Authorization: `Bearer ${token}` };
  const created = await fetch(`${base}/Patient`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/fhir+json', ...auth },
    body: JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Restart' }] }),
  });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  expect(created.headers.get('location')).toBe(`${base}/Patient/${id}/_history/1`);
  // Requests spread over both workers all see the same data.
  const reads = await Promise.all(Array.from({ length: 10 }, () => fetch(`${base}/Patient/${id}`, { headers: auth })));
  expect(reads.map((r) => r.status)).toEqual(Array(10).fill(200));
  expect(await stop(first.child)).toBe(0);
  expect(first.output()).toMatch(/embedded PostgreSQL stopped/);
  expect(fs.existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);

  const second = await start(port, 1);
  // Tokens outlive a restart (keys are in the database); nothing is printed a second time.
  const again = await fetch(`${base}/Patient/${id}`, { headers: auth });
  expect(second.output()).not.toContain('client_secret');
  expect(again.status).toBe(200);
  expect(((await again.json()) as { name: { family: string }[] }).name[0].family).toBe('Restart');
  expect(await stop(second.child)).toBe(0);
}, 180_000);
