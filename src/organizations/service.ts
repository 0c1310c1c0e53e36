import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import { pinOf, type Ctx, type Principal } from '../context.js';
import type { Db, Executor } from '../db/database.js';
import type { OrganizationRow, Role } from '../db/schema.js';
import { AppError, conflict, forbidden, notFound } from '../http/errors.js';
import { paginate, type Page, type PageParams } from '../http/pagination.js';
import { newId } from '../ids.js';
import type { AuditService } from '../audit/service.js';
import { isUniqueViolation } from '../db/database.js';
import { enforceOrganizationPolicy } from '../policy/enforce.js';
import { roleAllows, type Permission } from './permissions.js';
import { setupLinkGrants } from '../setup-links/service.js';
import {
  deleteOrganization, findMembership, findOrganization, insertMember, insertOrganization, listAllOrganizations,
  findRetiredSlug, listStrictPolicyMemberships, listUserMemberships, listUserMembershipsPage, retireSlug, slugExists, updateOrganization,
} from './store.js';
import type { MembershipSummary, SessionCache } from '../sessions/cache.js';
import { sessionDataChanged } from '../sessions/cache-sync.js';

export const SLUG_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$/;

export interface OrganizationView {
  id: string;
  name: string;
  slug: string;
  createdAt: string;
  updatedAt: string;
  role?: Role | null;
}

export function organizationView(o: OrganizationRow, role?: Role | null): OrganizationView {
  return {
    id: o.id,
    name: o.name,
    slug: o.slug,
    createdAt: o.created_at,
    updatedAt: o.updated_at,
    ...(role !== undefined ? { role } : {}),
  };
}

/** Turn a name into a slug candidate: lower-case ASCII letters, digits and single dashes. */
export function slugify(name: string): string {
  const base = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return base || 'org';
}

export interface Access {
  organization: OrganizationRow;
  /** The caller's role, or null for a superadmin who is not a member. */
  role: Role | null;
}

/** 409 for a slug that is in use or reserved: the answer does not say which (nor whose). */
const slugTaken = (slug: string) => conflict(`The slug "${slug}" is taken`, { field: 'slug' });

export function createOrganizationService(deps: { db: Db; clock: Clock; audit: AuditService; sessionCache: SessionCache }) {
  const { db, clock } = deps;

  /** Free for this organization: no other organization holds it now, none retired it. */
  async function slugAvailable(exec: Executor, slug: string): Promise<boolean> {
    return !(await slugExists(exec, slug)) && !(await findRetiredSlug(exec, slug));
  }

  /**
   * SPEC §12: a slug another organization retired cannot be taken. Run inside the writing
   * transaction, AFTER the organization row holds the slug: the unique index on
   * organizations.slug makes a concurrent rename or deletion that retires this slug commit first
   * (our write waits on its row), so this read sees its retired_slugs row and we roll back.
   */
  async function assertNotRetiredByAnother(tx: Executor, slug: string, organizationId: string): Promise<void> {
    const retired = await findRetiredSlug(tx, slug);
    if (retired && retired.organization_id !== organizationId) throw slugTaken(slug);
  }

  /**
   * Tenant access, in this order: authenticated → API key pin (403 elsewhere) → membership
   * (404 for non-members, never revealing existence) → role permission (403) → the organization's
   * sign-in policy for session callers (SPEC §6: SSO_REQUIRED, MFA_REQUIRED). Superadmins pass.
   */
  async function requireAccess(ctx: Ctx, organizationId: string, permission: Permission, opts: { superadminPolicyExempt?: boolean } = {}): Promise<Access> {
    if (!ctx.principal && ctx.setupLink) {
      // A setup link: its own organization only (404 elsewhere, as for a non-member), only what its scope grants.
      const organization = await findOrganization(db, organizationId);
      const grant = setupLinkGrants(ctx.setupLink, organization, permission);
      if (grant === 'not_found' || !organization) throw notFound('Organization');
      if (grant === 'forbidden') throw forbidden('This setup link does not allow this');
      return { organization, role: null };
    }
    const p = requirePrincipal(ctx);
    const pin = pinOf(p);
    if (pin && pin !== organizationId) {
      throw forbidden('This API key is pinned to another organization');
    }
    const organization = await findOrganization(db, organizationId);
    const membership = organization ? await findMembership(db, organizationId, p.user.id) : undefined;
    const superadmin = p.user.is_superadmin === 1;
    if (!organization || (!membership && !superadmin)) throw notFound('Organization');
    const role = membership?.role ?? null;
    if (!superadmin && !(role && roleAllows(role, permission))) {
      throw forbidden(`Your role (${role}) does not allow this`);
    }
    await enforceOrganizationPolicy(db, p, organization, { superadminExempt: opts.superadminPolicyExempt ?? false });
    return { organization, role };
  }

  /**
   * A session about to mint a credential that is not pinned to one organization (an unpinned API
   * key is exempt from every policy) must satisfy the policy of every organization it belongs to;
   * otherwise a session that never did an organization's SSO or MFA could mint its way around it.
   */
  async function requireAllMembershipPolicies(ctx: Ctx): Promise<void> {
    const p = requirePrincipal(ctx);
    if (p.kind !== 'session') return;
    for (const org of await listStrictPolicyMemberships(db, p.user.id)) await enforceOrganizationPolicy(db, p, org);
  }

  return {
    requireAccess,
    requireAllMembershipPolicies,

    async create(ctx: Ctx, input: { name: string; slug?: string | undefined }): Promise<OrganizationView> {
      const p = requirePrincipal(ctx);
      if (pinOf(p)) throw forbidden('An API key pinned to an organization cannot create organizations');
      const now = clock.now().toISOString();
      const name = input.name.trim();
      let slug = input.slug ?? slugify(name);
      if (!input.slug) {
        // Generated slugs skip the ones in use and the retired ones.
        for (let i = 0; i < 5 && !(await slugAvailable(db, slug)); i++) slug = `${slugify(name).slice(0, 40)}-${randomBytes(3).toString('hex')}`;
      }
      const org: OrganizationRow = {
        id: newId(), name, slug, auth_required: 'any', require_mfa: 0, created_at: now, updated_at: now,
      };
      try {
        await db.transaction().execute(async (tx) => {
          await insertOrganization(tx, org);
          await assertNotRetiredByAnother(tx, slug, org.id);
          await insertMember(tx, { organization_id: org.id, user_id: p.user.id, role: 'owner', created_at: now, updated_at: now }, deps.sessionCache);
          await deps.audit.record(tx, ctx, {
            action: 'organization.created',
            organizationId: org.id,
            target: { type: 'organization', id: org.id },
            metadata: { name, slug },
          });
        });
      } catch (e) {
        if (isUniqueViolation(e)) throw slugTaken(slug);
        throw e;
      }
      return organizationView(org, 'owner');
    },

    /** Every membership of a user (for the session answer). */
    /** The user's memberships (GET /api/auth/session), kept in the session cache with the user's sessions. */
    async listMine(userId: string): Promise<MembershipSummary[]> {
      const { hit, stamp } = deps.sessionCache.lookupMemberships(userId);
      if (hit) return hit;
      const list = (await listUserMemberships(db, userId)).map((m) => ({ id: m.organizationId, name: m.name, slug: m.slug, role: m.role }));
      deps.sessionCache.storeMemberships(userId, list, stamp);
      return list;
    },

    /** GET /api/user/organizations: one page; an API key pinned to an organization sees only that one (SPEC §12). */
    async listMinePage(ctx: Ctx, params: PageParams): Promise<Page<{ id: string; name: string; slug: string; role: Role }>> {
      const p = requirePrincipal(ctx);
      const rows = await listUserMembershipsPage(db, p.user.id, params, pinOf(p));
      return paginate(rows, params.limit, (m) => ({ id: m.id, name: m.name, slug: m.slug, role: m.role }));
    },

    async get(ctx: Ctx, organizationId: string): Promise<OrganizationView> {
      const { organization, role } = await requireAccess(ctx, organizationId, 'org:read');
      return organizationView(organization, role);
    },

    async update(ctx: Ctx, organizationId: string, input: { name?: string | undefined; slug?: string | undefined }): Promise<OrganizationView> {
      const { organization, role } = await requireAccess(ctx, organizationId, 'org:update');
      const patch = { name: input.name?.trim() ?? organization.name, slug: input.slug ?? organization.slug };
      const now = clock.now().toISOString();
      try {
        await db.transaction().execute(async (tx) => {
          await updateOrganization(tx, organizationId, { ...patch, updated_at: now });
          await sessionDataChanged(tx, deps.sessionCache, { organization: organizationId });
          if (patch.slug !== organization.slug) {
            // The organization that retired a slug may take it back; nobody else may.
            await assertNotRetiredByAnother(tx, patch.slug, organizationId);
            await retireSlug(tx, { slug: organization.slug, organization_id: organizationId, retired_at: now });
          }
          await deps.audit.record(tx, ctx, {
            action: 'organization.updated',
            organizationId,
            target: { type: 'organization', id: organizationId },
            metadata: { from: { name: organization.name, slug: organization.slug }, to: patch },
          });
        });
      } catch (e) {
        if (isUniqueViolation(e)) throw slugTaken(patch.slug);
        throw e;
      }
      return organizationView({ ...organization, ...patch, updated_at: now }, role);
    },

    async remove(ctx: Ctx, organizationId: string): Promise<void> {
      const { organization } = await requireAccess(ctx, organizationId, 'org:delete');
      await db.transaction().execute(async (tx) => {
        // Its login URLs, ACS URL and entity ID die with it: nobody else may serve them (SPEC §12).
        await retireSlug(tx, { slug: organization.slug, organization_id: organizationId, retired_at: clock.now().toISOString() });
        await deps.audit.record(tx, ctx, {
          action: 'organization.deleted',
          organizationId,
          target: { type: 'organization', id: organizationId },
          metadata: { name: organization.name, slug: organization.slug },
        });
        await deleteOrganization(tx, organizationId);
        await sessionDataChanged(tx, deps.sessionCache, { organization: organizationId });
      });
    },

    async listAll(ctx: Ctx, params: PageParams): Promise<Page<OrganizationView>> {
      const p = requirePrincipal(ctx);
      if (p.user.is_superadmin !== 1) throw forbidden('Platform superadmins only');
      // SPEC §12: a pinned key lists only its organization, on admin routes too.
      return paginate(await listAllOrganizations(db, params, pinOf(p)), params.limit, (o) => organizationView(o));
    },
  };
}

export function requirePrincipal(ctx: Ctx): Principal {
  if (!ctx.principal) throw new AppError('UNAUTHENTICATED', 'Sign in or present an API key');
  return ctx.principal;
}

export type OrganizationService = ReturnType<typeof createOrganizationService>;
