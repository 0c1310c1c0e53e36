import type { Executor } from '../db/database.js';
import type { SetupLinkRow } from '../db/schema.js';

export async function insertSetupLink(db: Executor, row: SetupLinkRow): Promise<void> {
  await db.insertInto('setup_links').values(row).execute();
}

export async function findSetupLinkByTokenHash(db: Executor, tokenHash: string): Promise<SetupLinkRow | undefined> {
  return db.selectFrom('setup_links').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
}

export async function findSetupLink(db: Executor, id: string): Promise<SetupLinkRow | undefined> {
  return db.selectFrom('setup_links').selectAll().where('id', '=', id).executeTakeFirst();
}

/** An organization's links, newest first, with the creator's email. */
export async function listSetupLinks(db: Executor, organizationId: string, page: { limit: number; cursor: string | null }) {
  let q = db
    .selectFrom('setup_links')
    .leftJoin('users', 'users.id', 'setup_links.created_by')
    .selectAll('setup_links')
    .select('users.email as creator_email')
    .where('setup_links.organization_id', '=', organizationId);
  if (page.cursor) q = q.where('setup_links.id', '<', page.cursor);
  return q.orderBy('setup_links.id', 'desc').limit(page.limit + 1).execute();
}

export async function revokeSetupLink(db: Executor, organizationId: string, id: string, now: string): Promise<boolean> {
  const res = await db
    .updateTable('setup_links')
    .set({ revoked_at: now })
    .where('id', '=', id)
    .where('organization_id', '=', organizationId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

/** Bind the link to a browser: only if no browser holds it yet (two first opens at once: one wins). */
export async function bindSetupLink(db: Executor, id: string, bindingHash: string, now: string): Promise<boolean> {
  const res = await db
    .updateTable('setup_links')
    .set({ binding_hash: bindingHash, bound_at: now, last_used_at: now })
    .where('id', '=', id)
    .where('binding_hash', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

export async function touchSetupLink(db: Executor, id: string, now: string): Promise<void> {
  await db.updateTable('setup_links').set({ last_used_at: now }).where('id', '=', id).execute();
}
