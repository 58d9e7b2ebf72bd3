/**
 * First start on an empty database: creates the admin client (a confidential client with
 * the admin scope and every system scope) and tells the operator, once, how to get a token.
 * main.ts runs it in the primary process only; the secret is printed this once and stored hashed.
 */
import { ClientStore } from './clients';
import type { Database } from '../store/database';
import { endpoints } from './oauth';

export const ADMIN_CLIENT_ID = 'admin';
export const ADMIN_SCOPES = ['system/*.cruds', 'admin'];
/** Arbitrary constant naming the lock that keeps two starting processes from both creating it. */
const BOOTSTRAP_LOCK = 7_340_200;

/** Creates the admin client when no client exists; returns its secret, or undefined if nothing was created. */
export async function bootstrapAdminClient(db: Database): Promise<string | undefined> {
  const clients = new ClientStore(db);
  return db.transaction(async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [BOOTSTRAP_LOCK]);
    const existing = await client.query('SELECT 1 FROM auth_client LIMIT 1');
    if (existing.rowCount) return undefined;
    // The insert itself runs on the pool; the lock above still serializes concurrent starters.
    const { secret } = await clients.create({
      clientId: ADMIN_CLIENT_ID,
      name: 'Server administration',
      type: 'confidential-symmetric',
      scopes: ADMIN_SCOPES,
      isAdmin: true,
    });
    return secret;
  });
}

/** The message printed on first start: the credentials and two copy-paste curl commands. */
export function bootstrapMessage(baseUrl: string, secret: string): string {
  const urls = endpoints({ baseUrl });
  const scope = ADMIN_SCOPES.join(' ');
  return [
    '',
    '================================================================================',
    ' First start: an admin client was created. Its secret is shown only this once.',
    `   client_id:     ${ADMIN_CLIENT_ID}`,
    `   client_secret: ${secret}`,
    '',
    ' Get an access token (valid for an hour):',
    `   TOKEN=$(curl -s -u '${ADMIN_CLIENT_ID}:${secret}' -d grant_type=client_credentials -d 'scope=${scope}' ${urls.token} | node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).access_token')`,
    ' Use it:',
    `   curl -H "Authorization: Bearer $TOKEN" ${baseUrl}/Patient`,
    '================================================================================',
    '',
  ].join('\n');
}
