import type { Clock } from '../clock.js';
import type { Ctx } from '../context.js';
import type { Db, Executor } from '../db/database.js';
import type { JoinRequestStatus, Role, UserRow } from '../db/schema.js';
import type { AuditService } from '../audit/service.js';
import { emailDomainOrNull } from '../domains/normalize.js';
import { findDomain, findVerifiedDomain } from '../domains/store.js';
import { AppError, notFound } from '../http/errors.js';
import { paginate, type Page, type PageParams } from '../http/pagination.js';
import { newId } from '../ids.js';
import type { OrganizationService } from './service.js';
import {
  decideJoinRequest, findAnyJoinRequest, findJoinRequest, findMembership, insertJoinRequestIfAbsent, insertMemberIfAbsent, listJoinRequests,
} from './store.js';
import type { SessionCacheDrops } from '../sessions/cache.js';

export interface JoinRequestView {
  id: string;
  userId: string;
  email: string;
  name: string | null;
  domainId: string | null;
  status: JoinRequestStatus;
  decidedBy: string | null;
  decidedAt: string | null;
  createdAt: string;
}

/** SPEC §7 auto-join, and the join requests it creates when the domain requires approval. */
export function createJoinRequestService(deps: { db: Db; clock: Clock; audit: AuditService; organizations: OrganizationService; sessionCache: SessionCacheDrops }) {
  const { db, clock } = deps;

  return {
    /**
     * Run at every sign-in (password, magic link, SSO) and when an email becomes verified.
     * Only a verified email at a verified domain with autoJoin counts; an unverified address proves nothing.
     * With approval, a request is created once: a pending, approved or rejected request for this
     * user and organization means no new one (admins are not asked twice).
     */
    async autoJoin(exec: Executor, ctx: Ctx, user: UserRow): Promise<void> {
      if (user.email_verified !== 1) return;
      const domainName = emailDomainOrNull(user.email);
      if (!domainName) return;
      const domain = await findVerifiedDomain(exec, domainName);
      if (!domain || domain.auto_join !== 1) return;
      const orgId = domain.organization_id;
      if (await findMembership(exec, orgId, user.id)) return;
      const now = clock.now().toISOString();
      if (domain.require_approval === 1) {
        if (await findAnyJoinRequest(exec, orgId, user.id)) return;
        const id = newId();
        if (await insertJoinRequestIfAbsent(exec, { id, organization_id: orgId, user_id: user.id, domain_id: domain.id, status: 'pending', decided_by: null, decided_at: null, created_at: now })) {
          await deps.audit.record(exec, ctx, { action: 'join_request.created', organizationId: orgId, target: { type: 'join_request', id }, metadata: { userId: user.id, email: user.email, domain: domain.domain } });
        }
        return;
      }
      if (await insertMemberIfAbsent(exec, { organization_id: orgId, user_id: user.id, role: domain.join_role, created_at: now, updated_at: now }, deps.sessionCache)) {
        await deps.audit.record(exec, ctx, { action: 'member.auto_joined', organizationId: orgId, target: { type: 'user', id: user.id }, metadata: { email: user.email, domain: domain.domain, role: domain.join_role } });
      }
    },

    async list(ctx: Ctx, organizationId: string, status: JoinRequestStatus | null, params: PageParams): Promise<Page<JoinRequestView>> {
      await deps.organizations.requireAccess(ctx, organizationId, 'join_requests:manage');
      const rows = await listJoinRequests(db, organizationId, status, params);
      return paginate(rows, params.limit, (r) => ({
        id: r.id, userId: r.user_id, email: r.email, name: r.name, domainId: r.domain_id, status: r.status,
        decidedBy: r.decided_by, decidedAt: r.decided_at, createdAt: r.created_at,
      }));
    },

    /** Approve: the user joins with the domain's role (member when the domain is gone). */
    async approve(ctx: Ctx, organizationId: string, requestId: string): Promise<{ id: string; status: 'approved'; userId: string; role: Role }> {
      await deps.organizations.requireAccess(ctx, organizationId, 'join_requests:manage');
      return db.transaction().execute(async (tx) => {
        const request = await findJoinRequest(tx, organizationId, requestId);
        if (!request) throw notFound('Join request');
        const now = clock.now().toISOString();
        if (!(await decideJoinRequest(tx, request.id, 'approved', ctx.principal?.user.id ?? null, now))) {
          throw new AppError('CONFLICT', 'This join request was already decided');
        }
        const role: Role = (request.domain_id ? await findDomain(tx, organizationId, request.domain_id) : undefined)?.join_role ?? 'member';
        await insertMemberIfAbsent(tx, { organization_id: organizationId, user_id: request.user_id, role, created_at: now, updated_at: now }, deps.sessionCache);
        await deps.audit.record(tx, ctx, { action: 'join_request.approved', organizationId, target: { type: 'join_request', id: request.id }, metadata: { userId: request.user_id, role } });
        return { id: request.id, status: 'approved' as const, userId: request.user_id, role };
      });
    },

    async reject(ctx: Ctx, organizationId: string, requestId: string): Promise<{ id: string; status: 'rejected'; userId: string }> {
      await deps.organizations.requireAccess(ctx, organizationId, 'join_requests:manage');
      return db.transaction().execute(async (tx) => {
        const request = await findJoinRequest(tx, organizationId, requestId);
        if (!request) throw notFound('Join request');
        if (!(await decideJoinRequest(tx, request.id, 'rejected', ctx.principal?.user.id ?? null, clock.now().toISOString()))) {
          throw new AppError('CONFLICT', 'This join request was already decided');
        }
        await deps.audit.record(tx, ctx, { action: 'join_request.rejected', organizationId, target: { type: 'join_request', id: request.id }, metadata: { userId: request.user_id } });
        return { id: request.id, status: 'rejected' as const, userId: request.user_id };
      });
    },
  };
}

export type JoinRequestService = ReturnType<typeof createJoinRequestService>;
