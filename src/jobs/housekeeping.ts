import { randomUUID } from 'node:crypto';
import { DAY, HOUR, MINUTE, type Clock } from '../clock.js';
import type { DatabaseHandle } from '../db/database.js';
import type { Logger } from '../logger.js';
import { KNOWN_ADDRESS_WINDOW_MS } from '../auth/account-limits.js';
import { createPeriodicJob } from './periodic.js';
import {
  purgeDeadIdpTokens, purgeEndedInvitations, purgeEndedSessions, purgeEndedSetupLinks, purgeExpiredFlows, purgeExpiredOidcRecords,
  purgeExpiredOneTimeTokens, purgeExpiredRateLimits, purgeExpiredReplayKeys, purgeFinishedOutboxRows, purgeFinishedRefreshFamilies,
  purgeRevokedApiKeys, purgeUnconfirmedFactors, withPurgeLock,
} from './housekeeping-store.js';

/**
 * Housekeeping (docs/operations.md): every `GATEHOUSE_HOUSEKEEPING_INTERVAL` one instance deletes
 * what has ended and can never be used again. Each table is purged in batches of `batchSize` rows,
 * one short statement (or, for sessions, one short transaction) each, until a batch comes back
 * short or the table has had `maxBatches` batches this run (the rest waits for the next run), so a
 * run never holds the database long. One instance purges at a time (withPurgeLock); the others
 * skip the run. Audit events are never purged.
 */

/** How long an ended row is kept before it goes: a link or token presented late still gets "expired", not "unknown". */
export const GRACE_MS = 7 * DAY;
/** SSO flows are kept an hour past their expiry (a late callback is told it took too long). */
export const FLOW_GRACE_MS = HOUR;
/** A TOTP enrolment not confirmed within a day is dropped (the user starts it again). */
export const TOTP_ENROLMENT_WINDOW_MS = DAY;
export const DEFAULT_INTERVAL_MS = 10 * MINUTE;
/** SQLite: how long the job lease covers one run (a run that dies mid-way frees it after this). */
const LEASE_MS = 10 * MINUTE;

/** Every table the purge deletes from, in the order of the run (children before their parents). */
export const PURGED_TABLES = [
  'refresh_tokens', 'session_clients', 'sessions', 'oidc_records', 'logout_outbox', 'sso_flows', 'replay_cache', 'one_time_tokens',
  'invitations', 'setup_links', 'mfa_factors', 'sso_idp_tokens', 'api_keys', 'rate_limits',
] as const;
export type PurgedTable = (typeof PURGED_TABLES)[number];
type Counts = Partial<Record<PurgedTable, number>>;
const noCounts = () => Object.fromEntries(PURGED_TABLES.map((t) => [t, 0])) as Record<PurgedTable, number>;

export interface HousekeepingResult {
  /** true: another instance was purging; nothing was done. */
  skipped: boolean;
  /** Rows deleted per table this run (every table present, 0 when nothing). */
  purged: Record<PurgedTable, number>;
  /** Tables that had their last allowed batch full: more waits for the next run. */
  capped: PurgedTable[];
}

export interface HousekeepingOptions {
  /** Rows per statement (default 500). */
  batchSize?: number;
  /** Batches per table per run (default 20). */
  maxBatches?: number;
}

/** One purge: the table whose batch size decides when it is done, and one batch. */
interface Step {
  table: PurgedTable;
  batch(limit: number): Promise<Counts>;
}

export function createHousekeeping(
  deps: { database: Pick<DatabaseHandle, 'db' | 'engine'>; clock: Clock; logger: Logger },
  options: HousekeepingOptions & { intervalMs?: number } = {},
) {
  const { db } = deps.database;
  const batchSize = options.batchSize ?? 500;
  const maxBatches = options.maxBatches ?? 20;
  const holder = randomUUID();

  /** The purges of a run at `now`, in order; every cutoff is fixed when the run starts. */
  function steps(now: Date): Step[] {
    const at = (ms: number) => new Date(now.getTime() - ms).toISOString();
    const nowIso = now.toISOString();
    const ended = at(GRACE_MS);
    const one = (table: PurgedTable, purge: (limit: number) => Promise<number>): Step => ({ table, batch: async (limit) => ({ [table]: await purge(limit) }) });
    return [
      // A revoked session also counts as "a known address" of its account for 30 days (auth/account-limits.ts), so it stays that long.
      { table: 'sessions', batch: (limit) => purgeEndedSessions(db, { lastSeenBefore: at(Math.max(KNOWN_ADDRESS_WINDOW_MS, GRACE_MS)), endedBefore: ended }, limit) },
      one('refresh_tokens', (limit) => purgeFinishedRefreshFamilies(db, ended, limit)),
      one('oidc_records', (limit) => purgeExpiredOidcRecords(db, nowIso, limit)),
      one('logout_outbox', (limit) => purgeFinishedOutboxRows(db, ended, limit)),
      one('sso_flows', (limit) => purgeExpiredFlows(db, at(FLOW_GRACE_MS), limit)),
      one('replay_cache', (limit) => purgeExpiredReplayKeys(db, nowIso, limit)),
      one('one_time_tokens', (limit) => purgeExpiredOneTimeTokens(db, ended, limit)),
      one('invitations', (limit) => purgeEndedInvitations(db, ended, limit)),
      one('setup_links', (limit) => purgeEndedSetupLinks(db, ended, limit)),
      one('mfa_factors', (limit) => purgeUnconfirmedFactors(db, at(TOTP_ENROLMENT_WINDOW_MS), limit)),
      one('sso_idp_tokens', (limit) => purgeDeadIdpTokens(db, ended, limit)),
      one('api_keys', (limit) => purgeRevokedApiKeys(db, ended, limit)),
      one('rate_limits', (limit) => purgeExpiredRateLimits(db, now.getTime(), limit)),
    ];
  }

  async function purgeAll(now: Date): Promise<Omit<HousekeepingResult, 'skipped'>> {
    const purged = noCounts();
    const capped: PurgedTable[] = [];
    for (const step of steps(now)) {
      for (let n = 1; ; n++) {
        const counts = await step.batch(batchSize);
        for (const [table, count] of Object.entries(counts) as Array<[PurgedTable, number]>) purged[table] += count;
        if ((counts[step.table] ?? 0) < batchSize) break;
        if (n === maxBatches) {
          capped.push(step.table);
          break;
        }
      }
    }
    return { purged, capped };
  }

  /** One run now: purge, or skip when another instance is purging. */
  async function runOnce(): Promise<HousekeepingResult> {
    const now = deps.clock.now();
    const lease = { holder, now: now.toISOString(), until: new Date(now.getTime() + LEASE_MS).toISOString() };
    const locked = await withPurgeLock(deps.database, lease, () => purgeAll(now));
    if (!locked.ran) {
      deps.logger.debug('housekeeping skipped: another instance is purging');
      return { skipped: true, purged: noCounts(), capped: [] };
    }
    const { purged, capped } = locked.value;
    const nonZero = Object.fromEntries(Object.entries(purged).filter(([, n]) => n > 0));
    if (Object.keys(nonZero).length) deps.logger.info({ purged: nonZero, ...(capped.length ? { capped } : {}) }, 'housekeeping purged expired rows');
    return { skipped: false, purged, capped };
  }

  const job = createPeriodicJob({ name: 'housekeeping', intervalMs: options.intervalMs ?? DEFAULT_INTERVAL_MS, logger: deps.logger, run: runOnce });

  return {
    runOnce,
    /** Start the timer (the first run at once); GATEHOUSE_HOUSEKEEPING decides whether server.ts calls it. */
    start: job.start,
    /** Stop the timer; a run in progress finishes first (its batches are short). */
    stop: job.stop,
  };
}

export type Housekeeping = ReturnType<typeof createHousekeeping>;
