import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASE_URL, testKeySpec } from '../helpers/app.js';
import { adminClient, postgresAvailable, until } from '../helpers/postgres.js';
import { cliArgs } from '../helpers/cli.js';

/**
 * The real process: `gatehouse start` on its own PostgreSQL database, its backends ended by an
 * administrator while it is idle and while requests run. It must answer 200 or 503 throughout,
 * never exit, and serve again without a restart (SPEC §12).
 */

describe.runIf(postgresAvailable('the gatehouse start fault test'))('gatehouse start survives its database connections being ended', () => {
  const database = `gh_start_${randomBytes(4).toString('hex')}`;
  let admin: pg.Client;
  let child: ChildProcess;
  let base: string;
  let exited: number | null | undefined;
  let out = '';

  beforeAll(async () => {
    admin = await adminClient();
    await admin.query(`create database ${database}`);
    const url = new URL(TEST_DATABASE_URL!);
    url.pathname = `/${database}`;
    child = spawn(process.execPath, cliArgs('start'), {
      cwd: mkdtempSync(join(tmpdir(), 'gh-start-')),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATABASE_URL: url.toString(), PORT: '0', HOST: '127.0.0.1', GATEHOUSE_SECRET_KEYS: testKeySpec(), GATEHOUSE_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.on('exit', (code) => (exited = code));
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await until(() => /"listen":"127\.0\.0\.1:(\d+)"/.test(out) || exited !== undefined, 'gatehouse start to listen', 2400);
    const port = /"listen":"127\.0\.0\.1:(\d+)"/.exec(out)?.[1];
    if (!port) throw new Error(`gatehouse start did not come up:\n${out}`);
    base = `http://127.0.0.1:${port}`;
  }, 120_000);

  afterAll(async () => {
    if (child && exited === undefined) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    await admin.query(`drop database if exists ${database} with (force)`);
    await admin.end();
  });

  const terminate = async () => {
    const res = await admin.query<{ pid: number }>("select pid from pg_stat_activity where datname = $1 and application_name = 'gatehouse'", [database]);
    for (const { pid } of res.rows) await admin.query('select pg_terminate_backend($1)', [pid]);
    return res.rows.length;
  };

  it('idle and mid-request terminations: every answer is 200 or 503, the process stays up, and it serves again without a restart', async () => {
    const signUp = await fetch(`${base}/api/auth/sign-up/email`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'cli@faults.test', password: 'correct horse battery' }) });
    expect(signUp.status).toBe(201);
    const cookie = signUp.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const session = () => fetch(`${base}/api/auth/session`, { headers: { cookie } });
    await Promise.all([1, 2, 3].map(() => session()));

    // Idle: nobody is asking; the pool learns of it by 'error' events.
    expect(await terminate()).toBeGreaterThan(0);
    await until(async () => (await admin.query("select 1 from pg_stat_activity where datname = $1 and application_name = 'gatehouse'", [database])).rowCount === 0, 'the backends to end');
    expect((await fetch(`${base}/readyz`)).status).toBe(200);

    // While requests run.
    for (let round = 0; round < 3; round++) {
      const storm = Promise.all(Array.from({ length: 15 }, () => session()));
      await terminate();
      for (const res of await storm) {
        expect([200, 503]).toContain(res.status);
        if (res.status === 503) expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      }
    }
    expect(exited, 'the process is still running').toBeUndefined();
    expect((await session()).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    // The pool's listeners handled every loss; nothing reached the process-level guard.
    expect(out).toContain('database connection lost');
    expect(out).not.toContain('outside a request');
  });
});
