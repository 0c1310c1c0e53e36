import { newId } from '../../src/ids.js';
import type { TestGatehouse } from './app.js';

/**
 * Mark a domain verified for an organization straight in the database. DNS verification itself is
 * tested end to end in test/domains (real DNS server); policy tests only need its outcome.
 */
export async function seedVerifiedDomain(
  t: TestGatehouse,
  organizationId: string,
  domain: string,
  settings: { autoJoin?: boolean; requireApproval?: boolean; role?: 'member' | 'admin' } = {},
): Promise<string> {
  const now = t.clock.now().toISOString();
  const id = newId();
  await t.deps.db.insertInto('domains').values({
    id, organization_id: organizationId, domain, status: 'verified', verification_token: `seed-${id}`, verified_at: now, last_checked_at: now,
    auto_join: settings.autoJoin ? 1 : 0, require_approval: settings.requireApproval ? 1 : 0, join_role: settings.role ?? 'member', created_at: now, updated_at: now,
  }).execute();
  return id;
}

export async function markEmailVerified(t: TestGatehouse, userId: string): Promise<void> {
  await t.deps.db.updateTable('users').set({ email_verified: 1 }).where('id', '=', userId).execute();
  t.deps.sessionCache.clear(); // written around the services: the session cache cannot know
}

/** A confirmed TOTP factor row (the MFA API is tested in test/mfa; policy tests only need its existence). */
export async function seedConfirmedFactor(t: TestGatehouse, userId: string): Promise<void> {
  const now = t.clock.now().toISOString();
  await t.deps.db.insertInto('mfa_factors').values({ id: newId(), user_id: userId, type: 'totp', secret_enc: 'unused-by-policy-tests', confirmed_at: now, last_used_step: null, created_at: now }).execute();
}

export async function setSecurity(t: TestGatehouse, orgId: string, as: { cookie: string } | { apiKey: string }, body: Record<string, unknown>) {
  return t.request('PUT', `/api/user/organizations/${orgId}/settings/security`, { ...('apiKey' in as ? { apiKey: as.apiKey } : { as }), body });
}
