import type { AuditService } from '../audit/service.js';
import type { Ctx } from '../context.js';
import type { Executor } from '../db/database.js';
import type { Role } from '../db/schema.js';
import { revokeAllUserApiKeys } from '../api-keys/store.js';
import { deleteFactors, deleteRecoveryCodes } from '../mfa/store.js';
import { deleteUserMemberships } from '../organizations/store.js';
import { deleteAllUserSessions } from '../sessions/store.js';
import { endSessions } from '../logout/session-end.js';
import { deleteUserIdentitiesExcept } from '../sso/identities/store.js';
import { updateUser } from './store.js';
import type { SessionCacheDrops } from '../sessions/cache.js';

export interface ClaimResult {
  sessionsRevoked: number;
  apiKeysRevoked: number;
  factorsRemoved: number;
  identitiesRemoved: number;
  membershipsRemoved: Array<{ organizationId: string; role: Role; lastOwner: boolean }>;
  hadPassword: boolean;
}

/** The audit `reason` of a membership the claim removed. */
export const CLAIM_REMOVAL_REASON = 'unverified_account_claimed';

/**
 * Pre-account-takeover defence. An account whose email was never verified may have been
 * registered by someone else with that address. When the address is proven at last — by the
 * mailbox (magic link, password reset), by an organization's IdP for its verified domain (SSO
 * linking) or by the operator (`gatehouse admin create`) — nothing set up before the proof
 * survives: the password, sessions (deleted, so their addresses stop counting as the account's
 * known addresses), API keys, TOTP factor and recovery codes, SSO identities
 * other than the one linking now, and every organization membership (SPEC §12). Then the email is
 * marked verified. Runs in the caller's transaction, before auto-join can grant memberships.
 *
 * Memberships: an unverified account cannot accept an invitation without verifying (accepting
 * proves the mailbox) nor auto-join, so every membership it holds is one it made itself — an
 * organization it created, possibly with SSO required through an IdP of its own, which would
 * otherwise stand between the real owner and the address. The last-owner rule does not hold
 * here: an organization whose only owner was the unproven holder belonged to that holder, not to
 * the person claiming the address; it is left without owners (a superadmin can still reach it).
 * Each removal is audited as `member.removed` with `reason: unverified_account_claimed` and
 * `lastOwner`. SSO linking keeps the membership in the linking organization (`keepOrganizationId`):
 * that organization proved the email's domain by DNS and its IdP proves the address now, so a
 * place in it was given by those who control the domain (or the holder proved the domain itself).
 */
export async function claimUnverifiedAccount(
  tx: Executor,
  audit: { service: Pick<AuditService, 'record'>; ctx: Ctx; sessionCache: SessionCacheDrops },
  user: { id: string; password_hash: string | null },
  now: string,
  opts: { keepIdentityId?: string | null; keepOrganizationId?: string | null; newPasswordHash?: string | null } = {},
): Promise<ClaimResult> {
  // Deleted, not revoked: a revoked session still makes its address "known" to the account for
  // 30 days (auth/account-limits.ts), and the unproven holder's addresses are not the owner's.
  // Ended first (refresh tokens revoked, the apps they signed into told), then deleted.
  const ended = await endSessions(tx, { clock: { now: () => new Date(now) }, audit: audit.service, sessionCache: audit.sessionCache }, audit.ctx, { by: 'user', userId: user.id }, 'unverified_account_claimed');
  const sessionsRevoked = ended.sessions.length + (await deleteAllUserSessions(tx, user.id));
  const apiKeysRevoked = await revokeAllUserApiKeys(tx, user.id, now);
  await deleteRecoveryCodes(tx, user.id);
  const factorsRemoved = await deleteFactors(tx, user.id);
  const identitiesRemoved = await deleteUserIdentitiesExcept(tx, user.id, opts.keepIdentityId ?? null);
  const membershipsRemoved = await deleteUserMemberships(tx, user.id, audit.sessionCache, opts.keepOrganizationId ?? null);
  for (const m of membershipsRemoved) {
    await audit.service.record(tx, audit.ctx, {
      action: 'member.removed',
      organizationId: m.organizationId,
      target: { type: 'user', id: user.id },
      metadata: { role: m.role, reason: CLAIM_REMOVAL_REASON, lastOwner: m.lastOwner },
    });
  }
  await updateUser(tx, user.id, { email_verified: 1, password_hash: opts.newPasswordHash ?? null, updated_at: now }, audit.sessionCache);
  return { sessionsRevoked, apiKeysRevoked, factorsRemoved, identitiesRemoved, membershipsRemoved, hadPassword: user.password_hash !== null };
}

/** The counts of a claim, for the audit record of the proof (`user.email_verified`, `user.password_reset`, …). */
export function claimCounts(claim: ClaimResult) {
  return {
    sessionsRevoked: claim.sessionsRevoked,
    apiKeysRevoked: claim.apiKeysRevoked,
    factorsRemoved: claim.factorsRemoved,
    identitiesRemoved: claim.identitiesRemoved,
    membershipsRemoved: claim.membershipsRemoved.length,
  };
}

/**
 * Whose SSO requirement stands in the way of proving an address (magic link, password reset):
 * the verified domain's always (public, proven by DNS); memberships only of an account that had
 * already proven the address. The memberships of an unverified account are the unproven holder's
 * doing and are removed by the claim, so they never block the real owner (SPEC §12).
 */
export function ssoSubjectForProof(email: string, user: { id: string; email_verified: number } | null | undefined): { email: string; userId?: string } {
  return user && user.email_verified === 1 ? { email, userId: user.id } : { email };
}
