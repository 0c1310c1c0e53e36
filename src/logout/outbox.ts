import { MINUTE, type Clock } from '../clock.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../logger.js';
import { findClient } from '../oidc-provider/clients/store.js';
import { deliverBackchannelLogout, type BackchannelDeps } from '../oidc-provider/backchannel-logout.js';
import { claimOutboxRow, dueOutboxRows, finishOutboxRow, retryOutboxRow, type OutboxRow } from './store.js';
import { DEFAULT_TIMEOUT_MS } from '../sso/outbound.js';
import { createPeriodicJob } from '../jobs/periodic.js';

/**
 * The sender of back-channel logout tokens to the SaaS's apps (SPEC §8 "Propagation").
 *
 * Deliveries are rows of `logout_outbox`, written by endSessions in the transaction that ended
 * the session. Every instance polls for due rows and claims one with a conditional update that
 * holds it for a lease: two instances never send the same attempt, and a row held by an instance
 * that died mid-delivery is due again when the lease runs out (another instance sends it).
 * A failed attempt is retried with backoff until 24 h after the session ended, then abandoned
 * (logged as a warning). The logout token is made at each attempt (fresh `iat`, `exp` ≤ 2 min,
 * new `jti`), so an app that comes back after an hour still gets a token it may accept.
 * The client's current `backchannel_logout_uri` is read at each attempt: a deleted client, or one
 * that removed its URI, is abandoned. Finished rows are purged by housekeeping (jobs/housekeeping.ts).
 */

/** Backoff after the nth failed attempt (1-based): 5 s, 15 s, 30 s, 1 min, 2 min, 5 min, 10 min, then every 30 min. */
const BACKOFF_MS = [5_000, 15_000, 30_000, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 30 * MINUTE];
export const backoffAfter = (attempts: number) => BACKOFF_MS[Math.min(Math.max(attempts, 1), BACKOFF_MS.length) - 1] ?? 30 * MINUTE;

export interface OutboxOptions {
  /** How often an instance looks for due deliveries (default 1 s: the first attempt comes within ~1 s). */
  pollMs?: number;
  /** How long a claim holds a delivery (default: the outbound timeout + 10 s). */
  leaseMs?: number;
  /** Deliveries claimed per poll. */
  batch?: number;
}

export interface OutboxDeps extends BackchannelDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
}

export function createLogoutOutbox(deps: OutboxDeps, options: OutboxOptions = {}) {
  const pollMs = options.pollMs ?? 1000;
  const leaseMs = options.leaseMs ?? DEFAULT_TIMEOUT_MS + 10_000;
  const batch = options.batch ?? 20;

  async function attempt(row: OutboxRow): Promise<void> {
    const now = deps.clock.now();
    const client = await findClient(deps.db, row.client_id);
    if (!client?.backchannelLogoutUri) {
      await finishOutboxRow(deps.db, row.id, row.attempts + 1, 'abandoned', now.toISOString(), client ? 'the client no longer has a backchannel_logout_uri' : 'the client was deleted');
      return;
    }
    try {
      await deliverBackchannelLogout(deps, { clientId: client.id, uri: client.backchannelLogoutUri, sub: row.user_id, sid: row.session_id });
      await finishOutboxRow(deps.db, row.id, row.attempts + 1, 'delivered', deps.clock.now().toISOString(), null);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const later = deps.clock.now();
      const next = new Date(later.getTime() + backoffAfter(row.attempts + 1));
      if (next.toISOString() > row.give_up_at) {
        deps.logger.warn({ clientId: row.client_id, sessionId: row.session_id, attempts: row.attempts + 1, err: message }, 'back-channel logout abandoned after 24 h of retries');
        await finishOutboxRow(deps.db, row.id, row.attempts + 1, 'abandoned', later.toISOString(), message.slice(0, 500));
      } else {
        deps.logger.info({ clientId: row.client_id, sessionId: row.session_id, attempts: row.attempts + 1, retryAt: next.toISOString(), err: message }, 'back-channel logout failed; will retry');
        await retryOutboxRow(deps.db, row.id, row.attempts + 1, next.toISOString(), message.slice(0, 500));
      }
    }
  }

  /** One pass: claim what is due and send it. Returns how many deliveries were attempted. */
  async function runOnce(): Promise<number> {
    const now = deps.clock.now();
    const nowIso = now.toISOString();
    const due = await dueOutboxRows(deps.db, nowIso, batch);
    const leaseUntil = new Date(now.getTime() + leaseMs).toISOString();
    const mine: OutboxRow[] = [];
    for (const row of due) if (await claimOutboxRow(deps.db, row, nowIso, leaseUntil)) mine.push(row);
    await Promise.all(mine.map((row) => attempt(row).catch((err: unknown) => deps.logger.warn({ err, id: row.id }, 'back-channel logout attempt could not be recorded; its lease will run out and it is retried'))));
    return mine.length;
  }

  const job = createPeriodicJob({ name: 'logout outbox poll', intervalMs: pollMs, logger: deps.logger, run: runOnce });

  return {
    runOnce,
    /** Start polling (every instance does; claims keep them from sending twice). */
    start: job.start,
    stop: job.stop,
  };
}

export type LogoutOutbox = ReturnType<typeof createLogoutOutbox>;
