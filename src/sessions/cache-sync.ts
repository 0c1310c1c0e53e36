import { PostgresAdapter, sql } from 'kysely';
import type { DatabaseHandle, Executor } from '../db/database.js';
import { applicationName } from '../db/database.js';
import { listenForNotifications, type NotificationListener } from '../db/notifications.js';
import type { Logger } from '../logger.js';
import type { SessionCache, SessionCacheDrops } from './cache.js';

/** The channel every instance LISTENs on; payload `<schema>|<json change>` (several schemas may share one database). */
export const SESSION_CACHE_CHANNEL = 'gatehouse_session_cache';
/** How often (at most) a SQLite instance looks for another process's commits (ms). */
export const SQLITE_CHECK_MS = 50;
/** Session ids per notification: PostgreSQL caps a payload below 8,000 bytes. */
const IDS_PER_NOTIFICATION = 200;

export type SessionChange = { sessions: string[] } | { user: string } | { organization: string };

/**
 * Tell the other instances' session caches about a change, inside the caller's transaction
 * (SQL of the cache's, so it lives here as a store would). PostgreSQL delivers a NOTIFY only when
 * its transaction commits, and never when it rolls back, so no instance drops an entry for a
 * change that did not happen nor re-reads before it is visible. SQLite needs nothing: the
 * other processes on the file see its change counter move (`sqliteFreshness`).
 */
export async function announceSessionChange(exec: Executor, change: SessionChange): Promise<void> {
  if (!(exec.getExecutor().adapter instanceof PostgresAdapter)) return;
  const payloads = 'sessions' in change
    ? chunks(change.sessions, IDS_PER_NOTIFICATION).map((ids) => JSON.stringify({ sessions: ids }))
    : [JSON.stringify(change)];
  for (const payload of payloads) {
    await sql`select pg_notify(${SESSION_CACHE_CHANNEL}, current_schema() || '|' || ${payload})`.execute(exec);
  }
}

/** Forget what a change makes wrong in one cache. */
function apply(cache: SessionCacheDrops, change: SessionChange): void {
  if ('sessions' in change) cache.dropSessions(change.sessions);
  else if ('user' in change) cache.dropUser(change.user);
  else cache.dropOrganization(change.organization);
}

/**
 * A change to sessions, users, memberships or organizations, inside the caller's transaction:
 * dropped from this instance's cache at once, and from every other instance's when the
 * transaction commits (`announceSessionChange`).
 */
export async function sessionDataChanged(exec: Executor, cache: SessionCacheDrops, change: SessionChange): Promise<void> {
  apply(cache, change);
  await announceSessionChange(exec, change);
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export interface SessionCacheSync {
  stop(): Promise<void>;
}

/**
 * Keep an instance's session cache true to the database (issue #16: a revoked session refused by
 * every instance within one second).
 * - PostgreSQL: a LISTEN connection applies every announced change; while it is down the cache
 *   answers nothing (every lookup reads the database) and it is emptied when the connection is
 *   back, since what was announced meanwhile is lost.
 * - SQLite: at a lookup, at most every SQLITE_CHECK_MS, `data_version` (it moves when another
 *   connection — another process on the same file, the CLI — commits); when it moved, the cache
 *   is emptied. So another process's change is seen within SQLITE_CHECK_MS; reading the counter on
 *   every lookup cost more than the rest of a cached session check. This process's own changes
 *   drop their entries directly.
 */
export async function startSessionCacheSync(cache: SessionCache, database: DatabaseHandle, options: { url: string; connectTimeoutMs: number; logger: Logger }): Promise<SessionCacheSync> {
  if (database.raw.kind === 'sqlite') {
    const version = database.raw.client.prepare('SELECT data_version FROM pragma_data_version()').pluck();
    let seen = version.get();
    let checkedAt = performance.now();
    cache.setFreshness({
      usable() {
        const at = performance.now();
        if (at - checkedAt < SQLITE_CHECK_MS) return true;
        checkedAt = at;
        const now = version.get();
        if (now !== seen) {
          seen = now;
          cache.clear();
        }
        return true;
      },
    });
    return { stop: async () => {} };
  }
  const schema = (await sql<{ s: string }>`select current_schema() as s`.execute(database.db)).rows[0]?.s ?? 'public';
  const prefix = `${schema}|`;
  let listener: NotificationListener | null = null;
  cache.setFreshness({ usable: () => listener?.connected() ?? false });
  listener = listenForNotifications({
    url: options.url,
    channel: SESSION_CACHE_CHANNEL,
    applicationName: `${applicationName(database.schema)}:cache`,
    connectTimeoutMs: options.connectTimeoutMs,
    logger: options.logger,
    onNotification(payload) {
      if (!payload.startsWith(prefix)) return;
      try {
        apply(cache, JSON.parse(payload.slice(prefix.length)) as SessionChange);
      } catch {
        cache.clear();
      }
    },
    onUp: () => cache.clear(),
    onDown: () => cache.clear(),
  });
  return { stop: () => listener!.stop() };
}
