import { sql } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { ConnectionRow } from '../../sso/connections/store.js';
import { VERIFIED_STATUS } from '../../domains/store.js';

/** SQL of Universal Logout: which connections may have sent a token, and who a subject names. */

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (m) => `\\${m}`);

/**
 * Active, enabled connections that could expect a token from `iss` with subject `sub`: their
 * issuer is `iss` (with or without a trailing slash) or, for Okta, lies under it (a custom
 * authorization server `{origin}/oauth2/…` under the org URL), or their settings name `iss` as the
 * Universal Logout issuer; and their settings hold `sub` as the client id or the Universal Logout
 * subject. A narrowing only: the service compares the exact expected iss and sub of each.
 *
 * No limit: anyone can make organizations whose connections copy another organization's issuer
 * and subject, and a list cut short could leave the genuine connection out (its Universal Logout
 * would be silenced). Every copy found is only ever allowed to act on its own organization, and
 * the service skips, without a query, each one whose organization has no tie to the user.
 */
export async function findCandidateConnections(db: Executor, iss: string, sub: string): Promise<ConnectionRow[]> {
  const bare = iss.replace(/\/$/, '');
  const json = (key: string, value: string) => `%${likeEscape(`"${key}":${JSON.stringify(value)}`)}%`;
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
        sql<boolean>`${sql.ref('config')} like ${json('issuer', bare)} escape '\\'`,
        sql<boolean>`${sql.ref('config')} like ${json('issuer', `${bare}/`)} escape '\\'`,
      ]),
    )
    .where((eb) => eb.or([sql<boolean>`${sql.ref('config')} like ${json('clientId', sub)} escape '\\'`, sql<boolean>`${sql.ref('config')} like ${json('subject', sub)} escape '\\'`]))
    .orderBy('id')
    .execute();
}

/**
 * The organizations the user is tied to: a member of, holding an identity of one of its
 * connections, or — through the user's email domain — the one that verified it.
 */
export async function organizationsTiedTo(db: Executor, userId: string, emailDomain: string | null): Promise<Set<string>> {
  const members = await db.selectFrom('members').select('organization_id').where('user_id', '=', userId).execute();
  const identities = await db
    .selectFrom('sso_identities as i')
    .innerJoin('sso_connections as c', 'c.id', 'i.connection_id')
    .select('c.organization_id')
    .where('i.user_id', '=', userId)
    .execute();
  const verifier = emailDomain
    ? await db.selectFrom('domains').select('organization_id').where('domain', '=', emailDomain.toLowerCase()).where('status', '=', VERIFIED_STATUS).execute()
    : [];
  return new Set([...members, ...identities, ...verifier].map((r) => r.organization_id));
}

/** The user's email (for the verified-domain rule). */
export async function findUserEmail(db: Executor, userId: string): Promise<string | undefined> {
  return (await db.selectFrom('users').select('email').where('id', '=', userId).executeTakeFirst())?.email;
}
