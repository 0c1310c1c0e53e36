import { AppError } from '../http/errors.js';

/**
 * SPEC §12 "Faults": the one place that tells "the database is away" (restart, failover, a
 * proxy dropping connections, a statement that timed out) from every other error. Such an error
 * is answered `503 SERVICE_UNAVAILABLE` with `Retry-After`, never 500, and never ends the process:
 * the pool opens fresh connections on the next query.
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

/** Socket-level errors of the driver (Node's errno codes). */
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

function isUnavailableOne(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const { code, message } = e as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    if (code.startsWith('08')) return true; // connection_exception class
    if (PG_UNAVAILABLE_CODES.has(code) || SOCKET_CODES.has(code) || SQLITE_CODES.has(code)) return true;
  }
  return typeof message === 'string' && DRIVER_MESSAGES.some((re) => re.test(message));
}

/** True when `e` (or an error it wraps, through `cause` or an AggregateError) says the database is unreachable. */
export function isDatabaseUnavailable(e: unknown): boolean {
  const seen = new Set<unknown>();
  const queue: unknown[] = [e];
  while (queue.length) {
    const x = queue.shift();
    if (!x || typeof x !== 'object' || seen.has(x)) continue;
    seen.add(x);
    if (x instanceof AppError) {
      if (x.code === 'SERVICE_UNAVAILABLE') return true;
      continue; // any other AppError is a decided answer, whatever caused it
    }
    if (isUnavailableOne(x)) return true;
    queue.push((x as { cause?: unknown }).cause);
    if (x instanceof AggregateError) queue.push(...x.errors);
  }
  return false;
}

/** The answer while the database is away: 503, `Retry-After`, no internal detail in the body. */
export function databaseUnavailable(cause: unknown): AppError {
  return new AppError('SERVICE_UNAVAILABLE', 'The service is temporarily unavailable. Try again in a few seconds.', { retryAfter: DATABASE_RETRY_AFTER_SECONDS }, { cause });
}
