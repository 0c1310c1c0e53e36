import { MINUTE, type Clock } from '../../clock.js';
import type { Db } from '../../db/database.js';
import type { Logger } from '../../logger.js';
import { acquireJobLease, releaseJobLease } from '../../jobs/leases.js';
import { createPeriodicJob } from '../../jobs/periodic.js';
import { dueIdpTokens } from './store.js';
import type { IdpTokenVault } from './vault.js';

/**
 * The refresh sweep of the IdP token vault (SPEC §9): every 30 s, the tokens that expire within
 * 5 minutes are refreshed. Every instance runs the timer; one at a time sweeps, the holder of the
 * `idp-token-sweep` job lease (renewed at each sweep, so it stays with one instance until that
 * instance stops or dies). The per-row claim of the vault keeps even two overlapping sweeps from
 * sending one refresh token twice.
 */
export const SWEEP_INTERVAL_MS = 30_000;
export const SWEEP_WINDOW_MS = 5 * MINUTE;
const JOB = 'idp-token-sweep';

export interface SweepResult {
  /** false: another instance holds the sweep. */
  swept: boolean;
  refreshed: number;
  refused: number;
  failed: number;
}

export interface IdpTokenSweepOptions {
  /** Default 30 s (SPEC §9). */
  intervalMs?: number;
  /** Rows refreshed per sweep (the rest at the next). */
  batch?: number;
  /** Refreshes in flight at once. */
  concurrency?: number;
}

export function createIdpTokenRefresher(deps: { db: Db; clock: Clock; logger: Logger; vault: Pick<IdpTokenVault, 'refresh' | 'holder'> }, options: IdpTokenSweepOptions = {}) {
  const intervalMs = options.intervalMs ?? SWEEP_INTERVAL_MS;
  const batch = options.batch ?? 200;
  const concurrency = options.concurrency ?? 4;

  async function sweepOnce(): Promise<SweepResult> {
    const now = deps.clock.now();
    const result: SweepResult = { swept: false, refreshed: 0, refused: 0, failed: 0 };
    // Held a while past the next sweep, so a living holder always renews it in time.
    const until = new Date(now.getTime() + intervalMs + 15_000).toISOString();
    if (!(await acquireJobLease(deps.db, JOB, deps.vault.holder, now.toISOString(), until))) return result;
    result.swept = true;
    const due = await dueIdpTokens(deps.db, now.toISOString(), new Date(now.getTime() + SWEEP_WINDOW_MS).toISOString(), batch);
    let next = 0;
    const worker = async () => {
      while (next < due.length) {
        const row = due[next++]!;
        const r = await deps.vault.refresh(row.id);
        if (r.outcome === 'refreshed') result.refreshed++;
        else if (r.outcome === 'refused') result.refused++;
        else if (r.outcome === 'failed') result.failed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, due.length) }, worker));
    if (due.length) deps.logger.info({ due: due.length, ...result }, 'IdP token sweep');
    return result;
  }

  const job = createPeriodicJob({ name: 'IdP token sweep', intervalMs, logger: deps.logger, run: sweepOnce });

  return {
    sweepOnce,
    start: job.start,
    /** Stop sweeping and give the lease up, so another instance sweeps at its next tick. */
    async stop() {
      await job.stop();
      await releaseJobLease(deps.db, JOB, deps.vault.holder).catch((err: unknown) => deps.logger.warn({ err }, 'could not release the IdP token sweep lease; it runs out by itself'));
    },
  };
}

export type IdpTokenRefresher = ReturnType<typeof createIdpTokenRefresher>;
