import type { Clock } from '../../clock.js';
import type { Ctx } from '../../context.js';
import { endSessions } from '../../logout/session-end.js';
import type { Db } from '../../db/database.js';
import { notFound } from '../../http/errors.js';
import { paginate, type PageParams } from '../../http/pagination.js';
import type { AuditService } from '../../audit/service.js';
import type { OrganizationService } from '../../organizations/service.js';
import { deleteIdentity, listIdentities } from './store.js';
import { viewOf } from '../idp-tokens/vault.js';
import { deleteIdpTokensOfIdentity } from '../idp-tokens/store.js';
import type { SessionCacheDrops } from '../../sessions/cache.js';

export function createIdentityService(deps: { db: Db; clock: Clock; audit: AuditService; organizations: OrganizationService; sessionCache: SessionCacheDrops }) {
  return {
    async list(ctx: Ctx, organizationId: string, params: PageParams) {
      await deps.organizations.requireAccess(ctx, organizationId, 'sso_identities:manage');
      const rows = await listIdentities(deps.db, organizationId, params);
      const now = deps.clock.now();
      return paginate(rows, params.limit, (r) => ({
        id: r.id,
        user: { id: r.user_id, email: r.user_email, name: r.user_name },
        connection: { id: r.connection_id, provider: r.provider, protocol: r.protocol, active: r.connection_status === 'active' },
        subject: r.subject,
        email: r.email,
        lastLoginAt: r.last_login_at,
        createdAt: r.created_at,
        claims: JSON.parse(r.claims) as Record<string, unknown>,
        // SPEC §9: the status of the IdP tokens kept for the app, null when none are.
        idpTokens: r.token_status
          ? viewOf({ status: r.token_status, access_token_expires_at: r.access_token_expires_at, scopes: r.token_scopes ?? '[]', obtained_at: r.token_obtained_at ?? r.last_login_at, last_refreshed_at: r.token_last_refreshed_at, last_error: r.token_last_error }, now)
          : null,
      }));
    },

    /**
     * Unlink an identity and end the sessions it created (SPEC §12): an admin unlinks an identity
     * to cut that IdP account off — a session it opened must not outlive the link. Sessions
     * record the connection, not the identity, so every SSO session of this user through this
     * connection ends (a user has one identity per connection in practice; a second one's
     * sessions ending too errs on the safe side). Its IdP tokens go with it (SPEC §9).
     */
    async unlink(ctx: Ctx, organizationId: string, identityId: string): Promise<{ sessionsRevoked: number }> {
      await deps.organizations.requireAccess(ctx, organizationId, 'sso_identities:manage');
      return deps.db.transaction().execute(async (tx) => {
        const row = await deleteIdentity(tx, organizationId, identityId);
        if (!row) throw notFound('SSO identity');
        await deleteIdpTokensOfIdentity(tx, identityId);
        const sessionsRevoked = (await endSessions(tx, deps, ctx, { by: 'user_connection', userId: row.user_id, connectionId: row.connection_id }, 'identity_unlinked')).sessions.length;
        await deps.audit.record(tx, ctx, {
          action: 'sso.identity_unlinked',
          organizationId,
          target: { type: 'sso_identity', id: identityId },
          metadata: { userId: row.user_id, connectionId: row.connection_id, subject: row.subject, sessionsRevoked },
        });
        return { sessionsRevoked };
      });
    },
  };
}

export type IdentityService = ReturnType<typeof createIdentityService>;
