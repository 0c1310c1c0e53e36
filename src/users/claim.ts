import type { Executor } from '../db/database.js';
import { revokeAllUserApiKeys } from '../api-keys/store.js';
import { deleteFactors, deleteRecoveryCodes } from '../mfa/store.js';
import { revokeAllUserSessions } from '../sessions/store.js';
import { deleteUserIdentitiesExcept } from '../sso/identities/store.js';
import { updateUser } from './store.js';

export interface ClaimResult {
  sessionsRevoked: number;
  apiKeysRevoked: number;
  factorsRemoved: number;
  identitiesRemoved: number;
  hadPassword: boolean;
}

/**
 * Pre-account-takeover defence. An account whose email was never verified may have been
 * registered by someone else with that address. When the address is proven at last — by the
 * mailbox (magic link, password reset) or by an organization's IdP for its verified domain (SSO
 * linking) — nothing set up before the proof survives: the password, sessions, API keys, TOTP
 * factor and recovery codes, and SSO identities other than the one linking now. Then the email
 * is marked verified. Runs in the caller's transaction, before auto-join can grant memberships.
 */
export async function claimUnverifiedAccount(
  tx: Executor,
  user: { id: string; password_hash: string | null },
  now: string,
  opts: { keepIdentityId?: string | null; newPasswordHash?: string | null } = {},
): Promise<ClaimResult> {
  const sessionsRevoked = await revokeAllUserSessions(tx, user.id, now);
  const apiKeysRevoked = await revokeAllUserApiKeys(tx, user.id, now);
  await deleteRecoveryCodes(tx, user.id);
  const factorsRemoved = await deleteFactors(tx, user.id);
  const identitiesRemoved = await deleteUserIdentitiesExcept(tx, user.id, opts.keepIdentityId ?? null);
  await updateUser(tx, user.id, { email_verified: 1, password_hash: opts.newPasswordHash ?? null, updated_at: now });
  return { sessionsRevoked, apiKeysRevoked, factorsRemoved, identitiesRemoved, hadPassword: user.password_hash !== null };
}
