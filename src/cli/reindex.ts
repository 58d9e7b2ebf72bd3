/**
 * `npm run reindex [-- --type Patient,Observation] [--batch 500] [--restart]`: rebuilds the
 * search index of stored resources (see src/search/reindex.ts). Safe while the server runs;
 * an interrupted run continues where it stopped when started again.
 */
import { loadConfig } from '../config';
import { Database } from '../store/database';
import { locateDatabase } from '../store/connect';
import { migrate } from '../store/migrate';
import { reindex } from '../search/reindex';

function parseArgs(argv: string[]): { types?: string[]; batchSize?: number; restart: boolean } {
  const result: { types?: string[]; batchSize?: number; restart: boolean } = { restart: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.split('=', 2);
    const value = () => inline ?? argv[++i];
    if (flag === '--type' || flag === '--types') {
      result.types = value().split(',').filter(Boolean);
    } else if (flag === '--batch') {
      result.batchSize = Number(value());
      if (!Number.isInteger(result.batchSize) || result.batchSize < 1) throw new Error('--batch takes a positive integer');
    } else if (flag === '--restart') {
      result.restart = true;
    } else {
      throw new Error(`Unknown argument ${arg}. Usage: npm run reindex -- [--type T1,T2] [--batch N] [--restart]`);
    }
  }
  return result;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const config = loadConfig();
  const location = await locateDatabase(config);
  const db = new Database(location.url, 2);
  try {
    await migrate(location.url);
    const started = Date.now();
    const result = await reindex(db, {
      ...args,
      profilesDir: config.profilesDir,
      baseUrl: config.baseUrl,
      onProgress: (p) => {
        if (p.done) console.log(`${p.resourceType}: ${p.resources} resources reindexed`);
      },
    });
    for (const r of result.storedParameters.rejected) {
      console.warn(`Not active: ${r.reference}: ${r.reason}`);
    }
    const total = result.reindexed.reduce((n, r) => n + r.resources, 0);
    console.log(`Reindexed ${total} resources of ${result.reindexed.length} types in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await db.close();
    await location.stop();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
