import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresAdapter, PostgresDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { markDatabaseError } from './faults.js';
import { migrations } from './migrations/index.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;
/** Anything queries can run on: the database or an open transaction. */
export type Executor = Kysely<Database> | Transaction<Database>;

export interface DatabaseHandle {
  db: Db;
  engine: 'sqlite' | 'postgres';
  /** PostgreSQL schema the handle is confined to, if any. */
  schema: string | null;
  /** The raw client (better-sqlite3 Database or pg Pool), for libraries that need their own (rate limits). */
  raw: { kind: 'sqlite'; client: BetterSqlite3.Database } | { kind: 'postgres'; client: pg.Pool };
  close(): Promise<void>;
}

/**
 * Kysely prepares every query anew, and so does the rate limiter (rate-limiter-flexible) on every
 * attempt; on better-sqlite3 preparing costs more than running a short query. Statements are
 * reusable, and every statement on the single SQLite connection runs synchronously, one at a time
 * (none is iterated), so a bounded cache keyed by SQL text, shared by both, is safe.
 */
function withStatementCache(client: BetterSqlite3.Database, max = 500): BetterSqlite3.Database {
  const cache = new Map<string, BetterSqlite3.Statement>();
  const prepare = client.prepare.bind(client);
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop !== 'prepare') return Reflect.get(target, prop, receiver);
      return (sqlText: string) => {
        let stmt = cache.get(sqlText);
        if (!stmt) {
          stmt = prepare(sqlText);
          if (cache.size >= max) cache.delete(cache.keys().next().value!);
          cache.set(sqlText, stmt);
        }
        return stmt;
      };
    },
  });
}

type Callback = (err: unknown, ...rest: unknown[]) => void;

/**
 * Run one pg call (`connect` or `query`, callback or promise form) so that every error it reports
 * is marked as the database's (src/db/faults.ts): node-postgres' socket errors and connection
 * messages carry no marker of their own, and a bare `ETIMEDOUT` from anywhere else (an SMTP
 * server) must not read as "the database is away".
 */
function markingErrors(args: unknown[], call: (args: unknown[]) => unknown): unknown {
  const i = args.findIndex((a) => typeof a === 'function');
  if (i >= 0) {
    const cb = args[i] as Callback;
    const marked = [...args];
    marked[i] = (err: unknown, ...rest: unknown[]) => cb(err ? markDatabaseError(err) : err, ...rest);
    return call(marked);
  }
  const result = call(args);
  if (result instanceof Promise) return result.catch((e: unknown) => Promise.reject(markDatabaseError(e)));
  return result; // a submittable (cursor): not used by Gatehouse
}

/** A pg client whose query errors are marked as the database's. */
class DatabaseClient extends pg.Client {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query(...args: any[]): any {
    return markingErrors(args, (a) => super.query(...(a as Parameters<pg.Client['query']>)));
  }
}

/** A pg pool whose connect and query errors (its own connect timeout included) are marked as the database's. */
class DatabasePool extends pg.Pool {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override connect(...args: any[]): any {
    return markingErrors(args, (a) => super.connect(...(a as [])));
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query(...args: any[]): any {
    return markingErrors(args, (a) => super.query(...(a as Parameters<pg.Pool['query']>)));
  }
}

export interface OpenOptions {
  /** PostgreSQL only: run every query in this schema (created when missing). Used to isolate test runs. */
  schema?: string;
  /**
   * Longest one statement may run (PostgreSQL `statement_timeout`) or wait for another process's
   * lock (SQLite `busy_timeout`), in ms; 0 = no limit on PostgreSQL, 5000 ms on SQLite. A timed-out
   * statement is a database fault (503).
   */
  statementTimeoutMs?: number;
  /** PostgreSQL: longest wait for a new connection, in ms (pg-pool `connectionTimeoutMillis`). */
  connectTimeoutMs?: number;
  /**
   * Told about every connection the database dropped while the pool held it (restart, failover,
   * pg_terminate_backend). The pool replaces such a connection by itself; without a listener
   * node-postgres would raise an unhandled 'error' event and end the process.
   */
  onConnectionError?: (err: Error) => void;
}

/** `application_name` of Gatehouse's PostgreSQL connections (one per schema when isolated), for pg_stat_activity. */
export const applicationName = (schema: string | null | undefined) => (schema ? `gatehouse:${schema}` : 'gatehouse');

export async function openDatabase(url: string, options: OpenOptions = {}): Promise<DatabaseHandle> {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const client = new BetterSqlite3(path);
    client.pragma('journal_mode = WAL');
    client.pragma('foreign_keys = ON');
    client.pragma(`busy_timeout = ${Math.trunc(options.statementTimeoutMs || 5000)}`);
    client.pragma('synchronous = NORMAL');
    const cached = withStatementCache(client);
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cached }) });
    return { db, engine: 'sqlite', schema: null, raw: { kind: 'sqlite', client: cached }, close: () => db.destroy() };
  }
  const schema = options.schema;
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
  if (schema) {
    const admin = new DatabaseClient({ connectionString: url });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    } finally {
      await admin.end();
    }
  }
  const statementTimeout = Math.trunc(options.statementTimeoutMs ?? 0);
  const pool = new DatabasePool({
    connectionString: url,
    Client: DatabaseClient,
    max: 10,
    application_name: applicationName(schema),
    connectionTimeoutMillis: Math.trunc(options.connectTimeoutMs ?? 5000),
    keepAlive: true,
    ...(statementTimeout > 0 ? { statement_timeout: statementTimeout } : {}),
    // An isolated schema (tests, multi-instance runs) also turns parallel query off: under load,
    // parallel workers of these short-lived schemas intermittently failed with "schema does not exist".
    ...(schema ? { options: `-c search_path=${schema} -c max_parallel_workers_per_gather=0` } : {}),
  });
  // SPEC §12: a connection the server drops must never end the process. pg-pool reports an idle
  // client's error on the pool; a checked-out client between two queries (inside a transaction)
  // emits it on itself, so every client gets a listener when it connects. The dead client is
  // discarded on release and the next query connects afresh.
  const listener = options.onConnectionError ?? (() => {});
  const onConnectionError = (err: Error) => listener(markDatabaseError(err));
  pool.on('error', onConnectionError);
  pool.on('connect', (client) => {
    client.on('error', onConnectionError);
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  // Kysely ends the pool only when a query ran through it; the pool itself must always end.
  const close = async () => {
    await db.destroy();
    if (!pool.ended) await pool.end();
  };
  return { db, engine: 'postgres', schema: schema ?? null, raw: { kind: 'postgres', client: pool }, close };
}

/** Apply every pending migration. Throws (naming the migration) when one fails. */
export async function migrateToLatest(db: Db, schema: string | null = null): Promise<string[]> {
  // Kysely must be told the schema of its bookkeeping tables: without one it takes a
  // kysely_migration_lock table in ANY schema of the database (another application's, an old
  // test run's) for its own, skips creating it, and the first migration fails with "relation
  // kysely_migration_lock does not exist". On PostgreSQL it is always the schema migrated: the
  // given one, else the connection's current schema (public unless search_path says otherwise).
  const tableSchema = schema ?? (db.getExecutor().adapter instanceof PostgresAdapter ? (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0]?.s : undefined);
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    ...(tableSchema ? { migrationTableSchema: tableSchema } : {}),
  });
  let outcome = await migrator.migrateToLatest();
  // Kysely finds its bookkeeping tables by listing every table of every schema; when another
  // schema-isolated run drops its schema during that listing, PostgreSQL reports that schema
  // missing (3F000). Nothing was applied then: list again (bounded).
  for (let retry = 0; retry < 3 && tableSchema && isOtherSchemaGone(outcome.error, tableSchema) && !outcome.results?.length; retry++) {
    outcome = await migrator.migrateToLatest();
  }
  const { error, results } = outcome;
  const failed = results?.find((r) => r.status === 'Error');
  if (error) {
    const cause = error instanceof Error ? error.message : String(error);
    throw new Error(`migration ${failed?.migrationName ?? '(unknown)'} failed: ${cause}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

function isOtherSchemaGone(error: unknown, schema: string): boolean {
  const e = error as { code?: unknown; message?: unknown } | undefined;
  return e?.code === '3F000' && typeof e.message === 'string' && !e.message.includes(`"${schema}"`);
}

export async function ping(db: Db): Promise<void> {
  await sql`select 1`.execute(db);
}

/** True when the error is a unique-constraint violation on either engine. */
export function isUniqueViolation(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const err = e as { code?: unknown; message?: unknown };
  return err.code === '23505' || err.code === 'SQLITE_CONSTRAINT_UNIQUE' || err.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
