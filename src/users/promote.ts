import type { AuditService } from '../audit/service.js';
import type { Ctx } from '../context.js';
import type { Executor } from '../db/database.js';
import type { UserRow } from '../db/schema.js';
import { revokeAllUserApiKeys } from '../api-keys/store.js';
import { endSessions } from '../logout/session-end.js';
import { claimCounts, claimUnverifiedAccount } from './claim.js';
import { updateUser } from './store.js';
import type { SessionCacheDrops } from '../sessions/cache.js';

/**
 * `gatehouse admin create` on an account that already exists (SPEC §12). The operator vouches for
 * the address, not for whoever holds the account's sessions and API keys today: someone may have
 * signed the address up (never verified) and minted a key, waiting for the promotion. So before
 * the account becomes a superadmin, every session and API key it has is revoked — and an
 * unverified account is claimed as a whole (password, factors, identities, memberships: see
 * claim.ts). The new password is the operator's. Runs in the caller's transaction.
 */
export async function promoteToSuperadmin(
  tx: Executor,
  audit: { service: Pick<AuditService, 'record'>; ctx: Ctx; sessionCache: SessionCacheDrops },
  existing: UserRow,
  passwordHash: string,
  now: string,
): Promise<{ user: UserRow; metadata: Record<string, unknown> }> {
  let metadata: Record<string, unknown>;
  if (existing.email_verified !== 1) {
    const claim = await claimUnverifiedAccount(tx, audit, existing, now, { newPasswordHash: passwordHash });
    metadata = { ...claimCounts(claim), claimedUnverifiedAccount: true };
  } else {
    const ended = await endSessions(tx, { clock: { now: () => new Date(now) }, audit: audit.service, sessionCache: audit.sessionCache }, audit.ctx, { by: 'user', userId: existing.id }, 'superadmin_promoted');
    metadata = { sessionsRevoked: ended.sessions.length, apiKeysRevoked: await revokeAllUserApiKeys(tx, existing.id, now) };
  }
  await updateUser(tx, existing.id, { is_superadmin: 1, email_verified: 1, password_hash: passwordHash, updated_at: now }, audit.sessionCache);
  return { user: { ...existing, is_superadmin: 1, email_verified: 1, password_hash: passwordHash, updated_at: now }, metadata };
}
