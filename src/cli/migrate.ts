/** `npm run migrate`: applies pending migrations to DATABASE_URL or the embedded database. */
import { loadConfig } from '../config';
import { locateDatabase } from '../store/connect';
import { migrate } from '../store/migrate';

async function main(): Promise<void> {
  const database = await locateDatabase(loadConfig());
  try {
    const applied = await migrate(database.url);
    console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'Database is up to date');
  } finally {
    await database.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
