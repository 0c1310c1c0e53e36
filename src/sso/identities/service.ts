import type { Ctx } from '../../context.js';
import type { Db } from '../../db/database.js';
import { notFound } from '../../http/errors.js';
import { paginate, type PageParams } from '../../http/pagination.js';
import type { AuditService } from '../../audit/service.js';
import type { OrganizationService } from '../../organizations/service.js';
import { deleteIdentity, listIdentities } from './store.js';

export function createIdentityService(deps: { db: Db; audit: AuditService; organizations: OrganizationService }) {
  return {
    async list(ctx: Ctx, organizationId: string, params: PageParams) {
      await deps.organizations.requireAccess(ctx, organizationId, 'sso_identities:manage');
      const rows = await listIdentities(deps.db, organizationId, params);
      return paginate(rows, params.limit, (r) => ({
        id: r.id,
        user: { id: r.user_id, email: r.user_email, name: r.user_name },
        connection: { id: r.connection_id, provider: r.provider, protocol: r.protocol, active: r.connection_status === 'active' },
        subject: r.subject,
        email: r.email,
        lastLoginAt: r.last_login_at,
        createdAt: r.created_at,
        claims: JSON.parse(r.claims) as Record<string, unknown>,
      }));
    },

    async unlink(ctx: Ctx, organizationId: string, identityId: string): Promise<void> {
      await deps.organizations.requireAccess(ctx, organizationId, 'sso_identities:manage');
      await deps.db.transaction().execute(async (tx) => {
        const row = await deleteIdentity(tx, organizationId, identityId);
        if (!row) throw notFound('SSO identity');
        await deps.audit.record(tx, ctx, {
          action: 'sso.identity_unlinked',
          organizationId,
          target: { type: 'sso_identity', id: identityId },
          metadata: { userId: row.user_id, connectionId: row.connection_id, subject: row.subject },
        });
      });
    },
  };
}

export type IdentityService = ReturnType<typeof createIdentityService>;
