import { HOUR, type Clock } from '../clock.js';
import type { Ctx } from '../context.js';
import type { Executor } from '../db/database.js';
import type { LogoutOutboxTable } from '../db/schema.js';
import type { AuditService } from '../audit/service.js';
import { newId } from '../ids.js';
import type { SessionEndReason } from './reasons.js';
import type { SessionCacheDrops } from '../sessions/cache.js';
import { sessionDataChanged } from '../sessions/cache-sync.js';
import {
  deleteProviderRecordsOfSessions, insertOutboxRows, logoutTargetsOfSessions, revokeRefreshTokensOfSessions, revokeSessionsWhere,
  type EndedSession, type SessionSelector,
} from './store.js';

/** SPEC §8: back-channel logout deliveries are retried for 24 hours. */
export const DELIVERY_WINDOW_MS = 24 * HOUR;

export interface SessionEndDeps {
  clock: Clock;
  audit: Pick<AuditService, 'record'>;
  /** This instance's session cache (sessions/cache.ts). */
  sessionCache: SessionCacheDrops;
}

export interface SessionsEnded {
  /** The sessions this call ended (not those that had already ended). */
  sessions: EndedSession[];
  /** Back-channel logout deliveries queued for the apps they signed into. */
  deliveriesQueued: number;
}

/**
 * The one way a Gatehouse session ends (SPEC §8 "Propagation"), inside the caller's transaction:
 * 1. revoke the live sessions the selector names (only those this statement revoked count);
 * 2. revoke their session refresh tokens and delete the OpenID Provider's codes and tokens of them;
 * 3. queue a back-channel logout delivery for every app (OpenID Provider client with a
 *    `backchannel_logout_uri`) each one signed into — in the same transaction, so a session that
 *    ended always has its deliveries written, whichever instance sends them (logout/outbox.ts);
 * 4. audit `session.revoked` per session with the reason.
 * Nothing is sent here: the outbox sends after the transaction commits.
 */
export async function endSessions(tx: Executor, deps: SessionEndDeps, ctx: Ctx, selector: SessionSelector, reason: SessionEndReason, extra: Record<string, unknown> = {}): Promise<SessionsEnded> {
  const now = deps.clock.now();
  const nowIso = now.toISOString();
  const sessions = await revokeSessionsWhere(tx, selector, nowIso);
  if (sessions.length === 0) return { sessions, deliveriesQueued: 0 };
  const ids = sessions.map((s) => s.id);
  // No instance answers for them from its session cache: this one at once, the others when the
  // transaction commits (sessions/cache-sync.ts).
  await sessionDataChanged(tx, deps.sessionCache, { sessions: ids });
  await revokeRefreshTokensOfSessions(tx, ids, nowIso);
  await deleteProviderRecordsOfSessions(tx, ids);
  const userOf = new Map(sessions.map((s) => [s.id, s.user_id]));
  const giveUpAt = new Date(now.getTime() + DELIVERY_WINDOW_MS).toISOString();
  const rows: LogoutOutboxTable[] = (await logoutTargetsOfSessions(tx, ids)).map((t) => ({
    id: newId(),
    session_id: t.session_id,
    user_id: userOf.get(t.session_id) ?? '',
    client_id: t.client_id,
    reason,
    status: 'pending',
    attempts: 0,
    next_attempt_at: nowIso,
    locked_until: null,
    last_error: null,
    created_at: nowIso,
    give_up_at: giveUpAt,
    finished_at: null,
  }));
  await insertOutboxRows(tx, rows);
  for (const s of sessions) {
    await deps.audit.record(tx, ctx, {
      action: 'session.revoked',
      organizationId: s.organization_id,
      target: { type: 'session', id: s.id },
      metadata: { reason, userId: s.user_id, ...extra },
    });
  }
  return { sessions, deliveriesQueued: rows.length };
}
