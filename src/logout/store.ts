import type { Executor } from '../db/database.js';
import type { LogoutOutboxTable, SessionRow } from '../db/schema.js';

/** SQL of logout: which sessions a selector names, ending them, what they signed into, the outbox. */

/** Which live sessions to end. Every variant is a conjunction of indexed columns. */
export type SessionSelector =
  | { by: 'session'; sessionId: string; userId?: string }
  | { by: 'user'; userId: string; exceptSessionId?: string }
  | { by: 'user_connection'; userId: string; connectionId: string }
  | { by: 'user_organization'; userId: string; organizationId: string }
  | { by: 'idp_session'; connectionId: string; idpSessionId: string; identityId?: string }
  | { by: 'identity'; identityId: string };

export type EndedSession = Pick<SessionRow, 'id' | 'user_id' | 'organization_id'>;

/** SQLite allows 32,766 bound values per statement; stay far below it. */
const CHUNK = 500;
export function chunks<T>(items: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Revoke the live sessions the selector names and return exactly those this statement revoked
 * (RETURNING, on SQLite and PostgreSQL): of two concurrent ends of one session only one sees it,
 * so its apps are told once.
 */
export async function revokeSessionsWhere(db: Executor, sel: SessionSelector, now: string): Promise<EndedSession[]> {
  let q = db.updateTable('sessions').set({ revoked_at: now }).where('revoked_at', 'is', null);
  switch (sel.by) {
    case 'session':
      q = q.where('id', '=', sel.sessionId);
      if (sel.userId) q = q.where('user_id', '=', sel.userId);
      break;
    case 'user':
      q = q.where('user_id', '=', sel.userId);
      if (sel.exceptSessionId) q = q.where('id', '!=', sel.exceptSessionId);
      break;
    case 'user_connection':
      q = q.where('user_id', '=', sel.userId).where('auth_method', '=', 'sso').where('connection_id', '=', sel.connectionId);
      break;
    case 'user_organization':
      q = q.where('user_id', '=', sel.userId).where('organization_id', '=', sel.organizationId);
      break;
    case 'idp_session':
      q = q.where('connection_id', '=', sel.connectionId).where('idp_session_id', '=', sel.idpSessionId);
      if (sel.identityId) q = q.where('identity_id', '=', sel.identityId);
      break;
    case 'identity':
      q = q.where('identity_id', '=', sel.identityId);
      break;
  }
  return q.returning(['id', 'user_id', 'organization_id']).execute();
}

/** Revoke the session refresh tokens (POST /api/auth/token) of these sessions. */
export async function revokeRefreshTokensOfSessions(db: Executor, sessionIds: readonly string[], now: string): Promise<number> {
  let n = 0;
  for (const ids of chunks(sessionIds)) {
    const res = await db.updateTable('refresh_tokens').set({ revoked_at: now }).where('session_id', 'in', ids).where('revoked_at', 'is', null).executeTakeFirst();
    n += Number(res.numUpdatedRows);
  }
  return n;
}

/** Delete the OpenID Provider's codes and tokens of these sessions (they are refused anyway once the session ended; this makes it so at rest). */
export async function deleteProviderRecordsOfSessions(db: Executor, sessionIds: readonly string[]): Promise<number> {
  let n = 0;
  for (const ids of chunks(sessionIds)) {
    const res = await db.deleteFrom('oidc_records').where('session_id', 'in', ids).executeTakeFirst();
    n += Number(res.numDeletedRows);
  }
  return n;
}

/** Record that a session signed into a client (idempotent). */
export async function recordSessionClient(db: Executor, sessionId: string, clientId: string, now: string): Promise<void> {
  await db.insertInto('session_clients').values({ session_id: sessionId, client_id: clientId, created_at: now }).onConflict((oc) => oc.columns(['session_id', 'client_id']).doNothing()).execute();
}

/** The clients with a back-channel logout URI that these sessions signed into. */
export async function logoutTargetsOfSessions(db: Executor, sessionIds: readonly string[]): Promise<Array<{ session_id: string; client_id: string }>> {
  const out: Array<{ session_id: string; client_id: string }> = [];
  for (const ids of chunks(sessionIds)) {
    const rows = await db
      .selectFrom('session_clients as sc')
      .innerJoin('oauth_clients as c', 'c.id', 'sc.client_id')
      .select(['sc.session_id', 'sc.client_id'])
      .where('sc.session_id', 'in', ids)
      .where('c.backchannel_logout_uri', 'is not', null)
      .execute();
    out.push(...rows);
  }
  return out;
}

export async function insertOutboxRows(db: Executor, rows: LogoutOutboxTable[]): Promise<void> {
  for (const part of chunks(rows, 50)) await db.insertInto('logout_outbox').values(part).execute();
}

export type OutboxRow = LogoutOutboxTable;

/** Deliveries due now that nobody holds (a claim whose lease ran out is due again). */
export async function dueOutboxRows(db: Executor, now: string, limit: number): Promise<OutboxRow[]> {
  return db
    .selectFrom('logout_outbox')
    .selectAll()
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', now)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
    .orderBy('next_attempt_at')
    .limit(limit)
    .execute();
}

/**
 * Take a delivery for `leaseUntil`: only one instance wins (the row is still pending and free,
 * or its previous holder's lease ran out — that holder died mid-delivery). Counts the attempt.
 */
export async function claimOutboxRow(db: Executor, row: Pick<OutboxRow, 'id' | 'attempts'>, now: string, leaseUntil: string): Promise<boolean> {
  const res = await db
    .updateTable('logout_outbox')
    .set({ locked_until: leaseUntil, attempts: row.attempts + 1 })
    .where('id', '=', row.id)
    .where('status', '=', 'pending')
    .where('attempts', '=', row.attempts)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/**
 * The outcome of attempt number `attempt` (what claimOutboxRow counted). Written only while that
 * attempt is the row's latest: a holder whose lease ran out while another instance took the row
 * over does not overwrite the newer attempt's state.
 */
export async function finishOutboxRow(db: Executor, id: string, attempt: number, status: 'delivered' | 'abandoned', now: string, error: string | null): Promise<void> {
  await db.updateTable('logout_outbox').set({ status, finished_at: now, locked_until: null, last_error: error }).where('id', '=', id).where('attempts', '=', attempt).execute();
}

export async function retryOutboxRow(db: Executor, id: string, attempt: number, nextAttemptAt: string, error: string): Promise<void> {
  await db.updateTable('logout_outbox').set({ next_attempt_at: nextAttemptAt, locked_until: null, last_error: error }).where('id', '=', id).where('attempts', '=', attempt).where('status', '=', 'pending').execute();
}

export async function outboxRowsOfSession(db: Executor, sessionId: string): Promise<OutboxRow[]> {
  return db.selectFrom('logout_outbox').selectAll().where('session_id', '=', sessionId).orderBy('created_at').execute();
}

/** What the outbox holds now (metrics: gatehouse_logout_outbox_*), with when its oldest pending delivery was queued. */
export interface OutboxDepth {
  pending: number;
  abandoned: number;
  oldestPendingCreatedAt: string | null;
}

/** One grouped count over the `(status, next_attempt_at)` index; finished rows stay until purged. */
export async function outboxDepth(db: Executor): Promise<OutboxDepth> {
  const rows = await db
    .selectFrom('logout_outbox')
    .select((eb) => ['status', eb.fn.countAll<number | string>().as('n'), eb.fn.min('created_at').as('oldest')])
    .where('status', 'in', ['pending', 'abandoned'])
    .groupBy('status')
    .execute();
  const pending = rows.find((r) => r.status === 'pending');
  const abandoned = rows.find((r) => r.status === 'abandoned');
  return { pending: Number(pending?.n ?? 0), abandoned: Number(abandoned?.n ?? 0), oldestPendingCreatedAt: pending?.oldest ?? null };
}
