import type { Executor } from '../db/database.js';
import type { ApiKeyRow, UserRow } from '../db/schema.js';

export async function insertApiKey(db: Executor, row: ApiKeyRow): Promise<void> {
  await db.insertInto('api_keys').values(row).execute();
}

export async function findApiKeyWithUser(db: Executor, keyHash: string): Promise<{ key: ApiKeyRow; user: UserRow } | undefined> {
  const key = await db.selectFrom('api_keys').selectAll().where('key_hash', '=', keyHash).executeTakeFirst();
  if (!key) return undefined;
  const user = await db.selectFrom('users').selectAll().where('id', '=', key.user_id).executeTakeFirst();
  return user ? { key, user } : undefined;
}

export async function findApiKey(db: Executor, userId: string, id: string): Promise<ApiKeyRow | undefined> {
  return db.selectFrom('api_keys').selectAll().where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
}

/** Live keys of a user, newest first; `pinnedTo` narrows to the keys pinned to that organization. */
export async function listApiKeys(db: Executor, userId: string, page: { limit: number; cursor: string | null }, pinnedTo: string | null = null) {
  let q = db.selectFrom('api_keys').selectAll().where('user_id', '=', userId).where('revoked_at', 'is', null);
  if (pinnedTo) q = q.where('organization_id', '=', pinnedTo);
  if (page.cursor) q = q.where('id', '<', page.cursor);
  return q.orderBy('id', 'desc').limit(page.limit + 1).execute();
}

export async function revokeApiKey(db: Executor, userId: string, id: string, now: string): Promise<boolean> {
  const res = await db
    .updateTable('api_keys')
    .set({ revoked_at: now })
    .where('id', '=', id)
    .where('user_id', '=', userId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

export async function touchApiKey(db: Executor, id: string, now: string): Promise<void> {
  await db.updateTable('api_keys').set({ last_used_at: now }).where('id', '=', id).execute();
}

/** Revoke every live key of a user; returns how many. */
export async function revokeAllUserApiKeys(db: Executor, userId: string, now: string): Promise<number> {
  const res = await db.updateTable('api_keys').set({ revoked_at: now }).where('user_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst();
  return Number(res.numUpdatedRows);
}
