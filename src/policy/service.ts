import type { Clock } from '../clock.js';
import type { Ctx, RequestMeta } from '../context.js';
import type { RateLimits } from '../http/rate-limit.js';
import type { Db, Executor } from '../db/database.js';
import type { AuthRequired, MfaState, OrganizationRow } from '../db/schema.js';
import type { AuditService } from '../audit/service.js';
import { emailDomainOrNull } from '../domains/normalize.js';
import { findVerifiedDomain } from '../domains/store.js';
import { AppError } from '../http/errors.js';
import { hasConfirmedFactor } from '../mfa/store.js';
import type { OrganizationService } from '../organizations/service.js';
import { findOrganization, updateOrganization } from '../organizations/store.js';
import { normalizeEmail } from '../users/store.js';
import { ssoLoginPath, ssoRequiredError } from './enforce.js';
import { findSsoRequiredMembership, hasEnabledConnection } from './store.js';

export interface SecuritySettings {
  authRequired: AuthRequired;
  requireMfa: boolean;
}

export type Discovery =
  | { method: 'sso'; url: string; organization: { name: string; slug: string }; ssoRequired: boolean }
  | { method: 'password'; methods: Array<'password' | 'magic_link'> };

const RANK: Record<AuthRequired, number> = { any: 0, mfa: 1, sso: 2 };

export const securityView = (o: OrganizationRow): SecuritySettings => ({ authRequired: o.auth_required, requireMfa: o.require_mfa === 1 });

/**
 * SPEC §6 rules that are not tied to one tenant request: which organization (if any) requires SSO
 * for an email or user, the MFA state a new session starts in, home-realm discovery, and the
 * security settings themselves.
 */
export function createPolicyService(deps: { db: Db; clock: Clock; audit: AuditService; organizations: OrganizationService; rateLimits: RateLimits }) {
  const { db, clock } = deps;

  /** The organization whose verified domain holds this email, if any. */
  async function domainOrganization(exec: Executor, email: string): Promise<OrganizationRow | undefined> {
    const domain = emailDomainOrNull(email);
    if (!domain) return undefined;
    const verified = await findVerifiedDomain(exec, domain);
    return verified ? findOrganization(exec, verified.organization_id) : undefined;
  }

  const requirementOf = (org: OrganizationRow, email: string) => ({ organizationId: org.id, slug: org.slug, name: org.name, ssoUrl: ssoLoginPath(org.slug, email) });

  /**
   * The organization that requires SSO of this person: by the email's verified domain, and — only
   * when `userId` is given, i.e. once the caller has proved who they are — by membership.
   * Anonymous callers learn only what the (public) domain says, never someone's memberships.
   */
  async function ssoRequirement(exec: Executor, who: { email: string; userId?: string }) {
    const byDomain = await domainOrganization(exec, who.email);
    const org = byDomain?.auth_required === 'sso' ? byDomain : who.userId ? await findSsoRequiredMembership(exec, who.userId) : undefined;
    return org ? requirementOf(org, who.email) : null;
  }

  return {
    ssoRequirement,

    /**
     * ssoRequirement's membership half alone, for a caller that has just asked the domain half
     * (password sign-in): the domain's organization is not looked up twice.
     */
    async ssoRequirementByMembership(exec: Executor, who: { email: string; userId: string }) {
      const org = await findSsoRequiredMembership(exec, who.userId);
      return org ? requirementOf(org, who.email) : null;
    },

    async assertNoSsoRequirement(exec: Executor, who: { email: string; userId?: string }): Promise<void> {
      const req = await ssoRequirement(exec, who);
      if (req) throw ssoRequiredError({ id: req.organizationId, slug: req.slug, name: req.name }, who.email);
    },

    /** A user with a confirmed factor always gets a second step (SPEC §6) after a non-SSO sign-in. */
    async initialMfaState(exec: Executor, userId: string): Promise<Extract<MfaState, 'pending' | 'none'>> {
      return (await hasConfirmedFactor(exec, userId)) ? 'pending' : 'none';
    },

    /** Home-realm discovery (SPEC §4.1): SSO when the email's domain is verified by an organization with enabled SSO. */
    async discover(meta: RequestMeta, email: string): Promise<Discovery> {
      await deps.rateLimits.consumeIp('sign-in:ip', meta.ip);
      email = normalizeEmail(email);
      const org = await domainOrganization(db, email);
      if (org && (await hasEnabledConnection(db, org.id))) {
        return { method: 'sso', url: ssoLoginPath(org.slug, email), organization: { name: org.name, slug: org.slug }, ssoRequired: org.auth_required === 'sso' };
      }
      return { method: 'password', methods: ['password', 'magic_link'] };
    },

    async getSecurity(ctx: Ctx, organizationId: string): Promise<SecuritySettings> {
      const { organization } = await deps.organizations.requireAccess(ctx, organizationId, 'security:manage', { superadminPolicyExempt: true });
      return securityView(organization);
    },

    /**
     * PUT settings/security: the whole object (omitted requireMfa = false). Raising to `sso` needs an
     * enabled connection. Lowering is reachable for an owner's API key and a superadmin because
     * neither is subject to the policy being lowered (see enforceOrganizationPolicy).
     */
    async putSecurity(ctx: Ctx, organizationId: string, input: { authRequired: AuthRequired; requireMfa?: boolean | undefined }): Promise<SecuritySettings> {
      const { organization } = await deps.organizations.requireAccess(ctx, organizationId, 'security:manage', { superadminPolicyExempt: true });
      const next: SecuritySettings = { authRequired: input.authRequired, requireMfa: input.requireMfa ?? false };
      const before = securityView(organization);
      return db.transaction().execute(async (tx) => {
        if (next.authRequired === 'sso' && !(await hasEnabledConnection(tx, organizationId))) {
          throw new AppError('SSO_NOT_CONFIGURED', 'Configure and enable an SSO connection (PUT settings/sso) before requiring SSO');
        }
        if (before.authRequired === next.authRequired && before.requireMfa === next.requireMfa) return next;
        await updateOrganization(tx, organizationId, { auth_required: next.authRequired, require_mfa: next.requireMfa ? 1 : 0, updated_at: clock.now().toISOString() });
        await deps.audit.record(tx, ctx, {
          action: 'organization.security_updated',
          organizationId,
          target: { type: 'organization', id: organizationId },
          metadata: { from: before, to: next, direction: RANK[next.authRequired] < RANK[before.authRequired] || (before.requireMfa && !next.requireMfa) ? 'lowered' : 'raised' },
        });
        return next;
      });
    },
  };
}

export type PolicyService = ReturnType<typeof createPolicyService>;
