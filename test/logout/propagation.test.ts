import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOrg, type TestUser } from '../helpers/app.js';
import { startBackchannelRp, type BackchannelRp } from '../helpers/backchannel-rp.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { authorize, browserOf, makeSuperadmin, registerClient, rpConfig, startOpServer, type OpServer } from '../helpers/op.js';
import { configureOidc, ssoLogin } from '../helpers/sso.js';
import { outboxRowsOfSession } from '../../src/logout/store.js';
import { fixedClock } from '../../src/clock.js';

/**
 * SPEC §8 "Propagation": whatever ends a Gatehouse session, every app (OpenID Provider client) it
 * signed into gets a back-channel logout token for it, from the durable outbox, and the audit log
 * says why. The app here validates each token as Back-Channel Logout 1.0 §2.6 requires.
 */
const REDIRECT = 'http://127.0.0.1:9/cb';

let op: OpServer;
let admin: TestUser;
let rp: BackchannelRp;
let app: { clientId: string; clientSecret: string | null };
let idp: RealIdp;
let owner: TestUser;
let orgId: string;

beforeAll(async () => {
  // The instance clock starts 30 s behind (within the ID-token skew), so that tests may move it forward (retry backoff)
  // and the app still sees each logout token's iat in the past, as it requires.
  op = await startOpServer({ clock: fixedClock(new Date(Date.now() - 30_000)) });
  admin = await op.gh.signUp('platform@propagation.test');
  await makeSuperadmin(op.gh, admin);
  rp = await startBackchannelRp(op.base, () => app.clientId);
  app = await registerClient(op.gh, admin, { name: 'App', redirectUris: [REDIRECT], backchannelLogoutUri: rp.url, firstParty: true });
  idp = await startRealIdp({
    redirectUris: [],
    users: [
      { sub: 'una-sub', email: 'una@corp.test', email_verified: true, name: 'Una' },
      { sub: 'rem-sub', email: 'rem@corp.test', email_verified: true, name: 'Rem' },
    ],
  });
  owner = await op.gh.signUp('owner@corp.test');
  orgId = await createOrg(op.gh, owner, 'Corp', 'corp');
  await configureOidc(op.gh, owner, orgId, idp);
});
afterAll(async () => {
  await op?.close();
  await rp?.close();
  await idp?.close();
});

/** Sign the browser whose Gatehouse cookie is `cookie` into the app; returns the ID token's sid (the Gatehouse session id). */
async function intoApp(cookie: string): Promise<{ sid: string; sub: string }> {
  const browser = browserOf(op, { cookie } as TestUser);
  const config = await rpConfig(op, app.clientId, app.clientSecret);
  const run = await authorize(browser, config, {}, REDIRECT);
  const tokens = await oidc.authorizationCodeGrant(config, run.callback, { pkceCodeVerifier: run.verifier, expectedState: run.state, expectedNonce: run.nonce });
  const claims = tokens.claims()!;
  return { sid: claims.sid as string, sub: claims.sub };
}

async function ssoSession(sub: string): Promise<{ cookie: string; userId: string }> {
  const run = await ssoLogin(op.gh, '/api/auth/sso/corp/login', (u) => idp.login(u, sub));
  expect(run.callback?.status, run.callback?.text).toBe(302);
  const cookie = run.callback!.cookies.gatehouse_session!;
  const me = await op.gh.request('GET', '/api/auth/session', { cookies: { gatehouse_session: cookie } });
  return { cookie, userId: me.body.data.user.id };
}

/** The app got exactly one valid logout token for this session, and the audit log gives the reason. */
async function expectLogoutDelivered(sid: string, sub: string, reason: string) {
  await vi.waitFor(() => expect(rp.received.filter((r) => r.claims?.sid === sid)).toHaveLength(1), { timeout: 5000, interval: 50 });
  const [got] = rp.received.filter((r) => r.claims?.sid === sid);
  expect(got).toMatchObject({ ok: true, typ: 'logout+jwt', claims: { sid, sub, aud: app.clientId, iss: op.base } });
  const audit = await op.gh.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'session.revoked').where('target_id', '=', sid).execute();
  expect(audit.map((a) => JSON.parse(a.metadata!).reason)).toEqual([reason]);
  // The row is marked delivered once the app's answer is in, a moment after the app saw the token.
  await vi.waitFor(async () => expect((await outboxRowsOfSession(op.gh.deps.db, sid)).map((r) => [r.client_id, r.status])).toEqual([[app.clientId, 'delivered']]), { timeout: 5000, interval: 50 });
}

describe('every kind of session end reaches the apps the session signed into', () => {
  it('sign-out', async () => {
    const user = await op.gh.signUp('signout@propagation.test');
    const { sid, sub } = await intoApp(user.cookie);
    expect(sid).toBe((await op.gh.request('GET', '/api/auth/session', { as: user })).body.data.session.id);
    expect((await op.gh.request('POST', '/api/auth/sign-out', { as: user })).status).toBe(200);
    await expectLogoutDelivered(sid, sub, 'sign_out');
  });

  it('revoking the session from the list of sessions', async () => {
    const user = await op.gh.signUp('revoke@propagation.test');
    const { sid, sub } = await intoApp(user.cookie);
    const other = await op.gh.request('POST', '/api/auth/sign-in/email', { body: { email: 'revoke@propagation.test', password: user.password } });
    expect(other.status).toBe(200);
    expect((await op.gh.request('DELETE', `/api/user/sessions/${sid}`, { cookies: { gatehouse_session: other.cookies.gatehouse_session! } })).status).toBe(200);
    await expectLogoutDelivered(sid, sub, 'revoked');
  });

  it('a password reset', async () => {
    const user = await op.gh.signUp('reset@propagation.test');
    await op.gh.deps.db.updateTable('users').set({ email_verified: 1 }).where('id', '=', user.id).execute();
    op.gh.deps.sessionCache.clear(); // written around the services: the session cache cannot know
    const { sid, sub } = await intoApp(user.cookie);
    expect((await op.gh.request('POST', '/api/auth/password/forgot', { body: { email: 'reset@propagation.test' } })).status).toBe(200);
    await op.gh.services.emailLinks.idle();
    const token = /\/reset-password\?token=([A-Za-z0-9_-]+)/.exec(op.gh.mails.findLast((m) => m.to === 'reset@propagation.test')!.text)?.[1];
    expect((await op.gh.request('POST', '/api/auth/password/reset', { body: { token, password: 'a brand new password' } })).status).toBe(200);
    await expectLogoutDelivered(sid, sub, 'password_reset');
  });

  it('the claim of an unverified account by the mailbox owner (reset link)', async () => {
    const squatter = await op.gh.signUp('claimed@propagation.test');
    const { sid, sub } = await intoApp(squatter.cookie);
    expect((await op.gh.request('POST', '/api/auth/password/forgot', { body: { email: 'claimed@propagation.test' } })).status).toBe(200);
    await op.gh.services.emailLinks.idle();
    const token = /\/reset-password\?token=([A-Za-z0-9_-]+)/.exec(op.gh.mails.findLast((m) => m.to === 'claimed@propagation.test')!.text)?.[1];
    expect((await op.gh.request('POST', '/api/auth/password/reset', { body: { token, password: 'the real owner password' } })).status).toBe(200);
    await expectLogoutDelivered(sid, sub, 'unverified_account_claimed');
  });

  it('reuse of a spent session refresh token (token theft)', async () => {
    const user = await op.gh.signUp('reuse@propagation.test');
    const { sid, sub } = await intoApp(user.cookie);
    const pair = await op.gh.request('POST', '/api/auth/token', { as: user, body: {} });
    const refresh = (token: string) => op.gh.request('POST', '/api/auth/token', { body: { grant_type: 'refresh_token', refresh_token: token }, origin: null });
    expect((await refresh(pair.body.data.refreshToken)).status).toBe(200);
    expect((await refresh(pair.body.data.refreshToken)).status).toBe(400);
    await expectLogoutDelivered(sid, sub, 'session_token_reuse');
  });

  it('removal from the organization the SSO session signed in to', async () => {
    const { cookie, userId } = await ssoSession('rem-sub');
    const { sid, sub } = await intoApp(cookie);
    expect(sub).toBe(userId);
    expect((await op.gh.request('DELETE', `/api/user/organizations/${orgId}/members/${userId}`, { as: owner })).status).toBe(200);
    await expectLogoutDelivered(sid, sub, 'member_removed');
    expect((await op.gh.request('GET', '/api/auth/session', { cookies: { gatehouse_session: cookie } })).status).toBe(401);
  });

  it('unlinking the SSO identity the session came from', async () => {
    const { cookie, userId } = await ssoSession('una-sub');
    const { sid, sub } = await intoApp(cookie);
    const identities = await op.gh.request('GET', `/api/user/organizations/${orgId}/sso/identities`, { as: owner });
    const identity = identities.body.data.items.find((i: { user: { id: string } }) => i.user.id === userId);
    expect((await op.gh.request('DELETE', `/api/user/organizations/${orgId}/sso/identities/${identity.id}`, { as: owner })).status).toBe(200);
    await expectLogoutDelivered(sid, sub, 'identity_unlinked');
  });

  it('a session that never signed into an app queues nothing, and the refresh tokens of an ended session are revoked', async () => {
    const user = await op.gh.signUp('quiet@propagation.test');
    const pair = await op.gh.request('POST', '/api/auth/token', { as: user, body: {} });
    const session = await op.gh.request('GET', '/api/auth/session', { as: user });
    expect((await op.gh.request('POST', '/api/auth/sign-out', { as: user })).status).toBe(200);
    expect(await outboxRowsOfSession(op.gh.deps.db, session.body.data.session.id)).toEqual([]);
    const row = await op.gh.deps.db.selectFrom('refresh_tokens').select(['revoked_at']).where('session_id', '=', session.body.data.session.id).executeTakeFirstOrThrow();
    expect(row.revoked_at).not.toBeNull();
    expect((await op.gh.request('POST', '/api/auth/token', { body: { grant_type: 'refresh_token', refresh_token: pair.body.data.refreshToken }, origin: null })).status).toBe(400);
  });
});

describe('the outbox retries an app that is down', () => {
  it('an app that is down gets the logout token after it comes back (backoff on the instance clock)', async () => {
    const user = await op.gh.signUp('down@propagation.test');
    const { sid, sub } = await intoApp(user.cookie);
    rp.mode = 'down';
    const hitsBefore = rp.hits;
    expect((await op.gh.request('POST', '/api/auth/sign-out', { as: user })).status).toBe(200);
    // The first attempt comes within seconds and fails (503): the delivery stays pending with a retry time.
    await vi.waitFor(async () => expect((await outboxRowsOfSession(op.gh.deps.db, sid))[0]).toMatchObject({ attempts: 1, status: 'pending', locked_until: null, last_error: expect.stringContaining('503') }), { timeout: 5000, interval: 50 });
    expect(rp.hits).toBe(hitsBefore + 1);
    const [pending] = await outboxRowsOfSession(op.gh.deps.db, sid);
    expect(Date.parse(pending!.next_attempt_at) - op.gh.clock.now().getTime()).toBe(5000);
    // Not before its time: polls on a clock that has not moved send nothing.
    await op.gh.services.logoutOutbox.runOnce();
    expect(rp.hits).toBe(hitsBefore + 1);
    // Still down at the second attempt: the backoff grows.
    op.gh.clock.advance(5000);
    // (locked_until null: the attempt is over and its retry time written, not merely claimed.)
    await vi.waitFor(async () => expect((await outboxRowsOfSession(op.gh.deps.db, sid))[0]).toMatchObject({ attempts: 2, locked_until: null }), { timeout: 5000, interval: 50 });
    expect(Date.parse((await outboxRowsOfSession(op.gh.deps.db, sid))[0]!.next_attempt_at) - op.gh.clock.now().getTime()).toBe(15_000);
    // The app is back: the next attempt delivers a token it accepts.
    rp.mode = 'ok';
    op.gh.clock.advance(15_000);
    await expectLogoutDelivered(sid, sub, 'sign_out');
    expect((await outboxRowsOfSession(op.gh.deps.db, sid))[0]!.attempts).toBe(3);
  });

  it('gives up after 24 hours of retries (abandoned, not retried for ever)', async () => {
    const user = await op.gh.signUp('gone@propagation.test');
    const { sid } = await intoApp(user.cookie);
    rp.mode = 'down';
    const started = op.gh.clock.now();
    try {
      expect((await op.gh.request('POST', '/api/auth/sign-out', { as: user })).status).toBe(200);
      await vi.waitFor(async () => expect((await outboxRowsOfSession(op.gh.deps.db, sid))[0]).toMatchObject({ attempts: 1, locked_until: null }), { timeout: 5000, interval: 50 });
      // The test drives the passes from here (the instance's own poller would race it for each one).
      await op.gh.services.logoutOutbox.stop();
      for (let i = 0; i < 100; i++) {
        const [row] = await outboxRowsOfSession(op.gh.deps.db, sid);
        if (row!.status !== 'pending') break;
        op.gh.clock.set(new Date(row!.next_attempt_at));
        await op.gh.services.logoutOutbox.runOnce();
      }
      const [row] = await outboxRowsOfSession(op.gh.deps.db, sid);
      expect(row).toMatchObject({ status: 'abandoned', last_error: expect.stringContaining('503') });
      expect(Date.parse(row!.finished_at!) - Date.parse(row!.created_at)).toBeLessThanOrEqual(24 * 3600_000);
      expect(row!.attempts).toBeGreaterThan(40);
    } finally {
      rp.mode = 'ok';
      op.gh.clock.set(started);
      op.gh.services.logoutOutbox.start();
    }
  });
});
