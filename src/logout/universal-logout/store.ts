import { sql } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { ConnectionRow } from '../../sso/connections/store.js';

/** SQL of Universal Logout: which connections may have sent a token, and who a subject names. */

/**
 * Anyone can make organizations whose connections claim one issuer; never look at more than this
 * many (the oldest first: ids are ULIDs, so the first organization to configure an issuer keeps it).
 */
export const MAX_CANDIDATES = 200;

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (m) => `\\${m}`);

/**
 * Active, enabled connections that could expect a token from `iss`: their issuer is `iss`
 * (with or without a trailing slash) or, for Okta, lies under it (a custom authorization server
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
        // Under "bare/" (LIKE, not a range: a range would depend on the database's collation).
        eb.and([eb('provider', '=', 'okta'), sql<boolean>`${sql.ref('issuer')} like ${`${likeEscape(bare)}/%`} escape '\\'`]),
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
