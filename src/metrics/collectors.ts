import { Gauge, type Registry } from 'prom-client';
import type { Clock } from '../clock.js';
import type { DatabaseHandle, Db } from '../db/database.js';
import type { Logger } from '../logger.js';
import { outboxDepth, type OutboxDepth } from '../logout/store.js';

/**
 * Gauges read at scrape time. A collector never throws: prom-client renders every metric in one
 * Promise.all, so one failing read would turn the whole scrape into a 500.
 */

/** How long one outbox count serves scrapes: a storm of scrapes costs one query per instance per period. */
export const OUTBOX_DEPTH_TTL_MS = 5_000;

/**
 * The last outcome of `load`, for `ttlMs`, shared by every caller meanwhile (concurrent callers
 * wait for the same query). A failure is reported once and served as `null` for the period too,
 * so a database outage is not hammered by scrapes either.
 */
export function cachedRead<T>(load: () => Promise<T>, options: { ttlMs: number; now: () => number; onError: (err: unknown) => void }): () => Promise<T | null> {
  let cached: { at: number; value: Promise<T | null> } | null = null;
  return () => {
    const now = options.now();
    if (cached && now >= cached.at && now - cached.at < options.ttlMs) return cached.value;
    const value = load().catch((err: unknown) => {
      options.onError(err);
      return null;
    });
    cached = { at: now, value };
    return value;
  };
}

/**
 * PostgreSQL: the request pool's connections, read from pg.Pool at scrape time. SQLite has no
 * pool (one in-process connection, statements run one at a time), so nothing is exported there.
 */
export function registerDatabasePoolGauges(registry: Registry, database: DatabaseHandle): void {
  if (database.raw.kind !== 'postgres') return;
  const pool = database.raw.client;
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('gatehouse_db_pool_connections', 'Open connections of the PostgreSQL pool, busy and idle (pg.Pool totalCount)', () => pool.totalCount);
  gauge('gatehouse_db_pool_idle_connections', 'Open connections of the PostgreSQL pool that are idle (pg.Pool idleCount)', () => pool.idleCount);
  gauge('gatehouse_db_pool_waiting_requests', 'Queries waiting for a free pool connection (pg.Pool waitingCount); above 0 for long means the pool is too small or the database too slow', () => pool.waitingCount);
  gauge('gatehouse_db_pool_max_connections', 'Size limit of the PostgreSQL pool (pg.Pool max)', () => pool.options.max);
}

/**
 * The back-channel logout outbox (logout/outbox.ts) at scrape time, counted by a store query
 * cached for OUTBOX_DEPTH_TTL_MS. When the database cannot answer, both gauges are left out of
 * that scrape (logged as a warning) and the rest of /metrics is served.
 */
export function registerOutboxGauges(registry: Registry, deps: { db: Db; clock: Clock; logger: Logger }, ttlMs = OUTBOX_DEPTH_TTL_MS): void {
  const now = () => deps.clock.now().getTime();
  const read = cachedRead<OutboxDepth>(() => outboxDepth(deps.db), {
    ttlMs,
    now,
    onError: (err) => deps.logger.warn({ err }, 'metrics: could not count the logout outbox; its gauges are left out of this scrape'),
  });
  new Gauge({
    name: 'gatehouse_logout_outbox_deliveries',
    help: 'Back-channel logout deliveries in the outbox, by status: pending (queued or waiting to retry), abandoned (given up after 24 h, kept until purged)',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const depth = await read();
      this.reset();
      if (!depth) return;
      this.set({ status: 'pending' }, depth.pending);
      this.set({ status: 'abandoned' }, depth.abandoned);
    },
  });
  new Gauge({
    name: 'gatehouse_logout_outbox_oldest_pending_age_seconds',
    help: 'Age of the oldest pending back-channel logout delivery (0 when none is pending)',
    registers: [registry],
    async collect() {
      const depth = await read();
      if (!depth) {
        this.remove({});
        return;
      }
      const oldest = depth.oldestPendingCreatedAt ? Date.parse(depth.oldestPendingCreatedAt) : null;
      this.set(oldest === null ? 0 : Math.max(0, (now() - oldest) / 1000));
    },
  });
}
