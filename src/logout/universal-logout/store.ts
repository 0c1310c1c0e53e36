import { sql } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { ConnectionRow } from '../../sso/connections/store.js';

/** SQL of Universal Logout: which connections may have sent a token, and who a subject names. */

/** An attacker can make many organizations claim one issuer; never look at more than this many. */
export const MAX_CANDIDATES = 50;

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (m) => `\\${m}`);

/**
 * Active, enabled connections that could expect a token from `iss`: their issuer is `iss`
 * (with or without a trailing slash) or lies under it (an Okta custom authorization server
 * `{origin}/oauth2/…` under the org URL), or their settings name `iss` as the Universal Logout
 * issuer. A narrowing only: the service compares the exact expected iss and sub of each.
 */
export async function findCandidateConnections(db: Executor, iss: string): Promise<ConnectionRow[]> {
  const bare = iss.replace(/\/$/, '');
  const named = `%${likeEscape(`"issuer":${JSON.stringify(bare)}`)}%`;
  const namedSlash = `%${likeEscape(`"issuer":${JSON.stringify(`${bare}/`)}`)}%`;
  return db
    .selectFrom('sso_connections')
    .selectAll()
    .where('status', '=', 'active')
    .where('enabled', '=', 1)
    .where((eb) =>
      eb.or([
        eb('issuer', '=', bare),
        eb('issuer', '=', `${bare}/`),
        // Strings under "bare/": every one sorts between "bare/" and "bare0" ('0' follows '/').
        eb.and([eb('issuer', '>', `${bare}/`), eb('issuer', '<', `${bare}0`)]),
        sql<boolean>`${sql.ref('config')} like ${named} escape '\\'`,
        sql<boolean>`${sql.ref('config')} like ${namedSlash} escape '\\'`,
      ]),
    )
    .orderBy('id')
    .limit(MAX_CANDIDATES)
    .execute();
}

/** Whether the user is tied to the organization: a member of it, or holding an identity of its connection. */
export async function isTiedToOrganization(db: Executor, userId: string, organizationId: string, connectionId: string): Promise<boolean> {
  const member = await db.selectFrom('members').select('user_id').where('organization_id', '=', organizationId).where('user_id', '=', userId).executeTakeFirst();
  if (member) return true;
  const identity = await db.selectFrom('sso_identities').select('id').where('connection_id', '=', connectionId).where('user_id', '=', userId).executeTakeFirst();
  return !!identity;
}

/** The user's email (for the verified-domain rule). */
export async function findUserEmail(db: Executor, userId: string): Promise<string | undefined> {
  return (await db.selectFrom('users').select('email').where('id', '=', userId).executeTakeFirst())?.email;
}
