import type { Clock } from '../clock.js';
import type { Ctx } from '../context.js';
import type { Db, Executor } from '../db/database.js';
import type { Role } from '../db/schema.js';
import { AppError, forbidden, notFound } from '../http/errors.js';
import { paginate, type Page, type PageParams } from '../http/pagination.js';
import type { AuditService } from '../audit/service.js';
import type { OrganizationService } from './service.js';
import { endSessions } from '../logout/session-end.js';
import { countOwners, deleteMember, findMembership, listMembers, updateMemberRole, updateOrganization } from './store.js';
import type { SessionCacheDrops } from '../sessions/cache.js';

export interface MemberView {
  userId: string;
  email: string;
  name: string | null;
  role: Role;
  joinedAt: string;
}

export function createMemberService(deps: { db: Db; clock: Clock; audit: AuditService; organizations: OrganizationService; sessionCache: SessionCacheDrops }) {
  const { db, clock } = deps;

  /**
   * Owner changes are serialised per organization: the no-op update takes the organization's
   * row lock on PostgreSQL (SQLite runs one write transaction at a time anyway), so two
   * concurrent demotions cannot both see "another owner remains".
   */
  async function lockOrganization(tx: Executor, organizationId: string) {
    await updateOrganization(tx, organizationId, { updated_at: clock.now().toISOString() });
  }

  async function assertNotLastOwner(tx: Executor, organizationId: string) {
    if ((await countOwners(tx, organizationId)) <= 1) {
      throw new AppError('LAST_OWNER', 'The last owner can be neither removed nor demoted; make someone else owner first');
    }
  }

  return {
    async list(ctx: Ctx, organizationId: string, params: PageParams): Promise<Page<MemberView>> {
      await deps.organizations.requireAccess(ctx, organizationId, 'members:manage');
      const rows = await listMembers(db, organizationId, params);
      return paginate(rows, params.limit, (r) => ({ userId: r.id, email: r.email, name: r.name, role: r.role, joinedAt: r.joinedAt }));
    },

    async changeRole(ctx: Ctx, organizationId: string, userId: string, role: Role): Promise<{ userId: string; role: Role }> {
      const access = await deps.organizations.requireAccess(ctx, organizationId, 'members:manage');
      const actingAsOwner = access.role === 'owner' || access.role === null; // null = superadmin
      await db.transaction().execute(async (tx) => {
        await lockOrganization(tx, organizationId);
        const target = await findMembership(tx, organizationId, userId);
        if (!target) throw notFound('Member');
        if (!actingAsOwner && (target.role === 'owner' || role === 'owner')) throw forbidden('Only an owner can grant or take away the owner role');
        if (target.role === role) return;
        if (target.role === 'owner') await assertNotLastOwner(tx, organizationId);
        await updateMemberRole(tx, organizationId, userId, role, clock.now().toISOString(), deps.sessionCache);
        await deps.audit.record(tx, ctx, {
          action: 'member.role_changed',
          organizationId,
          target: { type: 'user', id: userId },
          metadata: { from: target.role, to: role },
        });
      });
      return { userId, role };
    },

    /** Remove a member; any member may remove themselves (leave). */
    async remove(ctx: Ctx, organizationId: string, userId: string): Promise<void> {
      const self = ctx.principal?.user.id === userId;
      const access = await deps.organizations.requireAccess(ctx, organizationId, self ? 'org:read' : 'members:manage');
      const actingAsOwner = access.role === 'owner' || access.role === null;
      await db.transaction().execute(async (tx) => {
        await lockOrganization(tx, organizationId);
        const target = await findMembership(tx, organizationId, userId);
        if (!target) throw notFound('Member');
        if (!self && !actingAsOwner && target.role === 'owner') throw forbidden('Only an owner can remove an owner');
        if (target.role === 'owner') await assertNotLastOwner(tx, organizationId);
        await deleteMember(tx, organizationId, userId, deps.sessionCache);
        // The sessions that signed in to this organization (its SSO) end with the membership.
        const ended = await endSessions(tx, deps, ctx, { by: 'user_organization', userId, organizationId }, 'member_removed');
        await deps.audit.record(tx, ctx, {
          action: self ? 'member.left' : 'member.removed',
          organizationId,
          target: { type: 'user', id: userId },
          metadata: { role: target.role, sessionsRevoked: ended.sessions.length },
        });
      });
    },
  };
}

export type MemberService = ReturnType<typeof createMemberService>;
