import type { Principal } from '../context.js';
import type { Executor } from '../db/database.js';
import type { OrganizationRow } from '../db/schema.js';
import { AppError } from '../http/errors.js';
import { hasConfirmedFactor } from '../mfa/store.js';

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

/** Whether this session was authenticated by this organization's SSO. */
export const isSsoSessionOf = (session: { auth_method: string; organization_id: string | null }, organizationId: string) =>
  session.auth_method === 'sso' && session.organization_id === organizationId;

/**
 * SPEC §6 for a tenant-scoped request, after membership and role checks passed.
 * API keys are the documented break-glass path and platform superadmins must always be able to
 * lower a policy, so neither is subject to it.
 */
export async function enforceOrganizationPolicy(db: Executor, principal: Principal, org: OrganizationRow): Promise<void> {
  if (principal.kind !== 'session' || principal.user.is_superadmin === 1) return;
  const { session, user } = principal;
  if (org.auth_required === 'sso' && !isSsoSessionOf(session, org.id)) {
    throw ssoRequiredError(org, user.email);
  }
  if (org.auth_required === 'mfa' || org.require_mfa === 1) {
    // An SSO session of this organization counts as MFA-complete: its IdP is the authority.
    if (session.mfa_state === 'complete' || isSsoSessionOf(session, org.id)) return;
    if (await hasConfirmedFactor(db, user.id)) {
      throw new AppError('MFA_REQUIRED', `${org.name} requires multi-factor authentication: verify your second factor (POST /api/auth/mfa/verify)`);
    }
    throw new AppError('MFA_ENROLLMENT_REQUIRED', `${org.name} requires multi-factor authentication: set up an authenticator app first (POST /api/auth/mfa/totp/enroll)`);
  }
}
