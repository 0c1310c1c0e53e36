import type { Executor } from '../../db/database.js';

/** SQL of the SAML ACS: the shared replay cache and a read-only look at a pending flow. */

/** A pending flow by its lookup hash (read only; consuming it is the flow service's job). */
export async function findFlowByHash(db: Executor, lookupHash: string) {
  return db.selectFrom('sso_flows').selectAll().where('lookup_hash', '=', lookupHash).executeTakeFirst();
}

export async function isReplayKeyLive(db: Executor, key: string, now: string): Promise<boolean> {
  const row = await db.selectFrom('replay_cache').select('key').where('key', '=', key).where('expires_at', '>', now).executeTakeFirst();
  return row !== undefined;
}

/**
 * Record a one-time key until `expiresAt`. Atomic on every engine and instance: the primary key
 * decides, and `false` means someone recorded it first (a replay). An expired row with the same
 * key is removed first so a key can be reused once its old entry is dead.
 */
export async function recordReplayKey(db: Executor, key: string, expiresAt: string, now: string): Promise<boolean> {
  await db.deleteFrom('replay_cache').where('key', '=', key).where('expires_at', '<=', now).execute();
  const res = await db.insertInto('replay_cache').values({ key, expires_at: expiresAt }).onConflict((oc) => oc.column('key').doNothing()).executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0n) === 1;
}

export async function purgeExpiredReplayKeys(db: Executor, now: string): Promise<void> {
  await db.deleteFrom('replay_cache').where('expires_at', '<=', now).execute();
}
