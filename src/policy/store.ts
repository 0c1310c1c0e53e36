import type { Executor } from '../db/database.js';
import type { OrganizationRow } from '../db/schema.js';
import { ACTIVE_STATUS } from '../sso/connections/store.js';

/** An organization this user belongs to that requires SSO (§6: the policy applies to members), if any. */
export async function findSsoRequiredMembership(db: Executor, userId: string): Promise<OrganizationRow | undefined> {
  return db
    .selectFrom('members')
    .innerJoin('organizations', 'organizations.id', 'members.organization_id')
    .selectAll('organizations')
    .where('members.user_id', '=', userId)
    .where('organizations.auth_required', '=', 'sso')
    .orderBy('organizations.id')
    .limit(1)
    .executeTakeFirst();
}

/** Whether the organization has an active, enabled SSO connection. */
export async function hasEnabledConnection(db: Executor, organizationId: string): Promise<boolean> {
  const row = await db
    .selectFrom('sso_connections')
    .select('id')
    .where('organization_id', '=', organizationId)
    .where('status', '=', ACTIVE_STATUS)
    .where('enabled', '=', 1)
    .executeTakeFirst();
  return row !== undefined;
}
