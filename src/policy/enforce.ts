import type { Principal } from '../context.js';
import type { Executor } from '../db/database.js';
import type { OrganizationRow } from '../db/schema.js';
import { AppError } from '../http/errors.js';
import { hasConfirmedFactor } from '../mfa/store.js';
import { findActiveConnection } from '../sso/connections/store.js';

/** Where a user starts this organization's SSO (relative to the Gatehouse base URL, as in SPEC §4.1 discover). */
export function ssoLoginPath(slug: string, loginHint?: string): string {
  const path = `/api/auth/sso/${encodeURIComponent(slug)}/login`;
  return loginHint ? `${path}?login_hint=${encodeURIComponent(loginHint)}` : path;
}

export function ssoRequiredError(org: Pick<OrganizationRow, 'id' | 'slug' | 'name'>, loginHint?: string): AppError {
  return new AppError('SSO_REQUIRED', `${org.name} requires signing in with its single sign-on`, {
    ssoUrl: ssoLoginPath(org.slug, loginHint),
    organizationId: org.id,
    organizationSlug: org.slug,
  });
}

/**
 * Whether this session was authenticated by this organization's SSO through its current
 * connection: a session from a connection since replaced, disabled or deleted no longer counts.
 */
export async function isSsoSessionOf(db: Executor, session: { auth_method: string; organization_id: string | null; connection_id: string | null }, organizationId: string): Promise<boolean> {
  if (session.auth_method !== 'sso' || session.organization_id !== organizationId || !session.connection_id) return false;
  const connection = await findActiveConnection(db, organizationId);
  return connection?.id === session.connection_id && connection.enabled === 1;
}

/** Whether the organization's policy asks anything of a session (so `any` without requireMfa costs no query). */
export const hasStrictPolicy = (org: Pick<OrganizationRow, 'auth_required' | 'require_mfa'>) => org.auth_required !== 'any' || org.require_mfa === 1;

/**
 * SPEC §6 for a tenant-scoped request, after membership and role checks passed.
 * API keys are the documented break-glass path and are not subject to it. A platform superadmin
 * is, except where `superadminExempt` is set (the security settings: SPEC §6 says a superadmin can
 * always lower a policy).
 */
export async function enforceOrganizationPolicy(db: Executor, principal: Principal, org: OrganizationRow, opts: { superadminExempt?: boolean } = {}): Promise<void> {
  if (principal.kind !== 'session' || !hasStrictPolicy(org)) return;
  if (opts.superadminExempt && principal.user.is_superadmin === 1) return;
  const { session, user } = principal;
  const ssoSession = await isSsoSessionOf(db, session, org.id);
  if (org.auth_required === 'sso' && !ssoSession) {
    throw ssoRequiredError(org, user.email);
  }
  if (org.auth_required === 'mfa' || org.require_mfa === 1) {
    // An SSO session of this organization counts as MFA-complete: its IdP is the authority.
    if (session.mfa_state === 'complete' || ssoSession) return;
    if (await hasConfirmedFactor(db, user.id)) {
      throw new AppError('MFA_REQUIRED', `${org.name} requires multi-factor authentication: verify your second factor (POST /api/auth/mfa/verify)`);
    }
    throw new AppError('MFA_ENROLLMENT_REQUIRED', `${org.name} requires multi-factor authentication: set up an authenticator app first (POST /api/auth/mfa/totp/enroll)`);
  }
}
