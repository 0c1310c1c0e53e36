import { mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applicationName } from '../../src/db/database.js';
import type { SessionRow, UserRow } from '../../src/db/schema.js';
import { createSessionCache, type SessionWithUser } from '../../src/sessions/cache.js';
import { BASE_URL, createTestGatehouse, dropSchema, ENGINE, TEST_DATABASE_URL, testKeySpec, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { adminClient, until } from '../helpers/postgres.js';

/**
 * The per-instance session cache (src/sessions/cache.ts) and how it is kept true across
 * instances (src/sessions/cache-sync.ts): every way a session ends, and every change to its
 * user, reaches a cached copy on another instance within one second (issue #16).
 */

function entry(sessionId: string, userId: string): SessionWithUser {
  return { session: { id: sessionId, user_id: userId, revoked_at: null } as SessionRow, user: { id: userId } as UserRow };
}

describe('the session cache itself', () => {
  it('a lookup that raced a revocation never puts the revoked session back (generation check)', () => {
    const cache = createSessionCache({ maxEntries: 10, maxAgeMs: 10_000, now: () => 0 });
    const { hit, stamp } = cache.lookup('t:a');
    expect(hit).toBeNull();
    // While the database read of the miss is in flight, the session is revoked and dropped.
    cache.dropSessions(['s1']);
    cache.store('t:a', entry('s1', 'u1'), stamp);
    expect(cache.lookup('t:a').hit).toBeNull();
    expect(cache.size).toBe(0);
  });

  it('dropping a user forgets every session of that user, under each of its keys, and only those', () => {
    const cache = createSessionCache({ maxEntries: 10, maxAgeMs: 10_000, now: () => 0 });
    let stamp = cache.lookup('t:a').stamp;
    cache.store('t:a', entry('s1', 'u1'), stamp);
    cache.store('i:s1', entry('s1', 'u1'), stamp);
    cache.store('t:b', entry('s2', 'u1'), stamp);
    cache.store('t:c', entry('s3', 'u2'), stamp);
    expect(cache.size).toBe(3);
    cache.dropUser('u1');
    expect(cache.lookup('t:a').hit).toBeNull();
    expect(cache.lookup('i:s1').hit).toBeNull();
    expect(cache.lookup('t:b').hit).toBeNull();
    expect(cache.lookup('t:c').hit?.session.id).toBe('s3');
    stamp = cache.lookup('t:x').stamp;
    cache.store('t:x', { ...entry('s4', 'u3'), session: { ...entry('s4', 'u3').session, revoked_at: '2026-01-01T00:00:00.000Z' } }, stamp);
    expect(cache.lookup('t:x').hit).toBeNull(); // a revoked session is never kept
  });

  it('is bounded: the oldest entry goes first, and an entry is read again after its maximum age', () => {
    let now = 0;
    const cache = createSessionCache({ maxEntries: 2, maxAgeMs: 1000, now: () => now });
    const stamp = cache.lookup('t:a').stamp;
    cache.store('t:a', entry('s1', 'u1'), stamp);
    cache.store('t:b', entry('s2', 'u1'), stamp);
    cache.store('t:c', entry('s3', 'u1'), stamp);
    expect(cache.size).toBe(2);
    expect(cache.lookup('t:a').hit).toBeNull();
    now = 1000;
    expect(cache.lookup('t:b').hit).toBeNull();
  });

  it('answers nothing while its freshness source says it cannot know (the notification connection is down)', () => {
    const cache = createSessionCache({ maxEntries: 10, maxAgeMs: 10_000, now: () => 0 });
    let usable = true;
    cache.setFreshness({ usable: () => usable });
    cache.store('t:a', entry('s1', 'u1'), cache.lookup('t:a').stamp);
    usable = false;
    expect(cache.lookup('t:a').hit).toBeNull();
    cache.store('t:b', entry('s2', 'u1'), cache.lookup('t:b').stamp);
    usable = true;
    expect(cache.lookup('t:b').hit).toBeNull();
  });
});

/** Two instances on one database: a PostgreSQL schema with TEST_DATABASE_URL, else one SQLite file. */
describe(`the session cache across two instances on ${ENGINE}`, () => {
  let a: TestGatehouse;
  let b: TestGatehouse;
  const schema = TEST_DATABASE_URL ? `cache_${randomBytes(4).toString('hex')}` : undefined;

  beforeAll(async () => {
    const databaseUrl = TEST_DATABASE_URL ?? `sqlite:${mkdtempSync(join(tmpdir(), 'gh-cache-'))}/shared.db`;
    const env = { GATEHOUSE_SECRET_KEYS: testKeySpec() };
    a = await createTestGatehouse({ databaseUrl, env, ...(schema ? { schema } : {}) });
    b = await createTestGatehouse({ databaseUrl, env, ...(schema ? { schema } : {}), clock: a.clock });
  });
  afterAll(async () => {
    await a.destroy();
    await b.destroy();
    if (schema) await dropSchema(schema);
  });

  const sessionOn = async (t: TestGatehouse, user: TestUser) => (await t.request('GET', '/api/auth/session', { as: user })).status;

  /** B holds the user's session in its cache, then `end` runs on A; B must refuse it within one second. */
  async function refusedByBWithinASecond(user: TestUser, end: () => Promise<void>) {
    expect(await sessionOn(b, user)).toBe(200);
    expect(await sessionOn(b, user)).toBe(200);
    expect(b.deps.sessionCache.size).toBeGreaterThan(0);
    await end();
    const deadline = Date.now() + 1000;
    let status = await sessionOn(b, user);
    while (status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
      status = await sessionOn(b, user);
    }
    expect(status, 'B still answered 200 a second after the session ended on A').toBe(401);
  }

  it('a session signed out on A is refused by B within one second', async () => {
    const user = await a.signUp(`sign-out-${randomBytes(3).toString('hex')}@cache.test`);
    await refusedByBWithinASecond(user, async () => {
      expect((await a.request('POST', '/api/auth/sign-out', { as: user })).status).toBeLessThan(300);
    });
  });

  it('a session the user revokes on A (DELETE /api/user/sessions/{id}) is refused by B within one second', async () => {
    const user = await a.signUp(`revoke-${randomBytes(3).toString('hex')}@cache.test`);
    const other = await a.request('POST', '/api/auth/sign-in/email', { body: { email: user.email, password: user.password } });
    expect(other.status).toBe(200);
    const id = (await a.request('GET', '/api/auth/session', { as: user })).body.data.session.id as string;
    await refusedByBWithinASecond(user, async () => {
      expect((await a.request('DELETE', `/api/user/sessions/${id}`, { as: { cookie: other.cookie! } })).status).toBeLessThan(300);
    });
  });

  it('a password reset on A ends the sessions B has cached within one second', async () => {
    const user = await a.signUp(`reset-${randomBytes(3).toString('hex')}@cache.test`);
    await refusedByBWithinASecond(user, async () => {
      expect((await a.request('POST', '/api/auth/password/forgot', { body: { email: user.email } })).status).toBe(200);
      await a.services.emailLinks.idle(); // the mail is sent after the answer
      const mail = a.mails.findLast((m) => m.to === user.email && /reset/i.test(m.subject));
      const token = new URL(/(\S*\/reset-password\?token=\S+)/.exec(mail!.text)![1]!, BASE_URL).searchParams.get('token')!;
      expect((await a.request('POST', '/api/auth/password/reset', { body: { token, password: 'a brand new password' } })).status).toBe(200);
    });
  });

  it('a change to the user on A (its name) is what B answers within one second', async () => {
    const user = await a.signUp(`rename-${randomBytes(3).toString('hex')}@cache.test`);
    const nameOnB = async () => (await b.request('GET', '/api/user/me', { as: user })).body.data.user?.name ?? (await b.request('GET', '/api/user/me', { as: user })).body.data.name;
    await nameOnB();
    expect((await a.request('PATCH', '/api/user/me', { as: user, body: { name: 'Renamed on A' } })).status).toBe(200);
    await until(async () => (await nameOnB()) === 'Renamed on A', 'B to answer the new name', 40);
  });

  it('memberships B has cached follow A within one second: a new organization, its rename, a removal', async () => {
    const owner = await a.signUp(`orgs-${randomBytes(3).toString('hex')}@cache.test`);
    const member = await a.signUp(`orgs-member-${randomBytes(3).toString('hex')}@cache.test`);
    const orgsOnB = async (u: TestUser) => ((await b.request('GET', '/api/auth/session', { as: u })).body.data.memberships as Array<{ name: string; role: string }>).map((m) => `${m.name}:${m.role}`);
    expect(await orgsOnB(owner)).toEqual([]);
    const created = await a.request('POST', '/api/user/organizations', { as: owner, body: { name: 'Cached Org', slug: `cached-${randomBytes(3).toString('hex')}` } });
    expect(created.status).toBe(201);
    const orgId = created.body.data.id as string;
    await until(async () => (await orgsOnB(owner)).join() === 'Cached Org:owner', 'B to list the new organization', 40);
    expect((await a.request('PATCH', `/api/user/organizations/${orgId}`, { as: owner, body: { name: 'Renamed Org' } })).status).toBe(200);
    await until(async () => (await orgsOnB(owner)).join() === 'Renamed Org:owner', 'B to list the new name', 40);
    // A member joins (invitation accepted on A), B lists it; the owner removes them on A, B stops listing it.
    const invite = await a.request('POST', `/api/user/organizations/${orgId}/invitations`, { as: owner, body: { email: member.email, role: 'member' } });
    expect(invite.status).toBe(201);
    await a.services.emailLinks.idle();
    await a.deps.db.updateTable('users').set({ email_verified: 1 }).where('id', '=', member.id).execute();
    a.deps.sessionCache.clear(); // written around the services: the session cache cannot know
    b.deps.sessionCache.clear();
    const mail = a.mails.findLast((m) => m.to === member.email);
    const token = /\/invitations\/([A-Za-z0-9_-]+)/.exec(mail!.text)![1]!;
    expect(await orgsOnB(member)).toEqual([]);
    expect((await a.request('POST', `/api/user/invitations/${token}/accept`, { as: member })).status).toBeLessThan(300);
    await until(async () => (await orgsOnB(member)).join() === 'Renamed Org:member', 'B to list the membership', 40);
    expect((await a.request('DELETE', `/api/user/organizations/${orgId}/members/${member.id}`, { as: owner })).status).toBeLessThan(300);
    await until(async () => (await orgsOnB(member)).length === 0, 'B to drop the removed membership', 40);
  });

  it.runIf(ENGINE === 'postgres')('while B cannot hear the database (its LISTEN connection ended), B answers from the database, and caches again once it is back', async () => {
    const user = await a.signUp(`listener-${randomBytes(3).toString('hex')}@cache.test`);
    expect(await sessionOn(b, user)).toBe(200);
    const admin: pg.Client = await adminClient();
    try {
      // Both instances listen under the same name; ending both is the harshest case.
      const listeners = await admin.query<{ pid: number }>('select pid from pg_stat_activity where application_name = $1', [`${applicationName(schema)}:cache`]);
      expect(listeners.rows.length).toBe(2);
      for (const { pid } of listeners.rows) await admin.query('select pg_terminate_backend($1)', [pid]);
      // The revocation's NOTIFY is sent while nobody listens: lost. B must not answer from memory.
      await until(() => b.deps.sessionCache.size === 0, 'B to drop its cache when its connection ends', 40);
      expect((await a.request('POST', '/api/auth/sign-out', { as: user })).status).toBeLessThan(300);
      expect(await sessionOn(b, user)).toBe(401);
      // Reconnected (1 s back-off): B caches again, and hears the next revocation.
      const again = await a.signUp(`listener-again-${randomBytes(3).toString('hex')}@cache.test`);
      await until(async () => (await sessionOn(b, again)) === 200 && b.deps.sessionCache.size > 0, 'B to cache again after reconnecting', 200);
      await refusedByBWithinASecond(again, async () => {
        expect((await a.request('POST', '/api/auth/sign-out', { as: again })).status).toBeLessThan(300);
      });
    } finally {
      await admin.end();
    }
  }, 30_000);
});
