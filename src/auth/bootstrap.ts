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
/** Creates the admin client when no client exists; returns its secret, or undefined if nothing was created. */
export async function bootstrapAdminClient(db: Database): Promise<string | undefined> {
  const clients = new ClientStore(db);
  if ((await clients.count()) > 0) return undefined;
  try {
    const { secret } = await clients.create({
      clientId: ADMIN_CLIENT_ID,
      name: 'Server administration',
      type: 'confidential-symmetric',
      scopes: ADMIN_SCOPES,
      isAdmin: true,
    });
    return secret;
  } catch (err) {
    // Another process starting at the same moment created it (the client id is the primary key).
    if (/already exists/.test((err as Error).message)) return undefined;
    throw err;
  }
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
    `   curl -s -H "Authorization: Bearer $TOKEN" ${baseUrl}/Patient`,
    '================================================================================',
    '',
  ].join('\n');
}
