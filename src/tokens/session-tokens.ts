import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Ctx, Principal, RequestMeta } from '../context.js';
import { randomToken, sha256 } from '../crypto/tokens.js';
import type { Db } from '../db/database.js';
import type { OrganizationRow, RefreshTokenRow, Role, SessionRow, UserRow } from '../db/schema.js';
import { AppError, forbidden, notFound } from '../http/errors.js';
import type { RateLimits } from '../http/rate-limit.js';
import { newId } from '../ids.js';
import type { OrganizationService } from '../organizations/service.js';
import type { SessionService } from '../sessions/service.js';
import { endSessions } from '../logout/session-end.js';
import type { AccessTokens } from './access-tokens.js';
import { findRefreshTokenByHash, insertRefreshToken, revokeFamily, spendRefreshToken } from './store.js';
import type { SessionCacheDrops } from '../sessions/cache.js';

/**
 * SPEC §8 session tokens: a signed-in session exchanges its cookie for an access token (a JWT, see
 * access-tokens.ts) and an opaque refresh token; the refresh grant rotates the refresh token.
 *
 * Refresh tokens: `grt_` + 32 random bytes (256 bits, base64url), stored as SHA-256 only. A family
 * is one issue and its rotations. Each token lives GATEHOUSE_REFRESH_TOKEN_TTL, never past its
 * session's absolute expiry, and is usable only while its session is live — so every path that ends
 * a session (sign-out, revocation, revoke-all, password reset, claim, unlink, reuse …) ends its
 * tokens without a hook of its own: the check is at use.
 *
 * Refresh, in order:
 *   1. the shape (prefix, length) and the row by hash — unknown → INVALID_TOKEN
 *   2. revoked → INVALID_TOKEN; already spent → reuse: revoke the family, end the session, audit
 *   3. expired → INVALID_TOKEN
 *   4. the session live and the token's user's → else INVALID_TOKEN
 *   5. with an organization: membership (lost → the family is revoked, INVALID_TOKEN) and the
 *      organization's sign-in policy now (the §6 error as is, e.g. 403 SSO_REQUIRED; nothing spent)
 *   6. sign the access token, then spend the old token (conditional UPDATE: of two concurrent
 *      refreshes exactly one spends it; the other is handled as reuse) and store the new one,
 *      in one transaction
 */
export const REFRESH_TOKEN_PREFIX = 'grt_';
const REFRESH_TOKEN_MAX_LENGTH = 100;

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  refreshExpiresIn: number;
}

type OrgGrant = { organization: OrganizationRow; role: Role };

const invalidToken = () => new AppError('INVALID_TOKEN', 'The refresh token is invalid, expired or revoked');

export function createSessionTokenService(deps: {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'refreshTokenTtlMs'>;
  audit: AuditService;
  sessions: SessionService;
  organizations: OrganizationService;
  accessTokens: AccessTokens;
  rateLimits: RateLimits;
  sessionCache: SessionCacheDrops;
}) {
  const { db, clock, config } = deps;

  /**
   * The organization of a token, checked exactly as a tenant-scoped request: membership (404 for a
   * non-member, never revealing existence) and the organization's sign-in policy for this session
   * (requireAccess → enforceOrganizationPolicy). A platform superadmin who is not a member has no
   * role to put in `org_role`: 404 as well.
   */
  async function organizationGrant(meta: RequestMeta, principal: Principal, organizationId: string): Promise<OrgGrant> {
    const { organization, role } = await deps.organizations.requireAccess({ ...meta, principal }, organizationId, 'org:read');
    if (!role) throw notFound('Organization');
    return { organization, role };
  }

  function newRefreshRow(session: SessionRow, user: UserRow, org: OrgGrant | null, familyId: string): { token: string; row: RefreshTokenRow } {
    const now = clock.now();
    const token = randomToken(32, REFRESH_TOKEN_PREFIX);
    const ttlEnd = new Date(now.getTime() + config.refreshTokenTtlMs).toISOString();
    const row: RefreshTokenRow = {
      id: newId(),
      token_hash: sha256(token),
      family_id: familyId,
      session_id: session.id,
      user_id: user.id,
      organization_id: org?.organization.id ?? null,
      created_at: now.toISOString(),
      // Never beyond the session's absolute expiry: the token ends with its session anyway.
      expires_at: ttlEnd < session.absolute_expires_at ? ttlEnd : session.absolute_expires_at,
      used_at: null,
      revoked_at: null,
    };
    return { token, row };
  }

  function pairOf(accessToken: string, refreshToken: string, row: RefreshTokenRow): TokenPair {
    return {
      accessToken,
      refreshToken,
      tokenType: 'Bearer',
      expiresIn: deps.accessTokens.ttlSeconds,
      refreshExpiresIn: Math.max(0, Math.floor((Date.parse(row.expires_at) - clock.now().getTime()) / 1000)),
    };
  }

  /** A spent token presented again (or the loser of a concurrent refresh): the family is revoked and its session ended. */
  async function reuseDetected(meta: RequestMeta, row: RefreshTokenRow): Promise<void> {
    const now = clock.now().toISOString();
    await db.transaction().execute(async (tx) => {
      const revokedCount = await revokeFamily(tx, row.family_id, now);
      const sessionEnded = (await endSessions(tx, deps, { ...meta, principal: null }, { by: 'session', sessionId: row.session_id, userId: row.user_id }, 'session_token_reuse')).sessions.length > 0;
      await deps.audit.record(tx, { ...meta, principal: null }, {
        action: 'session_token.reuse_detected',
        organizationId: row.organization_id,
        target: { type: 'session', id: row.session_id },
        metadata: { familyId: row.family_id, userId: row.user_id, revokedCount, sessionEnded },
      });
    });
  }

  return {
    /** POST /api/auth/token with a session: a new family. Nothing is written unless everything succeeds. */
    async issue(ctx: Ctx, input: { organizationId?: string | undefined }): Promise<TokenPair> {
      await deps.rateLimits.consumeIp('token:ip', ctx.ip);
      const p = ctx.principal;
      if (!p) throw new AppError('UNAUTHENTICATED', 'Sign in first: session tokens are issued to a signed-in session');
      if (p.kind !== 'session') throw forbidden('Session tokens are issued to a signed-in session (cookie), not to an API key');
      if (p.session.mfa_state === 'pending') {
        throw new AppError('MFA_REQUIRED', 'Finish signing in: verify your second factor first (POST /api/auth/mfa/verify)');
      }
      const org = input.organizationId ? await organizationGrant(ctx, p, input.organizationId) : null;
      const familyId = newId();
      const { token: refreshToken, row } = newRefreshRow(p.session, p.user, org, familyId);
      const { token: accessToken } = await deps.accessTokens.mint(p.session, p.user, org);
      await db.transaction().execute(async (tx) => {
        await insertRefreshToken(tx, row);
        await deps.audit.record(tx, ctx, {
          action: 'session_token.issued',
          organizationId: org?.organization.id ?? null,
          target: { type: 'session', id: p.session.id },
          metadata: { familyId },
        });
      });
      return pairOf(accessToken, refreshToken, row);
    },

    /** The refresh grant (steps at the top of this file). */
    async refresh(meta: RequestMeta, refreshToken: string): Promise<TokenPair> {
      await deps.rateLimits.consumeIp('token:ip', meta.ip);
      // 1.
      if (!refreshToken.startsWith(REFRESH_TOKEN_PREFIX) || refreshToken.length > REFRESH_TOKEN_MAX_LENGTH) throw invalidToken();
      const row = await findRefreshTokenByHash(db, sha256(refreshToken));
      if (!row) throw invalidToken();
      // 2.
      if (row.revoked_at) throw invalidToken();
      if (row.used_at) {
        await reuseDetected(meta, row);
        throw invalidToken();
      }
      // 3.
      const nowIso = clock.now().toISOString();
      if (row.expires_at <= nowIso) throw invalidToken();
      // 4. (slides the session's idle expiry, as a cookie request does)
      const live = await deps.sessions.authenticateById(row.session_id);
      if (!live || live.user.id !== row.user_id) throw invalidToken();
      const principal: Principal = { kind: 'session', user: live.user, session: live.session };
      // 5.
      let org: OrgGrant | null = null;
      if (row.organization_id) {
        try {
          org = await organizationGrant(meta, principal, row.organization_id);
        } catch (e) {
          if (!(e instanceof AppError) || e.code !== 'NOT_FOUND') throw e;
          // No longer a member (or the organization is gone): the family is over.
          await db.transaction().execute(async (tx) => {
            await revokeFamily(tx, row.family_id, nowIso);
            await deps.audit.record(tx, { ...meta, principal }, {
              action: 'session_token.revoked',
              organizationId: null,
              target: { type: 'session', id: row.session_id },
              metadata: { familyId: row.family_id, organizationId: row.organization_id, reason: 'not_a_member' },
            });
          });
          throw invalidToken();
        }
      }
      // 6.
      const next = newRefreshRow(live.session, live.user, org, row.family_id);
      const { token: accessToken } = await deps.accessTokens.mint(live.session, live.user, org);
      const spent = await db.transaction().execute(async (tx) => {
        if (!(await spendRefreshToken(tx, row.id, nowIso))) return false;
        await insertRefreshToken(tx, next.row);
        return true;
      });
      if (!spent) {
        // Another request spent it first: a copy of the token is in two hands.
        await reuseDetected(meta, row);
        throw invalidToken();
      }
      return pairOf(accessToken, next.token, next.row);
    },

    /**
     * POST /api/auth/token/revoke (RFC 7009): a refresh token revokes its whole family. Anything
     * else — an access token, an unknown or already revoked token — is answered the same (200):
     * access tokens are not revocable one by one; they end with their session, or at `exp`.
     */
    async revoke(meta: RequestMeta, token: string): Promise<void> {
      await deps.rateLimits.consumeIp('token:ip', meta.ip);
      if (!token.startsWith(REFRESH_TOKEN_PREFIX) || token.length > REFRESH_TOKEN_MAX_LENGTH) return;
      const row = await findRefreshTokenByHash(db, sha256(token));
      if (!row || row.revoked_at) return;
      const now = clock.now().toISOString();
      await db.transaction().execute(async (tx) => {
        const revokedCount = await revokeFamily(tx, row.family_id, now);
        if (revokedCount === 0) return;
        await deps.audit.record(tx, { ...meta, principal: null }, {
          action: 'session_token.revoked',
          organizationId: row.organization_id,
          target: { type: 'session', id: row.session_id },
          metadata: { familyId: row.family_id, userId: row.user_id, revokedCount, reason: 'revocation_request' },
        });
      });
    },
  };
}

export type SessionTokenService = ReturnType<typeof createSessionTokenService>;
