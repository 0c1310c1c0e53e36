import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDatabaseUnavailable, markDatabaseError } from '../../src/db/faults.js';
import { AppError } from '../../src/http/errors.js';
import { ENGINE, createTestGatehouse, type TestGatehouse, type TestResponse } from '../helpers/app.js';
import { adminClient, backendCount, lockTables, postgresAvailable, startDatabaseProxy, terminateBackends, until, waitingBackends, type DatabaseProxy } from '../helpers/postgres.js';

/**
 * SPEC §12 "Faults": while the database is away an instance answers 503 SERVICE_UNAVAILABLE
 * (Retry-After, the §3 envelope, no internal detail), reconnects by itself, and never exits.
 * The faults are real: backends ended with pg_terminate_backend, a lock held by another session
 * until the statement timeout fires, a TCP proxy in front of PostgreSQL that drops every
 * connection (what an instance sees of a restart or failover), and on SQLite another process's
 * write lock outlasting busy_timeout.
 */

/** The §3 error envelope of a 503 while the database is away. */
function expectUnavailable(res: TestResponse) {
  expect(res.status, res.text).toBe(503);
  expect(res.body).toEqual({ success: false, status: 503, code: 'SERVICE_UNAVAILABLE', message: expect.any(String) });
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  // Nothing internal leaks: no driver message, SQLSTATE, host or port.
  expect(res.text).not.toMatch(/terminat|57P01|57014|ECONN|5432|timeout|statement|SQLITE|postgres/i);
}

/** An error as PostgreSQL itself sends it (node-postgres parses it into a DatabaseError). */
const serverError = (code: string, message: string) => Object.assign(new pg.DatabaseError(message, message.length, 'error'), { code });
/** An error as the pool of src/db/database.ts hands it out (a socket error, a pg or pg-pool message). */
const driverError = (message: string, code?: string) => markDatabaseError(Object.assign(new Error(message), code ? { code } : {}));
/** The same kind of error raised elsewhere (nodemailer reports an SMTP timeout as ETIMEDOUT). */
const elsewhere = (message: string, code: string) => Object.assign(new Error(message), { code });
const sqliteError = (code: string) => new BetterSqlite3.SqliteError('database is locked', code);

describe('database faults are recognised in one place', () => {
  const cases: Array<[string, unknown, boolean]> = [
    ['admin shutdown (pg_terminate_backend)', serverError('57P01', 'terminating connection due to administrator command'), true],
    ['the server is starting up', serverError('57P03', 'the database system is starting up'), true],
    ['a connection exception (class 08)', serverError('08006', 'connection failure'), true],
    ['statement_timeout', serverError('57014', 'canceling statement due to statement timeout'), true],
    ['connection refused by the database', driverError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'), true],
    ['a reset database socket', driverError('read ECONNRESET', 'ECONNRESET'), true],
    ['a lost connection (node-postgres)', driverError('Connection terminated unexpectedly'), true],
    ['the pool connect timeout', driverError('timeout exceeded when trying to connect'), true],
    ['query_timeout', driverError('Query read timeout'), true],
    ['SQLite busy', sqliteError('SQLITE_BUSY'), true],
    ['a wrapped fault', new Error('migration failed', { cause: serverError('57P01', 'x') }), true],
    ['the 503 of /readyz wrapping a fault', new AppError('SERVICE_UNAVAILABLE', 'The database is not reachable', undefined, { cause: driverError('connect ECONNREFUSED', 'ECONNREFUSED') }), true],
    ['a unique violation', serverError('23505', 'duplicate key'), false],
    ['a syntax error', serverError('42601', 'syntax error'), false],
    ['a SQLite constraint error', sqliteError('SQLITE_CONSTRAINT_UNIQUE'), false],
    ['a programming error', new TypeError("Cannot read properties of undefined (reading 'id')"), false],
    ['a decided 4xx answer', new AppError('VALIDATION_FAILED', 'bad', undefined, { cause: driverError('read ECONNRESET', 'ECONNRESET') }), false],
    ['nothing', undefined, false],
    // Not the database's: the same codes and messages from anywhere else are not a database fault.
    ['an SMTP timeout (nodemailer, ETIMEDOUT)', Object.assign(new Error('Greeting never received'), { code: 'ETIMEDOUT', command: 'CONN' }), false],
    ['a refused connection to another service', elsewhere('connect ECONNREFUSED 127.0.0.1:25', 'ECONNREFUSED'), false],
    ['a stray reset socket', elsewhere('read ECONNRESET', 'ECONNRESET'), false],
    ['an error caused by a socket error elsewhere', new Error('delivery failed', { cause: elsewhere('read ECONNRESET', 'ECONNRESET') }), false],
    ['a SQLSTATE-looking code on another error', elsewhere('x', '57P01'), false],
    ['a SQLITE_BUSY code on another error', elsewhere('x', 'SQLITE_BUSY'), false],
    ['a pg-like message on another error', new Error('Connection terminated unexpectedly'), false],
    ['a 503 that is not about the database (mail)', new AppError('SERVICE_UNAVAILABLE', 'The verification email could not be sent; try again later'), false],
  ];
  for (const [name, error, expected] of cases) {
    it(`${expected ? 'treats' : 'does not treat'} ${name} as the database being away`, () => {
      expect(isDatabaseUnavailable(error)).toBe(expected);
    });
  }
});

describe.runIf(ENGINE === 'sqlite')('SQLite: another process holding the write lock', () => {
  it('a write that outwaits busy_timeout answers 503 with Retry-After, and succeeds once the lock is gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-faults-'));
    const t = await createTestGatehouse({ databaseUrl: `sqlite:${dir}/gh.db`, env: { GATEHOUSE_DB_STATEMENT_TIMEOUT_MS: '200' } });
    try {
      const other = new BetterSqlite3(`${dir}/gh.db`);
      other.exec('BEGIN IMMEDIATE');
      const blocked = await t.request('POST', '/api/auth/sign-up/email', { body: { email: 'locked@faults.test', password: 'correct horse battery' } });
      expectUnavailable(blocked);
      other.exec('ROLLBACK');
      other.close();
      const retried = await t.request('POST', '/api/auth/sign-up/email', { body: { email: 'locked@faults.test', password: 'correct horse battery' } });
      expect(retried.status, retried.text).toBe(201);
    } finally {
      await t.destroy();
    }
  });
});

describe.runIf(postgresAvailable('the PostgreSQL fault tests'))('PostgreSQL: backends ended, locks, timeouts and a database that goes away', () => {
  let admin: pg.Client;
  beforeAll(async () => {
    admin = await adminClient();
  });
  afterAll(async () => {
    await admin.end();
  });

  it('ending the pool\'s backends mid-request answers 503 or succeeds, never 500, and later requests succeed without a restart', async () => {
    const t = await createTestGatehouse({ env: { GATEHOUSE_DB_STATEMENT_TIMEOUT_MS: '0' } });
    try {
      const user = await t.signUp('mid@faults.test');
      // Deterministic "mid-request": the session lookup waits on a lock held by another session
      // while its backend is ended.
      const lock = await lockTables(t.schema!, ['sessions']);
      const inFlight = Promise.all([1, 2, 3].map(() => t.request('GET', '/api/auth/session', { as: user })));
      await until(async () => (await waitingBackends(admin, t.schema!)) >= 1, 'a request waiting on the lock');
      expect(await terminateBackends(admin, t.schema!)).toBeGreaterThan(0);
      await lock.release();
      const answers = await inFlight;
      for (const res of answers) {
        expect([200, 503], res.text).toContain(res.status);
        if (res.status === 503) expectUnavailable(res);
      }
      expect(answers.some((r) => r.status === 503), 'the request whose backend was ended answers 503').toBe(true);

      // Killed while requests keep arriving: every answer is 200 or 503.
      const storm = Promise.all(Array.from({ length: 20 }, () => t.request('GET', '/api/auth/session', { as: user })));
      await terminateBackends(admin, t.schema!);
      for (const res of await storm) {
        expect([200, 503], res.text).toContain(res.status);
        if (res.status === 503) expectUnavailable(res);
      }

      // No restart: the pool reconnected by itself.
      const after = await t.request('GET', '/api/auth/session', { as: user });
      expect(after.status, after.text).toBe(200);
      // A pooled connection ended in the storm may still be handed out once (it answers 503 and
      // leaves the pool): readiness comes back within a few probes, by itself.
      await until(async () => (await t.request('GET', '/readyz')).status === 200, 'readyz to answer 200 again', 40);
    } finally {
      await t.destroy();
    }
  });

  it('ending idle backends (no request running) does not crash the process; the next request reconnects', async () => {
    const t = await createTestGatehouse();
    try {
      const user = await t.signUp('idle@faults.test');
      await Promise.all([1, 2, 3, 4].map(() => t.request('GET', '/api/auth/session', { as: user })));
      const pool = t.deps.database.raw.client as pg.Pool;
      expect(pool.idleCount).toBeGreaterThan(0);
      expect(await terminateBackends(admin, t.schema!)).toBeGreaterThan(0);
      // The pool learns of each loss by its 'error' event (an unhandled one would fail this run) and drops the client.
      await until(() => pool.totalCount === 0, 'the pool to drop every dead client');
      expect(await backendCount(admin, t.schema!)).toBe(0);
      const res = await t.request('GET', '/api/auth/session', { as: user });
      expect(res.status, res.text).toBe(200);
    } finally {
      await t.destroy();
    }
  });

  it('a connection ended inside an open transaction, between two statements, fails that transaction only; nothing crashes', async () => {
    const t = await createTestGatehouse();
    try {
      const pool = t.deps.database.raw.client as pg.Pool;
      let deadPid = 0;
      const outcome = await t.deps.db
        .transaction()
        .execute(async (tx) => {
          deadPid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(tx)).rows[0]!.pid;
          // The checked-out client sits idle in the transaction: its 'error' event has no query to go to.
          await terminateBackends(admin, t.schema!);
          await until(async () => (await backendCount(admin, t.schema!)) === 0, 'the backend to end');
          await new Promise((r) => setTimeout(r, 50)); // let the socket close reach the client
          await sql`select 2`.execute(tx);
          return 'committed';
        })
        .catch((e: unknown) => e);
      expect(isDatabaseUnavailable(outcome), String(outcome)).toBe(true);
      // Other work (the logout outbox's poll) may open a new client meanwhile: it is the ended one that must go.
      const pooled = () => (pool as unknown as { _clients: { processID: number | null }[] })._clients;
      await until(() => pooled().every((c) => c.processID !== deadPid), 'the pool to drop the dead client');
      expect((await t.request('GET', '/readyz')).status).toBe(200);
    } finally {
      await t.destroy();
    }
  });

  it('a statement that outlasts GATEHOUSE_DB_STATEMENT_TIMEOUT_MS answers 503, not 500; the same request succeeds afterwards', async () => {
    const t = await createTestGatehouse({ env: { GATEHOUSE_DB_STATEMENT_TIMEOUT_MS: '300' } });
    try {
      const user = await t.signUp('slow@faults.test');
      const lock = await lockTables(t.schema!, ['sessions']);
      try {
        expectUnavailable(await t.request('GET', '/api/auth/session', { as: user }));
      } finally {
        await lock.release();
      }
      expect((await t.request('GET', '/api/auth/session', { as: user })).status).toBe(200);
    } finally {
      await t.destroy();
    }
  });

  describe('the database goes away behind a proxy (restart, failover)', () => {
    let proxy: DatabaseProxy;
    let t: TestGatehouse;
    beforeAll(async () => {
      proxy = await startDatabaseProxy();
      t = await createTestGatehouse({ databaseUrl: proxy.url, env: { GATEHOUSE_DB_CONNECT_TIMEOUT_MS: '1000' } });
    });
    afterAll(async () => {
      proxy.up();
      await t.destroy();
      await proxy.close();
    });

    it('/readyz and the API answer 503 with Retry-After while it is away, and 200 again once it is back, without a restart', async () => {
      const user = await t.signUp('away@faults.test');
      expect((await t.request('GET', '/readyz')).status).toBe(200);

      proxy.down();
      const ready = await t.request('GET', '/readyz');
      expectUnavailable(ready);
      expectUnavailable(await t.request('GET', '/api/auth/session', { as: user }));
      expectUnavailable(await t.request('POST', '/api/auth/sign-in/email', { body: { email: user.email, password: user.password } }));
      // The SSO endpoints answer 503 too (HTML for a browser), never a protocol failure.
      const sso = await t.request('GET', '/api/auth/sso/callback?state=abc&code=def');
      expect(sso.status).toBe(503);
      expect(sso.headers.get('content-type')).toMatch(/text\/html/);
      expect(Number(sso.headers.get('retry-after'))).toBeGreaterThan(0);

      proxy.up();
      expect((await t.request('GET', '/readyz')).status).toBe(200);
      expect((await t.request('GET', '/api/auth/session', { as: user })).status).toBe(200);
      const signIn = await t.request('POST', '/api/auth/sign-in/email', { body: { email: user.email, password: user.password } });
      expect(signIn.status, signIn.text).toBe(200);
      // The outage was not recorded as an SSO protocol failure.
      const failures = await t.deps.db.selectFrom('audit_events').select('id').where('action', '=', 'sso.login_failed').execute();
      expect(failures).toHaveLength(0);
    });
  });
});
