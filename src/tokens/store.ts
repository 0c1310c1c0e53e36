import type { Executor } from '../db/database.js';
import type { RefreshTokenRow } from '../db/schema.js';

/** SQL of the session tokens (SPEC §8): refresh tokens, stored as SHA-256, grouped in families. */

export async function insertRefreshToken(db: Executor, row: RefreshTokenRow): Promise<void> {
  await db.insertInto('refresh_tokens').values(row).execute();
}

export async function findRefreshTokenByHash(db: Executor, tokenHash: string): Promise<RefreshTokenRow | undefined> {
  return db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
}

/**
 * Spend a refresh token: one conditional UPDATE, so of two concurrent refreshes of the same token
 * exactly one sees an affected row. False: it was already spent (or revoked) — the caller treats
 * that as reuse.
 */
export async function spendRefreshToken(db: Executor, id: string, now: string): Promise<boolean> {
  const res = await db
    .updateTable('refresh_tokens')
    .set({ used_at: now })
    .where('id', '=', id)
    .where('used_at', 'is', null)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Revoke every not-yet-revoked token of a family; returns how many. */
export async function revokeFamily(db: Executor, familyId: string, now: string): Promise<number> {
  const res = await db
    .updateTable('refresh_tokens')
    .set({ revoked_at: now })
    .where('family_id', '=', familyId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows);
}

/** Whether any token of the family has been revoked (a revoked family refuses its access tokens). */
export async function isFamilyRevoked(db: Executor, familyId: string): Promise<boolean> {
  const row = await db
    .selectFrom('refresh_tokens')
    .select('id')
    .where('family_id', '=', familyId)
    .where('revoked_at', 'is not', null)
    .limit(1)
    .executeTakeFirst();
  return !!row;
}

