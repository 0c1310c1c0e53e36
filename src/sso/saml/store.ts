import type { Executor } from '../../db/database.js';
import { prepareQuery } from '../../db/prepared.js';

/** SQL of the SAML ACS's replay cache, shared by every instance through the database. */

export async function isReplayKeyLive(db: Executor, key: string, now: string): Promise<boolean> {
  const row = await db.selectFrom('replay_cache').select('key').where('key', '=', key).where('expires_at', '>', now).executeTakeFirst();
  return row !== undefined;
}

const insertReplayKey = prepareQuery((db, p: { key: string; expiresAt: string }) =>
  db.insertInto('replay_cache').values({ key: p.key, expires_at: p.expiresAt }).onConflict((oc) => oc.column('key').doNothing()),
);

/**
 * Record a one-time key until `expiresAt`. Atomic on every engine and instance: the primary key
 * decides, and `false` means someone recorded it first (a replay). Only when the key is taken is
 * an expired entry with that key removed and the insert tried once more.
 */
export async function recordReplayKey(db: Executor, key: string, expiresAt: string, now: string): Promise<boolean> {
  const insert = async () => (await insertReplayKey.changed(db, { key, expiresAt })) === 1;
  if (await insert()) return true;
  const expired = await db.deleteFrom('replay_cache').where('key', '=', key).where('expires_at', '<=', now).executeTakeFirst();
  return Number(expired.numDeletedRows) > 0 && (await insert());
}

export async function purgeExpiredReplayKeys(db: Executor, now: string): Promise<void> {
  await db.deleteFrom('replay_cache').where('expires_at', '<=', now).execute();
}

/** Take a live one-time key (delete it); true only for the one caller that removed it. */
export async function takeReplayKey(db: Executor, key: string, now: string): Promise<boolean> {
  const res = await db.deleteFrom('replay_cache').where('key', '=', key).where('expires_at', '>', now).executeTakeFirst();
  return Number(res.numDeletedRows) === 1;
}
