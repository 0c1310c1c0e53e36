import type { Executor } from '../db/database.js';
import type { ApiKeyRow, UserRow } from '../db/schema.js';
import { prepareQuery } from '../db/prepared.js';

export async function insertApiKey(db: Executor, row: ApiKeyRow): Promise<void> {
  await db.insertInto('api_keys').values(row).execute();
}

const apiKeyByHashQuery = prepareQuery((db, p: { keyHash: string }) => db.selectFrom('api_keys').selectAll().where('key_hash', '=', p.keyHash));
const userByIdQuery = prepareQuery((db, p: { id: string }) => db.selectFrom('users').selectAll().where('id', '=', p.id));
/**
 * The key with this hash and its user (every X-Api-Key request). Two single-table reads, not a
 * join: with planner statistics (ANALYZE, `PRAGMA optimize`) SQLite's STAT4 re-plans the join for
 * every new key, which cost more than the second read (measured: 11 µs against 4 µs).
 */
export async function findApiKeyWithUser(db: Executor, keyHash: string): Promise<{ key: ApiKeyRow; user: UserRow } | undefined> {
  const key = await apiKeyByHashQuery.first(db, { keyHash });
  if (!key) return undefined;
  const user = await userByIdQuery.first(db, { id: key.user_id });
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
