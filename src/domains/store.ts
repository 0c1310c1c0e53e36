import { sql, type Selectable, type Updateable } from 'kysely';
import type { Executor } from '../db/database.js';
import type { DomainsTable } from '../db/schema.js';

export type DomainRow = Selectable<DomainsTable>;

/**
 * `status = 'verified'` as a literal, never a bound parameter: only then can SQLite use the
 * partial unique index domains_one_verified (domain, WHERE status = 'verified') for a lookup by
 * domain alone — with a parameter it scans every organization's domains (on each password
 * sign-in and SSO login). PostgreSQL plans with the value and uses it either way.
 */
export const VERIFIED_STATUS = sql.lit('verified' as const);

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

/** The one verified row for `domain` (normalised), whichever organization holds it. */
export async function findVerifiedDomain(exec: Executor, domain: string): Promise<DomainRow | undefined> {
  return exec
    .selectFrom('domains')
    .selectAll()
    .where('domain', '=', domain.toLowerCase())
    .where('status', '=', VERIFIED_STATUS)
    .executeTakeFirst();
}

export async function insertDomain(exec: Executor, row: DomainRow): Promise<void> {
  await exec.insertInto('domains').values(row).execute();
}

export async function findDomain(exec: Executor, organizationId: string, id: string): Promise<DomainRow | undefined> {
  return exec.selectFrom('domains').selectAll().where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
}

export async function findDomainByName(exec: Executor, organizationId: string, domain: string): Promise<DomainRow | undefined> {
  return exec.selectFrom('domains').selectAll().where('organization_id', '=', organizationId).where('domain', '=', domain).executeTakeFirst();
}

export async function listDomains(exec: Executor, organizationId: string, page: { limit: number; cursor: string | null }): Promise<DomainRow[]> {
  let q = exec.selectFrom('domains').selectAll().where('organization_id', '=', organizationId);
  if (page.cursor) q = q.where('id', '<', page.cursor);
  return q.orderBy('id', 'desc').limit(page.limit + 1).execute();
}

export async function deleteDomain(exec: Executor, organizationId: string, id: string): Promise<boolean> {
  const res = await exec.deleteFrom('domains').where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
  return Number(res.numDeletedRows) > 0;
}

/**
 * Pending → verified. The partial unique index `domains_one_verified` makes this fail with a
 * unique violation when another organization verified the same domain first (on both engines).
 */
export async function markDomainVerified(exec: Executor, id: string, now: string): Promise<boolean> {
  const res = await exec
    .updateTable('domains')
    .set({ status: 'verified', verified_at: now, last_checked_at: now, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

export async function markDomainChecked(exec: Executor, id: string, now: string): Promise<void> {
  await exec.updateTable('domains').set({ last_checked_at: now }).where('id', '=', id).execute();
}

export async function updateDomain(exec: Executor, organizationId: string, id: string, patch: Updateable<DomainsTable>): Promise<boolean> {
  const res = await exec.updateTable('domains').set(patch).where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}
