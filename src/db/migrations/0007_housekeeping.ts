import type { Kysely } from 'kysely';

/**
 * The periodic purge (src/jobs/housekeeping.ts) finds what has expired by these columns: without
 * an index every run would scan the whole of its largest tables. `sessions` is found by its last
 * activity (a live session was seen within its idle expiry), the others by their expiry.
 * `sso_flows` and `oidc_records` already have theirs (0001, 0003).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('sessions_last_seen').on('sessions').column('last_seen_at').execute();
  await db.schema.createIndex('refresh_tokens_expires').on('refresh_tokens').column('expires_at').execute();
  await db.schema.createIndex('one_time_tokens_expires').on('one_time_tokens').column('expires_at').execute();
  await db.schema.createIndex('replay_cache_expires').on('replay_cache').column('expires_at').execute();
  await db.schema.createIndex('rate_limits_expire').on('rate_limits').column('expire').execute();
}
