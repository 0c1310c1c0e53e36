import { createServer, Socket, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { applicationName } from '../../src/db/database.js';
import { TEST_DATABASE_URL } from './app.js';

/**
 * PostgreSQL fault tools for tests: end a pool's backends as an administrator would
 * (pg_terminate_backend), hold table locks from another session, and a loopback TCP proxy
 * that can take "the database" away and bring it back (a restart or failover, as the
 * instances see it).
 */

/**
 * Whether the PostgreSQL-only tests can run: they run in the PostgreSQL pass (TEST_DATABASE_URL
 * set). Without it: a skip with a message on a developer machine; under CI=true the SQLite pass
 * skips them only when CI has a PostgreSQL for its PostgreSQL pass (TEST_PG_URL, set and checked
 * by .ci/run), and fails otherwise (DESIGN.md "Tests": nothing silently skipped in CI).
 */
export function postgresAvailable(what: string): boolean {
  if (TEST_DATABASE_URL) return true;
  const message = `TEST_DATABASE_URL is not set: ${what} needs PostgreSQL (e.g. TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test)`;
  if (process.env.CI === 'true') {
    if (!process.env.TEST_PG_URL) throw new Error(`${message} (CI=true and no TEST_PG_URL for the PostgreSQL pass: refusing to skip)`);
    console.warn(`[PostgreSQL tests skipped in the SQLite pass] ${what} runs in the PostgreSQL pass (TEST_PG_URL)`);
    return false;
  }
  console.warn(`[PostgreSQL tests skipped] ${message}`);
  return false;
}

/** A superuser session beside the instances under test. */
export async function adminClient(url = TEST_DATABASE_URL!): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'gatehouse-test-admin' });
  client.on('error', () => {}); // its own connection may be cut by the faults it causes
  await client.connect();
  return client;
}

/** End every backend of the pool confined to `schema` (as `pg_terminate_backend` after a restart would); returns how many. */
export async function terminateBackends(admin: pg.Client, schema: string): Promise<number> {
  const res = await admin.query<{ pid: number }>(
    'select pid from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()',
    [applicationName(schema)],
  );
  for (const { pid } of res.rows) await admin.query('select pg_terminate_backend($1)', [pid]);
  return res.rows.length;
}

/** How many backends the pool of `schema` holds right now. */
export async function backendCount(admin: pg.Client, schema: string): Promise<number> {
  const res = await admin.query<{ n: string }>('select count(*) as n from pg_stat_activity where application_name = $1', [applicationName(schema)]);
  return Number(res.rows[0]!.n);
}

/** How many backends of the pool of `schema` wait on a lock. */
export async function waitingBackends(admin: pg.Client, schema: string): Promise<number> {
  const res = await admin.query<{ n: string }>("select count(*) as n from pg_stat_activity where application_name = $1 and wait_event_type = 'Lock'", [applicationName(schema)]);
  return Number(res.rows[0]!.n);
}

/** Poll `check` until it holds (condition waits, not timing assertions); throws after `tries`. */
export async function until(check: () => Promise<boolean> | boolean, what: string, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`gave up waiting for: ${what}`);
}

/**
 * Hold an ACCESS EXCLUSIVE lock on `tables` of `schema` from its own session until `release()`:
 * every statement of the instance that touches them waits (and times out under
 * GATEHOUSE_DB_STATEMENT_TIMEOUT_MS).
 */
export async function lockTables(schema: string, tables: string[]): Promise<{ release(): Promise<void> }> {
  const client = await adminClient();
  await client.query('begin');
  await client.query(`lock table ${tables.map((t) => `${schema}.${t}`).join(', ')} in access exclusive mode`);
  return {
    async release() {
      await client.query('rollback');
      await client.end();
    },
  };
}

export interface DatabaseProxy {
  /** postgres:// URL through the proxy (same database and user as TEST_DATABASE_URL). */
  url: string;
  /** The database goes away: every open connection is cut and new ones are closed at once. */
  down(): void;
  /** The database is back. */
  up(): void;
  close(): Promise<void>;
}

/** A TCP proxy on 127.0.0.1 in front of TEST_DATABASE_URL's server. */
export async function startDatabaseProxy(): Promise<DatabaseProxy> {
  const target = new URL(TEST_DATABASE_URL!);
  const targetPort = Number(target.port || 5432);
  const targetHost = target.hostname;
  if (targetHost !== '127.0.0.1' && targetHost !== 'localhost' && targetHost !== '::1') throw new Error('the database proxy only forwards to loopback');
  let isUp = true;
  const open = new Set<Socket>();
  const server: Server = createServer((incoming) => {
    if (!isUp) {
      incoming.destroy();
      return;
    }
    const outgoing = new Socket();
    open.add(incoming);
    open.add(outgoing);
    const drop = () => {
      incoming.destroy();
      outgoing.destroy();
      open.delete(incoming);
      open.delete(outgoing);
    };
    incoming.on('error', drop).on('close', drop);
    outgoing.on('error', drop).on('close', drop);
    outgoing.connect(targetPort, targetHost, () => {
      incoming.pipe(outgoing);
      outgoing.pipe(incoming);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = new URL(TEST_DATABASE_URL!);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    down() {
      isUp = false;
      for (const s of open) s.destroy();
      open.clear();
    },
    up() {
      isUp = true;
    },
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
