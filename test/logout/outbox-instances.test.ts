import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DATABASE_URL, type TestUser } from '../helpers/app.js';
import { startBackchannelRp, type BackchannelRp } from '../helpers/backchannel-rp.js';
import { authorize, browserOf, makeSuperadmin, registerClient, rpConfig, startOpServer, startOpServerBehind, type OpServer } from '../helpers/op.js';
import { adminClient, postgresAvailable, until } from '../helpers/postgres.js';
import { insertOutboxRows, outboxRowsOfSession } from '../../src/logout/store.js';
import { newId } from '../../src/ids.js';
import { cliArgs } from '../helpers/cli.js';

/**
 * SPEC §8 "Propagation": nothing is lost when an instance dies. Three instances on one PostgreSQL
 * database: Q queues the delivery when the session ends and goes away without sending it
 * (GATEHOUSE_LOGOUT_SENDER=false, then closed); A — a real `gatehouse start` process — claims it,
 * is SIGKILLed while its request to the app is in flight; B — another process — sends it once A's
 * lease has run out. The app accepts exactly that one token.
 */
const REDIRECT = 'http://127.0.0.1:9/cb';

describe.runIf(postgresAvailable('the multi-instance logout outbox test'))('a queued back-channel logout survives the instances that queued and claimed it', () => {
  const database = `gh_outbox_${randomBytes(4).toString('hex')}`;
  let url: string;
  let admin: pg.Client;
  let q: OpServer;
  let rp: BackchannelRp;
  let b: { base: string } | null = null;
  const children: ChildProcess[] = [];

  async function start(name: string): Promise<{ child: ChildProcess; base: string; output(): string }> {
    let out = '';
    let exited: number | null | undefined;
    const child = spawn(process.execPath, cliArgs('start'), {
      cwd: mkdtempSync(join(tmpdir(), `gh-${name}-`)),
      env: {
        PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATABASE_URL: url, PORT: '0', HOST: '127.0.0.1',
        GATEHOUSE_SECRET_KEYS: q.gh.deps.config.secretKeys!, GATEHOUSE_LOG_LEVEL: 'info', GATEHOUSE_BASE_URL: q.base, GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    child.on('exit', (code) => (exited = code));
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    await until(() => /"listen":"127\.0\.0\.1:(\d+)"/.test(out) || exited !== undefined, `${name} to listen`, 2400);
    const port = /"listen":"127\.0\.0\.1:(\d+)"/.exec(out)?.[1];
    if (!port) throw new Error(`${name} did not come up:\n${out}`);
    return { child, base: `http://127.0.0.1:${port}`, output: () => out };
  }

  beforeAll(async () => {
    admin = await adminClient();
    await admin.query(`create database ${database}`);
    const u = new URL(TEST_DATABASE_URL!);
    u.pathname = `/${database}`;
    url = u.toString();
    q = await startOpServer({ databaseUrl: url, schema: 'public', env: { GATEHOUSE_LOGOUT_SENDER: 'false' } });
  }, 120_000);

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rp?.close();
    await q?.close().catch(() => {});
    await admin.query(`drop database if exists ${database} with (force)`);
    await admin.end();
  });

  it('queued by one instance, claimed by a second that is killed mid-delivery, delivered once by a third', async () => {
    const platform = await q.gh.signUp('platform@outbox.test');
    await makeSuperadmin(q.gh, platform);
    rp = await startBackchannelRp(q.base, () => client.clientId, { jwksUrl: () => `${b!.base}/.well-known/jwks.json` });
    const client = await registerClient(q.gh, platform, { name: 'App', redirectUris: [REDIRECT], backchannelLogoutUri: rp.url, firstParty: true });
    const user: TestUser = await q.gh.signUp('user@outbox.test');
    const config = await rpConfig(q, client.clientId, client.clientSecret);
    const run = await authorize(browserOf(q, user), config, {}, REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(config, run.callback, { pkceCodeVerifier: run.verifier, expectedState: run.state, expectedNonce: run.nonce });
    const sid = tokens.claims()!.sid as string;

    // Q ends the session and queues the delivery, but does not send it; then Q is gone.
    rp.mode = 'hang';
    expect((await q.gh.request('POST', '/api/auth/sign-out', { as: user })).status).toBe(200);
    expect(await outboxRowsOfSession(q.gh.deps.db, sid)).toMatchObject([{ status: 'pending', attempts: 0 }]);
    const db = q.gh.deps.db;
    const rows = () => outboxRowsOfSession(db, sid);

    // A claims it and sends; the app holds the request; A is killed before it has an answer.
    const a = await start('a');
    await until(() => rp.hits === 1, 'A to send the logout token', 800).catch((e: Error) => {
      throw new Error(`${e.message}\n${a.output()}`);
    });
    a.child.kill('SIGKILL');
    await until(() => a.child.signalCode === 'SIGKILL', 'A to die');
    const [held] = await rows();
    expect(held).toMatchObject({ status: 'pending', attempts: 1 });
    expect(Date.parse(held!.locked_until!)).toBeGreaterThan(Date.now());

    // B sends it once A's lease has run out; the app accepts it.
    rp.mode = 'ok';
    b = await start('b');
    await until(async () => (await rows())[0]!.status === 'delivered', 'B to deliver after the lease', 2400);
    const [done] = await rows();
    expect(done).toMatchObject({ status: 'delivered', attempts: 2 });
    expect(Date.parse(done!.finished_at!)).toBeGreaterThanOrEqual(Date.parse(held!.locked_until!));
    const valid = rp.received.filter((r) => r.ok && r.claims?.sid === sid);
    expect(valid).toHaveLength(1);
    expect(valid[0]!.claims).toMatchObject({ sub: user.id, aud: client.clientId, iss: q.base });
    await q.close();
  }, 120_000);
});

describe.runIf(postgresAvailable('the concurrent outbox claim test'))('two instances polling one outbox at once', () => {
  it('each delivery is claimed and sent by exactly one of them', async () => {
    const first = await startOpServer();
    const second = await startOpServerBehind(first.base, { clock: first.gh.clock, databaseUrl: TEST_DATABASE_URL!, schema: first.gh.schema!, env: { GATEHOUSE_SECRET_KEYS: first.gh.deps.config.secretKeys! } });
    let app: { clientId: string } = { clientId: '' };
    const rp = await startBackchannelRp(first.base, () => app.clientId);
    try {
      const platform = await first.gh.signUp('platform@claims.test');
      await makeSuperadmin(first.gh, platform);
      app = await registerClient(first.gh, platform, { name: 'App', redirectUris: [REDIRECT], backchannelLogoutUri: rp.url, firstParty: true });
      // Both instances' own pollers stop: the test drives the passes, many at once.
      await first.gh.services.logoutOutbox.stop();
      await second.gh.services.logoutOutbox.stop();
      const now = first.gh.clock.now().toISOString();
      const rows = Array.from({ length: 30 }, (_, i) => ({
        id: newId(), session_id: `session-${i}`, user_id: platform.id, client_id: app.clientId, reason: 'sign_out', status: 'pending' as const,
        attempts: 0, next_attempt_at: now, locked_until: null, last_error: null, created_at: now, give_up_at: '9999-12-31T00:00:00.000Z', finished_at: null,
      }));
      await insertOutboxRows(first.gh.deps.db, rows);
      // Rounds of six concurrent passes (three per instance), each claiming up to 20, until none is left.
      let claimed = 0;
      for (let round = 0; round < 5; round++) {
        const passes = await Promise.all([first, second, first, second, first, second].map((s) => s.gh.services.logoutOutbox.runOnce()));
        claimed += passes.reduce((a, b) => a + b, 0);
      }
      expect(claimed).toBe(30);
      const after = await first.gh.deps.db.selectFrom('logout_outbox').select(['status', 'attempts', 'last_error']).execute();
      expect(after.filter((r) => r.status !== 'delivered')).toEqual([]);
      expect(rp.received.filter((r) => !r.ok).map((r) => r.reason)).toEqual([]);
      const sids = rp.received.filter((r) => r.ok).map((r) => r.claims!.sid);
      expect(sids).toHaveLength(30);
      expect(new Set(sids).size).toBe(30);
      const finished = await first.gh.deps.db.selectFrom('logout_outbox').select(['status', 'attempts']).execute();
      expect(finished.every((r) => r.status === 'delivered' && r.attempts === 1)).toBe(true);
    } finally {
      await rp.close();
      await second.close();
      await first.close();
    }
  }, 60_000);
});
