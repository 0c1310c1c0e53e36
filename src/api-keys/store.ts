import type { Executor } from '../db/database.js';
import type { ApiKeyRow, UserRow } from '../db/schema.js';
import { prepareQuery } from '../db/prepared.js';
import { USER_AS_U, userFromJoined } from '../users/store.js';

export async function insertApiKey(db: Executor, row: ApiKeyRow): Promise<void> {
  await db.insertInto('api_keys').values(row).execute();
}

const apiKeyWithUserQuery = prepareQuery((db, p: { keyHash: string }) =>
  db.selectFrom('api_keys as k').innerJoin('users as u', 'u.id', 'k.user_id').selectAll('k').select(USER_AS_U).where('k.key_hash', '=', p.keyHash),
);
/** The key with this hash and its user, in one statement (every X-Api-Key request). */
export async function findApiKeyWithUser(db: Executor, keyHash: string): Promise<{ key: ApiKeyRow; user: UserRow } | undefined> {
  const row = await apiKeyWithUserQuery.first(db, { keyHash });
  if (!row) return undefined;
  const { u_id, u_email, u_name, u_password_hash, u_email_verified, u_is_superadmin, u_created_at, u_updated_at, ...key } = row;
  return { key, user: userFromJoined(row) };
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
