/**
 * `npm run admin -- <command>`: registers clients and users, rotates signing keys and
 * creates EHR launch contexts, directly in the database (DATABASE_URL, else the embedded
 * PostgreSQL in DATA_DIR: the running server's if it is up, otherwise started for the command).
 *
 *   client add --name "My app" --type public --redirect-uri https://app/cb --scope 'launch/patient' --scope 'patient/*.rs'
 *   client add --name "Backend" --type confidential-asymmetric --jwks-uri https://svc/jwks.json --scope 'system/*.rs'
 *   client list | client remove <id> | client secret <id>
 *   user add --username alice --password '...' --fhir-user Practitioner/1 --organization org1 [--name "Dr Alice"] [--jwks-file keys.json]
 *   user list | user remove <id> | user keys <id> --jwks-file keys.json | user keys <id> --clear
 *   keys rotate [--alg RS256|ES256] [--retain-seconds N]
 *   launch --patient <id> [--encounter <id>] [--client <id>]
 */
import fs from 'node:fs';
import path from 'node:path';
import { ClientStore, type ClientType } from '../auth/clients';
import { GrantStore } from '../auth/grants';
import { UserStore } from '../auth/users';
import { loadConfig, type Config } from '../config';
import { KeyStore, type SigningAlg } from '../keys/keystore';
import { setLogLevel } from '../logger';
import { locateDatabase, type DatabaseLocation } from '../store/connect';
import { Database } from '../store/database';
import { migrate } from '../store/migrate';

interface Args {
  positional: string[];
  options: Map<string, string[]>;
}

function parseArgs(argv: string[]): Args {
  const positional: string[] = [];
  const options = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.startsWith('--')) {
      const [name, inline] = arg.slice(2).split(/=(.*)/s);
      const value = inline ?? (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[++i] : 'true');
      options.set(name, [...(options.get(name) ?? []), value]);
    } else {
      positional.push(arg);
    }
  }
  return { positional, options };
}

const one = (args: Args, name: string) => args.options.get(name)?.at(-1);
const many = (args: Args, name: string) => args.options.get(name) ?? [];

function required(args: Args, name: string): string {
  const value = one(args, name);
  if (!value) throw new Error(`--${name} is required`);
  return value;
}

/** The running embedded PostgreSQL of DATA_DIR, if its postmaster is alive. */
function runningEmbedded(config: Config): string | undefined {
  const pidFile = path.join(config.dataDir, 'postgres', 'postmaster.pid');
  const passwordFile = path.join(config.dataDir, 'embedded-password');
  if (!fs.existsSync(pidFile) || !fs.existsSync(passwordFile)) return undefined;
  const lines = fs.readFileSync(pidFile, 'utf8').split('\n');
  try {
    process.kill(Number(lines[0]), 0);
  } catch {
    return undefined;
  }
  const password = fs.readFileSync(passwordFile, 'utf8').trim();
  return `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${Number(lines[3])}/fhir`;
}

async function connect(config: Config): Promise<DatabaseLocation> {
  const running = config.databaseUrl ? undefined : runningEmbedded(config);
  if (running) return { url: running, stop: async () => undefined };
  const location = await locateDatabase(config);
  await migrate(location.url);
  return location;
}

const USAGE = `Usage: npm run admin -- <command>
  client add --name <name> --type public|confidential-symmetric|confidential-asymmetric
             [--id <client id>] [--redirect-uri <url>]... [--scope <scope>]...
             [--jwks-file <file> | --jwks-uri <url>] [--organization <id>] [--purpose <ActReason code>]... [--admin]
  client list | client remove <id> | client secret <id>
  user add --username <name> --password <password> --fhir-user Practitioner/<id>|Patient/<id> [--organization <id>] [--name <display name>]
           [--jwks-file <public signing keys>]
  user list | user remove <id> | user keys <id> --jwks-file <file> | user keys <id> --clear
  keys rotate [--alg RS256|ES256] [--retain-seconds <n>]
  launch --patient <id> [--encounter <id>] [--client <client id>]`;

async function run(db: Database, args: Args): Promise<unknown> {
  const [what, action, id] = args.positional;
  const clients = new ClientStore(db);
  const users = new UserStore(db);
  switch (`${what} ${action ?? ''}`.trim()) {
    case 'client add': {
      const jwksFile = one(args, 'jwks-file');
      const { client, secret } = await clients.create({
        clientId: one(args, 'id'),
        name: required(args, 'name'),
        type: required(args, 'type') as ClientType,
        redirectUris: many(args, 'redirect-uri'),
        scopes: many(args, 'scope'),
        ...(jwksFile && { jwks: JSON.parse(fs.readFileSync(jwksFile, 'utf8')) }),
        jwksUri: one(args, 'jwks-uri'),
        organization: one(args, 'organization'),
        purposeOfUse: many(args, 'purpose'),
        isAdmin: one(args, 'admin') === 'true',
      });
      return { ...client, ...(secret && { clientSecret: secret, note: 'The secret is shown only now; it is stored hashed.' }) };
    }
    case 'client list':
      return clients.list();
    case 'client remove':
      if (!id || !(await clients.deactivate(id))) throw new Error(`No active client "${id}"`);
      return { removed: id };
    case 'client secret': {
      const secret = id && (await clients.resetSecret(id));
      if (!secret) throw new Error(`No active confidential-symmetric client "${id}"`);
      return { clientId: id, clientSecret: secret };
    }
    case 'user add': {
      const jwksFile = one(args, 'jwks-file');
      return users.create({
        username: required(args, 'username'),
        password: required(args, 'password'),
        fhirUser: required(args, 'fhir-user'),
        organization: one(args, 'organization'),
        displayName: one(args, 'name'),
        ...(jwksFile && { signingJwks: JSON.parse(fs.readFileSync(jwksFile, 'utf8')) }),
      });
    }
    case 'user keys': {
      const jwksFile = one(args, 'jwks-file');
      if (!id || (!jwksFile && one(args, 'clear') !== 'true')) throw new Error('user keys <id> needs --jwks-file <file> or --clear');
      const user = await users.setSigningJwks(id, jwksFile ? JSON.parse(fs.readFileSync(jwksFile, 'utf8')) : undefined);
      if (!user) throw new Error(`No active user "${id}"`);
      return user;
    }
    case 'user list':
      return users.list();
    case 'user remove':
      if (!id || !(await users.deactivate(id))) throw new Error(`No active user "${id}"`);
      return { removed: id };
    case 'keys rotate': {
      const alg = (one(args, 'alg') ?? 'RS256') as SigningAlg;
      if (alg !== 'RS256' && alg !== 'ES256') throw new Error('--alg must be RS256 or ES256');
      const retain = one(args, 'retain-seconds');
      const kid = await new KeyStore(db).rotate(alg, retain === undefined ? undefined : Number(retain) * 1000);
      return { kid, alg };
    }
    case 'launch': {
      const context = {
        patient: required(args, 'patient'),
        ...(one(args, 'encounter') && { encounter: one(args, 'encounter') }),
      };
      const launch = await new GrantStore(db).createLaunch(context, one(args, 'client'), 3600);
      return { launch, expires_in: 3600 };
    }
    default:
      throw new Error(USAGE);
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.positional.length === 0 || args.options.has('help')) {
    console.log(USAGE);
    return;
  }
  const config = loadConfig();
  setLogLevel('warn');
  const location = await connect(config);
  const db = new Database(location.url, 2);
  try {
    console.log(JSON.stringify(await run(db, args), null, 2));
  } finally {
    await db.close();
    await location.stop();
  }
}

main().catch((err) => {
  console.error((err as Error).message);
  process.exit(1);
});
