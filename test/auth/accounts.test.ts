import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HOUR, DAY } from '../../src/clock.js';
import { createTestGatehouse, type TestGatehouse } from '../helpers/app.js';

let t: TestGatehouse;
beforeEach(async () => {
  t = await createTestGatehouse();
});
afterEach(async () => {
  await t.destroy();
});

describe('sign-up', () => {
  it('creates the user and a session cookie', async () => {
    const res = await t.request('POST', '/api/auth/sign-up/email', { body: { email: 'Ada@Example.com', password: 'long enough pw', name: 'Ada' } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ success: true, status: 201, code: 'OK', data: { user: { email: 'ada@example.com', name: 'Ada', emailVerified: false }, session: { authMethod: 'password', mfa: 'none' } } });
    const setCookie = res.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/gatehouse_session=gs_/);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Lax/);
    expect(setCookie).not.toMatch(/Secure/); // http base URL
    const session = await t.request('GET', '/api/auth/session', { as: { cookie: res.cookie! } });
    expect(session.status).toBe(200);
    expect(session.body.data.user.email).toBe('ada@example.com');
    expect(session.body.data.memberships).toEqual([]);
    expect(session.body.data.session).toMatchObject({ authMethod: 'password', connectionId: null, organizationId: null, mfa: 'none' });
  });

  it('stores only an argon2id hash of the password and a SHA-256 of the session token', async () => {
    const u = await t.signUp('hash@example.com', 'a very secret pw');
    const row = await t.deps.db.selectFrom('users').selectAll().where('id', '=', u.id).executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^\$argon2id\$/);
    expect(row.password_hash).not.toContain('a very secret pw');
    const sessions = await t.deps.db.selectFrom('sessions').select('token_hash').where('user_id', '=', u.id).execute();
    expect(sessions[0]!.token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(sessions[0]!.token_hash).not.toContain(u.cookie);
  });

  it('refuses a duplicate email, case-insensitively, with 409 CONFLICT', async () => {
    await t.signUp('dup@example.com');
    const res = await t.request('POST', '/api/auth/sign-up/email', { body: { email: 'DUP@example.com', password: 'long enough pw' } });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ success: false, code: 'CONFLICT', details: { field: 'email' } });
    expect(await t.deps.db.selectFrom('users').select('id').execute()).toHaveLength(1);
  });

  it('rejects a short password, a bad email and unknown fields, creating nothing', async () => {
    for (const body of [
      { email: 'a@example.com', password: 'short' },
      { email: 'not-an-email', password: 'long enough pw' },
      { email: 'a@example.com', password: 'long enough pw', isSuperadmin: true },
      { email: 'a@example.com' },
    ]) {
      const res = await t.request('POST', '/api/auth/sign-up/email', { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect(res.body.details.issues.length).toBeGreaterThan(0);
    }
    const unknown = await t.request('POST', '/api/auth/sign-up/email', { body: { email: 'a@example.com', password: 'long enough pw', isSuperadmin: true } });
    expect(unknown.body.details.issues[0].message).toMatch(/unknown field.*isSuperadmin/);
    expect(await t.deps.db.selectFrom('users').select('id').execute()).toHaveLength(0);
  });
});

describe('sign-in', () => {
  it('signs in with the right password and creates a new session', async () => {
    const u = await t.signUp('bob@example.com', 'bobs password');
    const res = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'BOB@example.com', password: 'bobs password' } });
    expect(res.status).toBe(200);
    expect(res.cookie).toBeTruthy();
    expect(res.cookie).not.toBe(u.cookie);
  });

  it('answers an unknown email exactly like a wrong password', async () => {
    await t.signUp('carol@example.com', 'carols password');
    const wrong = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'carol@example.com', password: 'nope nope nope' } });
    const unknown = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'nobody@example.com', password: 'nope nope nope' } });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    const strip = (b: Record<string, unknown>) => ({ ...b });
    expect(strip(wrong.body)).toEqual(strip(unknown.body));
    expect(wrong.body.code).toBe('INVALID_CREDENTIALS');
    expect(wrong.cookie).toBeNull();
  });

  it('runs one argon2 verification for an unknown email too (no fast path that reveals existence)', async () => {
    let verifications = 0;
    const real = t.deps.passwords;
    t.deps.passwords.verify = async (h, p) => (verifications++, real.verify.call(real, h, p));
    const origDummy = real.verifyDummy;
    t.deps.passwords.verifyDummy = async (p) => (verifications++, origDummy.call(real, p));
    await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'ghost@example.com', password: 'whatever pw' } });
    expect(verifications).toBe(1);
  });
});

describe('sessions', () => {
  it('sign-out revokes the session', async () => {
    const u = await t.signUp('out@example.com');
    const res = await t.request('POST', '/api/auth/sign-out', { as: u });
    expect(res.status).toBe(200);
    expect(res.headers.get('set-cookie')).toMatch(/gatehouse_session=;/);
    expect((await t.request('GET', '/api/auth/session', { as: u })).status).toBe(401);
  });

  it('answers 401 UNAUTHENTICATED when signed out or with a forged cookie', async () => {
    const none = await t.request('GET', '/api/auth/session');
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('UNAUTHENTICATED');
    const forged = await t.request('GET', '/api/auth/session', { as: { cookie: 'gs_' + 'A'.repeat(43) } });
    expect(forged.status).toBe(401);
  });

  it('expires after 7 idle days, slides while used, and ends after 30 days regardless', async () => {
    const u = await t.signUp('idle@example.com');
    t.clock.advance(6 * DAY);
    expect((await t.request('GET', '/api/auth/session', { as: u })).status).toBe(200); // slides
    t.clock.advance(6 * DAY);
    expect((await t.request('GET', '/api/auth/session', { as: u })).status).toBe(200);
    t.clock.advance(7 * DAY + HOUR);
    expect((await t.request('GET', '/api/auth/session', { as: u })).status).toBe(401); // idle expiry

    const v = await t.signUp('absolute@example.com');
    for (let i = 0; i < 5; i++) {
      t.clock.advance(5 * DAY);
      expect((await t.request('GET', '/api/auth/session', { as: v })).status).toBe(200);
    }
    t.clock.advance(4 * DAY); // day 29: still valid
    expect((await t.request('GET', '/api/auth/session', { as: v })).status).toBe(200);
    t.clock.advance(2 * DAY);
    expect((await t.request('GET', '/api/auth/session', { as: v })).status).toBe(401); // 31 days: absolute expiry
  });

  it('writes lastSeenAt at most every five minutes', async () => {
    const u = await t.signUp('seen@example.com');
    const read = async () => (await t.deps.db.selectFrom('sessions').select('last_seen_at').where('user_id', '=', u.id).executeTakeFirstOrThrow()).last_seen_at;
    const first = await read();
    t.clock.advance(60_000);
    await t.request('GET', '/api/auth/session', { as: u });
    expect(await read()).toBe(first);
    t.clock.advance(5 * 60_000);
    await t.request('GET', '/api/auth/session', { as: u });
    expect(await read()).not.toBe(first);
  });

  it('lists my sessions and revokes one of them, but not somebody else’s', async () => {
    const u = await t.signUp('many@example.com', 'many password');
    const second = await t.request('POST', '/api/auth/sign-in/email', { body: { email: u.email, password: 'many password' } });
    const list = await t.request('GET', '/api/user/sessions', { as: u });
    expect(list.status).toBe(200);
    expect(list.body.data.items).toHaveLength(2);
    expect(list.body.data.items.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
    const other = list.body.data.items.find((s: { current: boolean }) => !s.current);
    const mallory = await t.signUp('mallory@example.com');
    const steal = await t.request('DELETE', `/api/user/sessions/${other.id}`, { as: mallory });
    expect(steal.status).toBe(404);
    const del = await t.request('DELETE', `/api/user/sessions/${other.id}`, { as: u });
    expect(del.status).toBe(200);
    expect((await t.request('GET', '/api/auth/session', { as: { cookie: second.cookie! } })).status).toBe(401);
    expect((await t.request('DELETE', '/api/user/sessions/not-a-ulid', { as: u })).status).toBe(400);
  });
});

describe('profile', () => {
  it('reads and updates my profile', async () => {
    const u = await t.signUp('me@example.com');
    const res = await t.request('PATCH', '/api/user/me', { as: u, body: { name: 'Me Myself' } });
    expect(res.status).toBe(200);
    expect(res.body.data.name).toBe('Me Myself');
    const me = await t.request('GET', '/api/user/me', { as: u });
    expect(me.body.data).toMatchObject({ email: 'me@example.com', name: 'Me Myself', isSuperadmin: false });
    expect((await t.request('PATCH', '/api/user/me', { as: u, body: { email: 'x@example.com' } })).status).toBe(400);
  });
});
