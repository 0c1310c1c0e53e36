import type { Executor } from '../db/database.js';
import type { OrganizationRow } from '../db/schema.js';

/** The organizations this user belongs to that require SSO (§6: the policy applies to members). */
export async function findSsoRequiredMemberships(db: Executor, userId: string): Promise<OrganizationRow[]> {
  return db
    .selectFrom('members')
    .innerJoin('organizations', 'organizations.id', 'members.organization_id')
    .selectAll('organizations')
    .where('members.user_id', '=', userId)
    .where('organizations.auth_required', '=', 'sso')
    .orderBy('organizations.id')
    .execute();
}

/** Whether the organization has an active, enabled SSO connection. */
export async function hasEnabledConnection(db: Executor, organizationId: string): Promise<boolean> {
  const row = await db
    .selectFrom('sso_connections')
    .select('id')
    .where('organization_id', '=', organizationId)
    .where('status', '=', 'active')
    .where('enabled', '=', 1)
    .executeTakeFirst();
  return row !== undefined;
}
