import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { AppError } from '../http/errors.js';

/**
 * SPEC §12 "Faults": the one place that tells "the database is away" (restart, failover, a
 * proxy dropping connections, a statement that timed out) from every other error. Such an error
 * is answered `503 SERVICE_UNAVAILABLE` with `Retry-After`, never 500, and never ends the process:
 * the pool opens fresh connections on the next query.
 *
 * Only errors of the database driver count. A socket code (`ETIMEDOUT`, `ECONNRESET`, …) or a
 * timeout says nothing about the database when it comes from elsewhere — an SMTP server, an IdP —
 * and such an error must stay what it is (a 500, a fatal uncaught error). PostgreSQL's own
 * answers are `pg.DatabaseError`s and better-sqlite3's are `SqliteError`s, so those are told by
 * their class; node-postgres' socket errors and its and pg-pool's connection messages carry no
 * marker, so the pool of src/db/database.ts marks every error it hands out (`markDatabaseError`).
 */

/** Seconds a client is asked to wait before retrying while the database is away. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/** PostgreSQL SQLSTATEs that mean "no database right now" rather than "this statement is wrong". */
const PG_UNAVAILABLE_CODES = new Set([
  '57P01', // admin_shutdown: pg_terminate_backend, a fast shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up, shutting down, in recovery
  '57014', // query_canceled: statement_timeout (GATEHOUSE_DB_STATEMENT_TIMEOUT_MS)
  '53300', // too_many_connections
  '25006', // read_only_sql_transaction: a write reached a standby during a failover
]);

/** Socket-level errors (Node's errno codes), when the database driver reports them. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

/** SQLite: another process holds the lock longer than busy_timeout. */
const SQLITE_CODES = new Set(['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_RECOVERY', 'SQLITE_LOCKED']);

/** Messages node-postgres and pg-pool use for a lost or unobtainable connection (they carry no code). */
const DRIVER_MESSAGES = [
  /^Connection terminated/, // "Connection terminated unexpectedly", "Connection terminated due to connection timeout"
  /^timeout exceeded when trying to connect$/, // pg-pool connectionTimeoutMillis
  /^Query read timeout$/, // query_timeout
  /is not queryable/, // "Client has encountered a connection error and is not queryable"
  /^Client was closed and is not queryable$/,
];

/** Set (not enumerable) on every error the PostgreSQL pool hands out; Symbol.for survives a second copy of this module. */
const FROM_DATABASE = Symbol.for('gatehouse.databaseError');

/**
 * Mark `e` as raised by the database driver (src/db/database.ts calls this for every error of the
 * pool, its clients and their queries). The same object is returned, so its class and `code`
 * (e.g. a unique violation) stay as they were.
 */
export function markDatabaseError<T>(e: T): T {
  if (e && typeof e === 'object' && !(FROM_DATABASE in e)) {
    try {
      Object.defineProperty(e, FROM_DATABASE, { value: true, enumerable: false });
    } catch {
      // a frozen object: left unmarked
    }
  }
  return e;
}

/** True when `e` was raised by a database driver: PostgreSQL's answer, SQLite's, or marked by the pool. */
export function isFromDatabase(e: unknown): boolean {
  return !!e && typeof e === 'object' && (FROM_DATABASE in e || e instanceof pg.DatabaseError || e instanceof BetterSqlite3.SqliteError);
}

function isUnavailableOne(e: object): boolean {
  const { code, message } = e as { code?: unknown; message?: unknown };
  if (e instanceof BetterSqlite3.SqliteError) return typeof code === 'string' && SQLITE_CODES.has(code);
  const pgServer = e instanceof pg.DatabaseError;
  if (!pgServer && !(FROM_DATABASE in e)) return false; // not the database's: whatever its code says
  if (typeof code === 'string') {
    if (code.startsWith('08') || PG_UNAVAILABLE_CODES.has(code)) return true; // class 08: connection_exception
    if (!pgServer && SOCKET_CODES.has(code)) return true;
  }
  return !pgServer && typeof message === 'string' && DRIVER_MESSAGES.some((re) => re.test(message));
}

/**
 * True when `e` (or an error it wraps, through `cause` or an AggregateError) is a database
 * driver's error saying the database is unreachable. An AppError is a decided answer and counts
 * only when it is the 503 of this module or of /readyz wrapping such an error.
 */
export function isDatabaseUnavailable(e: unknown): boolean {
  const seen = new Set<unknown>();
  const queue: unknown[] = [e];
  while (queue.length) {
    const x = queue.shift();
    if (!x || typeof x !== 'object' || seen.has(x)) continue;
    seen.add(x);
    if (x instanceof AppError && x.code !== 'SERVICE_UNAVAILABLE') continue; // a decided answer, whatever caused it
    if (!(x instanceof AppError) && isUnavailableOne(x)) return true;
    queue.push((x as { cause?: unknown }).cause);
    if (x instanceof AggregateError) queue.push(...x.errors);
  }
  return false;
}

/** The answer while the database is away: 503, `Retry-After`, no internal detail in the body. */
export function databaseUnavailable(cause: unknown): AppError {
  return new AppError('SERVICE_UNAVAILABLE', 'The service is temporarily unavailable. Try again in a few seconds.', { retryAfter: DATABASE_RETRY_AFTER_SECONDS }, { cause });
}
