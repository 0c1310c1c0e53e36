import type { Executor } from '../db/database.js';
import { preparedInsert } from '../db/prepared.js';
import type { SessionRow, SessionsTable, UserRow } from '../db/schema.js';
import type { Updateable } from 'kysely';
import { USER_AS_U, userFromJoined } from '../users/store.js';

const insertSessionRow = preparedInsert('sessions');

export async function insertSession(db: Executor, row: SessionRow): Promise<void> {
  await insertSessionRow(db, row);
}

const SESSION_WITH_USER = [
  's.id as s_id', 's.token_hash as s_token_hash', 's.user_id as s_user_id', 's.auth_method as s_auth_method',
  's.connection_id as s_connection_id', 's.organization_id as s_organization_id', 's.mfa_state as s_mfa_state',
  's.mfa_completed_at as s_mfa_completed_at', 's.ip as s_ip', 's.user_agent as s_user_agent',
  's.created_at as s_created_at', 's.last_seen_at as s_last_seen_at', 's.expires_at as s_expires_at',
  's.absolute_expires_at as s_absolute_expires_at', 's.revoked_at as s_revoked_at',
  's.identity_id as s_identity_id', 's.idp_session_id as s_idp_session_id', 's.idp_logout_enc as s_idp_logout_enc',
  ...USER_AS_U,
] as const;

async function sessionWithUserWhere(
  db: Executor,
  column: 's.token_hash' | 's.id',
  value: string,
): Promise<{ session: SessionRow; user: UserRow } | undefined> {
  const row = await db
    .selectFrom('sessions as s')
    .innerJoin('users as u', 'u.id', 's.user_id')
    .select(SESSION_WITH_USER)
    .where(column, '=', value)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    session: {
      id: row.s_id, token_hash: row.s_token_hash, user_id: row.s_user_id, auth_method: row.s_auth_method,
      connection_id: row.s_connection_id, organization_id: row.s_organization_id, mfa_state: row.s_mfa_state,
      mfa_completed_at: row.s_mfa_completed_at, ip: row.s_ip, user_agent: row.s_user_agent,
      created_at: row.s_created_at, last_seen_at: row.s_last_seen_at, expires_at: row.s_expires_at,
      absolute_expires_at: row.s_absolute_expires_at, revoked_at: row.s_revoked_at,
      identity_id: row.s_identity_id, idp_session_id: row.s_idp_session_id, idp_logout_enc: row.s_idp_logout_enc,
    },
    user: userFromJoined(row),
  };
}

/** The session and its user in one query (the hot path of every cookie-authenticated request). */
export function findSessionWithUser(db: Executor, tokenHash: string): Promise<{ session: SessionRow; user: UserRow } | undefined> {
  return sessionWithUserWhere(db, 's.token_hash', tokenHash);
}

/** The same by session id (a primary-key probe): bearer access tokens and refresh tokens name their session. */
export function findSessionWithUserById(db: Executor, sessionId: string): Promise<{ session: SessionRow; user: UserRow } | undefined> {
  return sessionWithUserWhere(db, 's.id', sessionId);
}

export async function updateSession(db: Executor, id: string, patch: Updateable<SessionsTable>): Promise<void> {
  await db.updateTable('sessions').set(patch).where('id', '=', id).execute();
}

export async function listActiveSessions(db: Executor, userId: string, now: string, page: { limit: number; cursor: string | null }) {
  let q = db
    .selectFrom('sessions')
    .selectAll()
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .where('absolute_expires_at', '>', now);
  if (page.cursor) q = q.where('id', '<', page.cursor);
  return q.orderBy('id', 'desc').limit(page.limit + 1).execute();
}

/**
 * Delete every session of the user, revoked ones included; returns how many were not revoked yet
 * (what ending them first would have ended).
 * For the claim of an unverified account (users/claim.ts): a revoked session still counts as a
 * "known address" of the account (hasRecentSessionFromAddress), and the unproven holder's
 * addresses must not. Nothing references a session row (no foreign key; audit events name a
 * session only by id, as text).
 */
export async function deleteAllUserSessions(db: Executor, userId: string): Promise<number> {
  const live = await db
    .selectFrom('sessions')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .executeTakeFirstOrThrow();
  await db.deleteFrom('sessions').where('user_id', '=', userId).execute();
  return Number(live.n);
}

/**
 * Whether this account had a session from this address whose last activity is after `since`
 * (revoked ones count: signing out does not make an address strange). One query whether or not
 * the account exists. `mfaComplete`: only sessions that completed their second factor.
 */
export async function hasRecentSessionFromAddress(
  db: Executor,
  who: { email: string } | { userId: string },
  ip: string,
  since: string,
  opts: { mfaComplete?: boolean } = {},
): Promise<boolean> {
  let q = db
    .selectFrom('sessions as s')
    .innerJoin('users as u', 'u.id', 's.user_id')
    .select('s.id')
    .where('s.ip', '=', ip)
    .where('s.last_seen_at', '>=', since);
  q = 'email' in who ? q.where('u.email', '=', who.email) : q.where('s.user_id', '=', who.userId);
  if (opts.mfaComplete) q = q.where('s.mfa_completed_at', 'is not', null);
  return !!(await q.limit(1).executeTakeFirst());
}
