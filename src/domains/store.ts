import type { Executor } from '../db/database.js';

/** Whether `domain` is verified by this organization (the basis of SSO account linking). */
export async function isDomainVerifiedBy(db: Executor, organizationId: string, domain: string): Promise<boolean> {
  const row = await db
    .selectFrom('domains')
    .select('id')
    .where('organization_id', '=', organizationId)
    .where('domain', '=', domain.toLowerCase())
    .where('status', '=', 'verified')
    .executeTakeFirst();
  return !!row;
}
