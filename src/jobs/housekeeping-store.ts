import { sql, type DeleteResult } from 'kysely';
import type { DatabaseHandle, Db, Executor } from '../db/database.js';
import { acquireJobLease, releaseJobLease } from './leases.js';

/**
 * SQL of the housekeeping purge (jobs/housekeeping.ts decides what and when). Every purge is one
 * bounded statement, `DELETE FROM t WHERE key IN (SELECT key FROM t WHERE … LIMIT n)`, the same
 * on SQLite and PostgreSQL; it returns how many rows went, so the caller loops until a batch comes
 * back short.
 */

const deleted = (res: DeleteResult) => Number(res.numDeletedRows);

// ---- the lock: one purging instance at a time

/** PostgreSQL advisory lock keys: this constant ("ghkp"), and the schema, so two deployments in one database never block each other. */
const ADVISORY_LOCK_KEY = 0x6768_6b70;
/** SQLite: the job lease (job_leases) held for the run. */
const LEASE_NAME = 'housekeeping';

export type Locked<T> = { ran: true; value: T } | { ran: false };

/**
 * Run `work` only when no other instance is purging. PostgreSQL: a transaction-scoped advisory
 * lock, taken without waiting, in a transaction that stays open (idle, holding no row lock) while
 * `work` runs its batches on other connections of the pool; the lock goes with that transaction,
 * also when the process dies. SQLite (one file, maybe several processes): the job lease, released
 * at the end and running out by itself after `lease.until` if the process dies mid-run.
 */
export async function withPurgeLock<T>(
  handle: Pick<DatabaseHandle, 'db' | 'engine'>,
  lease: { holder: string; now: string; until: string },
  work: () => Promise<T>,
): Promise<Locked<T>> {
  if (handle.engine === 'postgres') {
    return handle.db.transaction().execute(async (tx): Promise<Locked<T>> => {
      const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(${ADVISORY_LOCK_KEY}, hashtext(current_schema())) as locked`.execute(tx);
      if (!rows[0]?.locked) return { ran: false };
      return { ran: true, value: await work() };
    });
  }
  if (!(await acquireJobLease(handle.db, LEASE_NAME, lease.holder, lease.now, lease.until))) return { ran: false };
  try {
    return { ran: true, value: await work() };
  } finally {
    await releaseJobLease(handle.db, LEASE_NAME, lease.holder);
  }
}

// ---- sessions and what hangs off them

export interface SessionPurgeCutoffs {
  /** Last activity before this (the known-address window of the account limits). */
  lastSeenBefore: string;
  /** Expired or revoked before this (the grace period). */
  endedBefore: string;
}

/**
 * One batch of ended sessions, children first, in one transaction: their refresh tokens and
 * session_clients rows (both would also go by ON DELETE CASCADE), then the sessions. A session
 * with a pending back-channel logout delivery is kept until the delivery is finished. The first
 * statement writes, so on SQLite the transaction holds the write lock before it reads anything.
 * The three statements pick the same sessions (same query, same order); should a concurrent change
 * make them differ, the cascade still keeps every foreign key whole.
 */
export async function purgeEndedSessions(db: Db, cutoffs: SessionPurgeCutoffs, limit: number): Promise<{ sessions: number; refresh_tokens: number; session_clients: number }> {
  return db.transaction().execute(async (tx) => {
    const ended = () =>
      tx
        .selectFrom('sessions as s')
        .select('s.id')
        .where('s.last_seen_at', '<', cutoffs.lastSeenBefore)
        .where((eb) => eb.or([eb('s.expires_at', '<', cutoffs.endedBefore), eb('s.revoked_at', '<', cutoffs.endedBefore)]))
        .where((eb) =>
          eb.not(eb.exists(eb.selectFrom('logout_outbox as o').select('o.id').whereRef('o.session_id', '=', 's.id').where('o.status', '=', 'pending'))),
        )
        .orderBy('s.last_seen_at')
        .orderBy('s.id')
        .limit(limit);
    const refreshTokens = deleted(await tx.deleteFrom('refresh_tokens').where('session_id', 'in', ended()).executeTakeFirst());
    const sessionClients = deleted(await tx.deleteFrom('session_clients').where('session_id', 'in', ended()).executeTakeFirst());
    const sessions = deleted(await tx.deleteFrom('sessions').where('id', 'in', ended()).executeTakeFirst());
    return { sessions, refresh_tokens: refreshTokens, session_clients: sessionClients };
  });
}

/**
 * Refresh tokens of families that are over: every token of the family expired before `before`.
 * A spent token of a family still alive stays, so presenting it again is still caught as reuse.
 */
export async function purgeFinishedRefreshFamilies(db: Executor, before: string, limit: number): Promise<number> {
  const over = db
    .selectFrom('refresh_tokens as r')
    .select('r.id')
    .where('r.expires_at', '<', before)
    .where((eb) => eb.not(eb.exists(eb.selectFrom('refresh_tokens as f').select('f.id').whereRef('f.family_id', '=', 'r.family_id').where('f.expires_at', '>=', before))))
    .limit(limit);
  return deleted(await db.deleteFrom('refresh_tokens').where('id', 'in', over).executeTakeFirst());
}

/** The OpenID Provider's records past their expiry (never found again: oidc-provider/adapter.ts). */
export async function purgeExpiredOidcRecords(db: Executor, now: string, limit: number): Promise<number> {
  const expired = db.selectFrom('oidc_records').select(['model', 'id']).where('expires_at', '<=', now).limit(limit);
  return deleted(await db.deleteFrom('oidc_records').where((eb) => eb(eb.refTuple('model', 'id'), 'in', expired.$asTuple('model', 'id'))).executeTakeFirst());
}

/** Back-channel logout deliveries delivered or abandoned before `before` (pending ones always stay). */
export async function purgeFinishedOutboxRows(db: Executor, before: string, limit: number): Promise<number> {
  const finished = db.selectFrom('logout_outbox').select('id').where('status', '!=', 'pending').where('finished_at', '<', before).limit(limit);
  return deleted(await db.deleteFrom('logout_outbox').where('id', 'in', finished).executeTakeFirst());
}

// ---- one-time values

export async function purgeExpiredFlows(db: Executor, before: string, limit: number): Promise<number> {
  const expired = db.selectFrom('sso_flows').select('id').where('expires_at', '<', before).limit(limit);
  return deleted(await db.deleteFrom('sso_flows').where('id', 'in', expired).executeTakeFirst());
}

export async function purgeExpiredReplayKeys(db: Executor, now: string, limit: number): Promise<number> {
  const expired = db.selectFrom('replay_cache').select('key').where('expires_at', '<=', now).limit(limit);
  return deleted(await db.deleteFrom('replay_cache').where('key', 'in', expired).executeTakeFirst());
}

export async function purgeExpiredOneTimeTokens(db: Executor, before: string, limit: number): Promise<number> {
  const expired = db.selectFrom('one_time_tokens').select('id').where('expires_at', '<', before).limit(limit);
  return deleted(await db.deleteFrom('one_time_tokens').where('id', 'in', expired).executeTakeFirst());
}

/** Invitations that expired or were revoked before `before` (an accepted one expires as well). */
export async function purgeEndedInvitations(db: Executor, before: string, limit: number): Promise<number> {
  const ended = db
    .selectFrom('invitations')
    .select('id')
    .where((eb) => eb.or([eb('expires_at', '<', before), eb('revoked_at', '<', before)]))
    .limit(limit);
  return deleted(await db.deleteFrom('invitations').where('id', 'in', ended).executeTakeFirst());
}

export async function purgeEndedSetupLinks(db: Executor, before: string, limit: number): Promise<number> {
  const ended = db
    .selectFrom('setup_links')
    .select('id')
    .where((eb) => eb.or([eb('expires_at', '<', before), eb('revoked_at', '<', before)]))
    .limit(limit);
  return deleted(await db.deleteFrom('setup_links').where('id', 'in', ended).executeTakeFirst());
}

/** TOTP enrolments never confirmed, started before `before`. */
export async function purgeUnconfirmedFactors(db: Executor, before: string, limit: number): Promise<number> {
  const stale = db.selectFrom('mfa_factors').select('id').where('confirmed_at', 'is', null).where('created_at', '<', before).limit(limit);
  return deleted(await db.deleteFrom('mfa_factors').where('id', 'in', stale).executeTakeFirst());
}

/** IdP token rows left `revoked` or `refresh_failed` (no token in them any more) since before `before`. */
export async function purgeDeadIdpTokens(db: Executor, before: string, limit: number): Promise<number> {
  const dead = db.selectFrom('sso_idp_tokens').select('id').where('status', 'in', ['revoked', 'refresh_failed']).where('updated_at', '<', before).limit(limit);
  return deleted(await db.deleteFrom('sso_idp_tokens').where('id', 'in', dead).executeTakeFirst());
}

export async function purgeRevokedApiKeys(db: Executor, before: string, limit: number): Promise<number> {
  const revoked = db.selectFrom('api_keys').select('id').where('revoked_at', '<', before).limit(limit);
  return deleted(await db.deleteFrom('api_keys').where('id', 'in', revoked).executeTakeFirst());
}

/** rate-limiter-flexible's rows whose window is over (`expire` is epoch ms; null never expires). */
export async function purgeExpiredRateLimits(db: Executor, nowMs: number, limit: number): Promise<number> {
  const expired = db.selectFrom('rate_limits').select('key').where('expire', '<', nowMs).limit(limit);
  return deleted(await db.deleteFrom('rate_limits').where('key', 'in', expired).executeTakeFirst());
}
