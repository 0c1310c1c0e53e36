import { DAY, isoMemo, MINUTE, type Clock } from '../clock.js';
import { pinOf, type Ctx, type RequestMeta } from '../context.js';
import type { Db, Executor } from '../db/database.js';
import type { AuthMethod, MfaState, SessionRow, UserRow } from '../db/schema.js';
import { randomToken, sha256 } from '../crypto/tokens.js';
import type { KeyRing } from '../crypto/keyring.js';
import { sealIdpLogoutHint, type IdpSession } from './idp-session.js';
import { forbidden, notFound } from '../http/errors.js';
import { paginate, type Page, type PageParams } from '../http/pagination.js';
import { newId } from '../ids.js';
import type { AuditService } from '../audit/service.js';
import { endSessions, type SessionsEnded } from '../logout/session-end.js';
import type { SessionEndReason } from '../logout/reasons.js';
import type { SessionSelector } from '../logout/store.js';
import { findSessionWithUser, findSessionWithUserById, insertSession, listActiveSessions, updateSession } from './store.js';
import { cacheKeyOfSession, cacheKeyOfToken, type SessionCache, type SessionWithUser } from './cache.js';
import { sessionDataChanged } from './cache-sync.js';

/** SPEC §11: 7 days idle, 30 days at most; lastSeenAt written at most every 5 minutes. */
export const SESSION_IDLE_MS = 7 * DAY;
export const SESSION_ABSOLUTE_MS = 30 * DAY;
export const SESSION_TOUCH_INTERVAL_MS = 5 * MINUTE;
export const SESSION_COOKIE = 'gatehouse_session';
/** A cached session is read again from the database after this long, whatever it was told (sessions/cache.ts). */
export const SESSION_CACHE_MAX_AGE_MS = 10_000;
const TOKEN_PREFIX = 'gs_';

export interface NewSession {
  authMethod: AuthMethod;
  connectionId?: string | null;
  organizationId?: string | null;
  mfaState: MfaState;
  /** SSO sessions: the identity and IdP session they came from (sessions/idp-session.ts). */
  idp?: IdpSession | null;
}

export interface SessionView {
  id: string;
  authMethod: AuthMethod;
  connectionId: string | null;
  organizationId: string | null;
  mfa: MfaState;
  createdAt: string;
  expiresAt: string;
  lastSeenAt: string;
  ip: string | null;
  userAgent: string | null;
  current?: boolean;
}

/** SPEC §11 `session` object of GET /api/auth/session. */
export function sessionInfo(s: SessionRow) {
  return {
    id: s.id,
    authMethod: s.auth_method,
    connectionId: s.connection_id,
    organizationId: s.organization_id,
    mfa: s.mfa_state,
    createdAt: s.created_at,
    expiresAt: s.expires_at < s.absolute_expires_at ? s.expires_at : s.absolute_expires_at,
  };
}

/** A session in the list of my sessions: the same, plus where and when it was last used. */
export function sessionView(s: SessionRow, currentId?: string): SessionView {
  return {
    ...sessionInfo(s),
    lastSeenAt: s.last_seen_at,
    ip: s.ip,
    userAgent: s.user_agent,
    ...(currentId !== undefined ? { current: s.id === currentId } : {}),
  };
}

export function createSessionService(deps: { db: Db; clock: Clock; audit: AuditService; keyring: KeyRing; sessionCache: SessionCache }) {
  const { db, clock, sessionCache: cache } = deps;
  const nowIsoOf = isoMemo();
  const touchedBeforeIsoOf = isoMemo();

  /** A session by cache key: from this instance's cache when it may answer, else read and kept (sessions/cache.ts). */
  async function cached(key: string, read: () => Promise<SessionWithUser | undefined>): Promise<SessionWithUser | null> {
    const { hit, stamp } = cache.lookup(key);
    if (hit) return liveAndTouched(hit);
    const found = await liveAndTouched(await read());
    if (found) cache.store(key, found, stamp);
    return found;
  }

  /** Null unless the session is live (not revoked, neither expiry passed); slides the idle expiry at most every 5 minutes. */
  async function liveAndTouched(found: SessionWithUser | undefined): Promise<SessionWithUser | null> {
    if (!found) return null;
    const { session } = found;
    const nowMs = clock.now().getTime();
    // The stored times are toISOString strings, which order as the instants do.
    const nowIso = nowIsoOf(nowMs);
    if (session.revoked_at || session.expires_at <= nowIso || session.absolute_expires_at <= nowIso) return null;
    if (session.last_seen_at <= touchedBeforeIsoOf(nowMs - SESSION_TOUCH_INTERVAL_MS)) {
      const idle = new Date(nowMs + SESSION_IDLE_MS).toISOString();
      const expires = idle < session.absolute_expires_at ? idle : session.absolute_expires_at;
      await updateSession(db, session.id, { last_seen_at: nowIso, expires_at: expires });
      session.last_seen_at = nowIso;
      session.expires_at = expires;
    }
    return found;
  }

  return {
    /** Create a session inside the caller's transaction; returns the cookie token (shown once). */
    async create(exec: Executor, user: UserRow, spec: NewSession, meta: RequestMeta): Promise<{ token: string; session: SessionRow }> {
      const now = clock.now();
      const token = randomToken(32, TOKEN_PREFIX);
      const session: SessionRow = {
        id: newId(),
        token_hash: sha256(token),
        user_id: user.id,
        auth_method: spec.authMethod,
        connection_id: spec.connectionId ?? null,
        organization_id: spec.organizationId ?? null,
        mfa_state: spec.mfaState,
        mfa_completed_at: spec.mfaState === 'complete' ? now.toISOString() : null,
        ip: meta.ip,
        user_agent: meta.userAgent ? meta.userAgent.slice(0, 512) : null,
        created_at: now.toISOString(),
        last_seen_at: now.toISOString(),
        expires_at: new Date(now.getTime() + SESSION_IDLE_MS).toISOString(),
        absolute_expires_at: new Date(now.getTime() + SESSION_ABSOLUTE_MS).toISOString(),
        revoked_at: null,
        identity_id: spec.idp?.identityId ?? null,
        idp_session_id: spec.idp?.sessionId ?? null,
        idp_logout_enc: null,
      };
      if (spec.idp?.logoutHint) session.idp_logout_enc = sealIdpLogoutHint(deps.keyring, session.id, spec.idp.logoutHint);
      await insertSession(exec, session);
      return { token, session };
    },

    /**
     * Resolve a cookie token. Only the SHA-256 of the token is stored; the lookup is by that hash
     * (an index probe on a value the attacker cannot choose the pre-image of), so no timing
     * comparison of secrets happens in application code. Slides the idle expiry.
     */
    async authenticate(token: string): Promise<{ session: SessionRow; user: UserRow } | null> {
      if (!token.startsWith(TOKEN_PREFIX) || token.length > 100) return null;
      const hash = sha256(token);
      return cached(cacheKeyOfToken(hash), () => findSessionWithUser(db, hash));
    },

    /**
     * A live session by id (bearer access tokens and refresh tokens name their session by `sid`):
     * null when it was revoked, expired or deleted. Slides the idle expiry like a cookie request.
     */
    async authenticateById(sessionId: string): Promise<{ session: SessionRow; user: UserRow } | null> {
      return cached(cacheKeyOfSession(sessionId), () => findSessionWithUserById(db, sessionId));
    },

    /** GET /api/user/sessions: the caller's user's sessions (not for a pinned key). */
    async list(ctx: Ctx, userId: string, currentId: string | null, params: PageParams): Promise<Page<SessionView>> {
      refusePinnedKey(ctx);
      const rows = await listActiveSessions(db, userId, clock.now().toISOString(), params);
      return paginate(rows, params.limit, (s) => sessionView(s, currentId ?? ''));
    },

    /** DELETE /api/user/sessions/{id}: the user ends one of their sessions (404 when not theirs or already ended). */
    async revoke(ctx: Ctx, userId: string, sessionId: string): Promise<void> {
      refusePinnedKey(ctx);
      await db.transaction().execute(async (tx) => {
        const ended = await endSessions(tx, deps, ctx, { by: 'session', sessionId, userId }, 'revoked');
        if (ended.sessions.length === 0) throw notFound('Session');
      });
    },

    /**
     * End one session for a reason (sign-out, a reused refresh token, an RP-initiated logout …):
     * no caller rights involved, nothing thrown when it had already ended; propagated and audited
     * with `metadata.reason` (logout/session-end.ts). Returns whether it was live.
     */
    async end(ctx: Ctx, userId: string, sessionId: string, reason: SessionEndReason): Promise<boolean> {
      return db.transaction().execute(async (tx) => (await endSessions(tx, deps, ctx, { by: 'session', sessionId, userId }, reason)).sessions.length > 0);
    },

    /** End the sessions a selector names inside the caller's transaction (logout/session-end.ts). */
    async endIn(exec: Executor, ctx: Ctx, selector: SessionSelector, reason: SessionEndReason, extra?: Record<string, unknown>): Promise<SessionsEnded> {
      return endSessions(exec, deps, ctx, selector, reason, extra);
    },

    /** Every live session of the user (but `exceptId`), in the caller's transaction; returns how many ended. */
    async revokeAllForUser(exec: Executor, ctx: Ctx, userId: string, reason: SessionEndReason, exceptId?: string): Promise<number> {
      const selector: SessionSelector = exceptId ? { by: 'user', userId, exceptSessionId: exceptId } : { by: 'user', userId };
      return (await endSessions(exec, deps, ctx, selector, reason)).sessions.length;
    },

    async markMfaComplete(exec: Executor, sessionId: string): Promise<void> {
      await updateSession(exec, sessionId, { mfa_state: 'complete', mfa_completed_at: clock.now().toISOString() });
      await sessionDataChanged(exec, cache, { sessions: [sessionId] });
    },
  };
}

/**
 * A key pinned to an organization is a credential for that organization only (SPEC §12). The
 * user's sessions span every organization — SSO sessions of others included, with their IPs and
 * user agents — so such a key may neither list nor end them (as it may not reach keys pinned
 * elsewhere: keyReachRefusal in api-keys/service.ts).
 */
function refusePinnedKey(ctx: Ctx): void {
  if (ctx.principal && pinOf(ctx.principal)) throw forbidden("A key pinned to an organization cannot manage the user's sessions");
}

export type SessionService = ReturnType<typeof createSessionService>;
