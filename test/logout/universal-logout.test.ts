import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestGatehouse, ENGINE, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { startMockOkta, type MockOkta } from '../helpers/okta.js';
import { makeSuperadmin, registerClient } from '../helpers/op.js';
import { sha256 } from '../../src/crypto/tokens.js';
import { outboxRowsOfSession, recordSessionClient } from '../../src/logout/store.js';
import {
  byEmail, isAlive, linkedAccount, oktaOrg, oktaSignIn, refresh, refreshTokenOf, UL_URL, universalLogout,
} from '../helpers/universal-logout.js';

/**
 * Okta Universal Logout (SPEC §8) end to end: a mock Okta org on loopback (org authorization
 * server + custom authorization server `/oauth2/default`, test/helpers/okta.ts), real SSO logins
 * through it, real Global Token Revocation requests signed with the org key.
 */
let t: TestGatehouse;
let okta: MockOkta;
let owner: TestUser;
let corp: { orgId: string; slug: string };
let n = 0;

beforeAll(async () => {
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  okta = await startMockOkta({ now: () => t.clock.now() });
  owner = await t.signUp('owner@corp-admin.test');
  corp = await oktaOrg(t, owner, okta, 'corp');
});
afterAll(async () => {
  await t.destroy();
  await okta.close();
});

/** A new Okta user of Corp, signed in through Corp's Okta; the account is created just in time. */
async function corpUser(domain = 'home.test') {
  n += 1;
  const u = { id: `00u${n}corp${Math.random().toString(36).slice(2, 8)}`, email: `user${n}-${Math.random().toString(36).slice(2, 6)}@${domain}` };
  okta.users.set(u.id, u);
  const session = await oktaSignIn(t, okta, corp.slug, u.id);
  return { ...u, session };
}

describe(`Okta Universal Logout on ${ENGINE}`, () => {
  it('GET settings/sso shows the endpoint to enter in Okta and the defaults', async () => {
    const res = await t.request('GET', `/api/user/organizations/${corp.orgId}/settings/sso`, { as: owner });
    expect(res.body.data.universalLogoutUri).toBe(UL_URL);
    expect(res.body.data.universalLogout).toEqual({ enabled: true, issuer: null, subject: null });
  });

  it('email format: ends the sessions from the organization and their refresh tokens; a session from elsewhere stays', async () => {
    const { user: alice, password: elsewhere, sso: first } = await linkedAccount(t, okta, corp, '00ualice', 'alice@alice-home.test');
    const second = await oktaSignIn(t, okta, corp.slug, '00ualice');
    const refreshToken = await refreshTokenOf(t, second);

    const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL), byEmail(alice.email));
    expect(res.status, res.text).toBe(204);
    expect(res.text).toBe('');
    expect(await isAlive(t, first)).toBe(false);
    expect(await isAlive(t, second)).toBe(false);
    const spent = await refresh(t, refreshToken);
    expect(spent.status).toBe(400);
    expect(spent.body.code).toBe('INVALID_TOKEN');
    // The password session did not come from Corp, and Corp no longer holds alice-home.test.
    expect(await isAlive(t, elsewhere)).toBe(true);

    const events = await t.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'sso.universal_logout').where('target_id', '=', alice.id).execute();
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]!.metadata!)).toMatchObject({ format: 'email', scope: 'organization', sessionsEnded: 2 });
    const reasons = await t.deps.db.selectFrom('audit_events').select('metadata').where('action', '=', 'session.revoked').where('target_id', '=', await sessionIdOf(second)).execute();
    expect(reasons.map((r) => JSON.parse(r.metadata!).reason)).toEqual(['universal_logout']);
  });

  it('iss_sub format (the Okta user id at the connection\'s issuer) ends the user\'s sessions from the organization', async () => {
    const { password: elsewhere, sso } = await linkedAccount(t, okta, corp, '00ubob', 'bob@bob-home.test');
    const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL), { sub_id: { format: 'iss_sub', iss: okta.customIssuer, sub: '00ubob' } });
    expect(res.status, res.text).toBe(204);
    expect(await isAlive(t, sso)).toBe(false);
    expect(await isAlive(t, elsewhere)).toBe(true);
  });

  it("propagates to the apps the session signed into: a back-channel logout delivery is queued with the reason", async () => {
    const admin = await t.signUp('root@platform-admin.test');
    await makeSuperadmin(t, admin);
    const app = await registerClient(t, admin, { name: 'App', redirectUris: ['https://app.example/cb'], backchannelLogoutUri: 'https://app.example/bcl' });
    const u = await corpUser();
    const sessionId = await sessionIdOf(u.session);
    // What the OpenID Provider records when the session signs into the app.
    await recordSessionClient(t.deps.db, sessionId, app.clientId, t.clock.now().toISOString());
    expect((await universalLogout(t, await okta.universalLogoutToken(UL_URL), byEmail(u.email))).status).toBe(204);
    const rows = await outboxRowsOfSession(t.deps.db, sessionId);
    expect(rows.map((r) => ({ client: r.client_id, reason: r.reason }))).toEqual([{ client: app.clientId, reason: 'universal_logout' }]);
  });

  it('the older {"subject": …} body works too', async () => {
    const u = await corpUser();
    const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL), { subject: { format: 'email', email: u.email.toUpperCase() } });
    expect(res.status, res.text).toBe(204);
    expect(await isAlive(t, u.session)).toBe(false);
  });

  it('with the user\'s email domain verified by the organization, every session of the user ends', async () => {
    const { user: carol, password: elsewhere, sso } = await linkedAccount(t, okta, corp, '00ucarol', 'carol@corp-verified.test', { keepDomain: true });
    const refreshToken = await refreshTokenOf(t, elsewhere);
    const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL), byEmail(carol.email));
    expect(res.status, res.text).toBe(204);
    expect(await isAlive(t, sso)).toBe(false);
    expect(await isAlive(t, elsewhere)).toBe(false);
    expect((await refresh(t, refreshToken)).body.code).toBe('INVALID_TOKEN');
  });

  it('answers 204 again when the user has no live session left (idempotent for Okta)', async () => {
    const u = await corpUser();
    expect((await universalLogout(t, await okta.universalLogoutToken(UL_URL), byEmail(u.email))).status).toBe(204);
    expect((await universalLogout(t, await okta.universalLogoutToken(UL_URL), byEmail(u.email))).status).toBe(204);
  });

  describe('body', () => {
    it('an unsupported subject format (opaque, phone_number) is 400 UNSUPPORTED_SUBJECT_FORMAT', async () => {
      const u = await corpUser();
      for (const sub_id of [{ format: 'opaque', id: '00u123' }, { format: 'phone_number', phone_number: '+12065550100' }]) {
        const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL), { sub_id });
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ code: 'UNSUPPORTED_SUBJECT_FORMAT', details: { reason: 'format_unsupported', supported: ['email', 'iss_sub'] } });
      }
      expect(await isAlive(t, u.session)).toBe(true);
    });

    it('no subject, both members, a subject without its fields or not JSON is 400 VALIDATION_FAILED', async () => {
      for (const body of [{}, { sub_id: { format: 'email', email: 'a@b.test' }, subject: { format: 'email', email: 'a@b.test' } }, { sub_id: { format: 'email' } }, { sub_id: { format: 'iss_sub', iss: okta.customIssuer } }, { sub_id: 'x' }, [1]]) {
        const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL), body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED', details: { reason: 'body_invalid' } });
      }
      const raw = await t.request('POST', '/api/auth/sso/universal-logout', { bearer: await okta.universalLogoutToken(UL_URL), rawBody: '{not json', headers: { 'content-type': 'application/json' }, origin: null });
      expect(raw.status).toBe(400);
    });

    it('an unknown user is 404', async () => {
      const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL), byEmail('nobody@home.test'));
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ code: 'NOT_FOUND', details: { reason: 'user_unknown' } });
      const bySub = await universalLogout(t, await okta.universalLogoutToken(UL_URL), { sub_id: { format: 'iss_sub', iss: okta.customIssuer, sub: '00unknown' } });
      expect(bySub.status).toBe(404);
    });

    it('a user with an account but no tie to the organization is 404 too, and keeps every session (no enumeration, no reach)', async () => {
      const stranger = await t.signUp(`stranger${n}@home.test`);
      const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL), byEmail(stranger.email));
      expect(res.status).toBe(404);
      expect(await isAlive(t, stranger)).toBe(true);
    });

    it('an iss_sub of an IdP that is not the connection\'s is 422 LOGOUT_NOT_POSSIBLE and ends nothing', async () => {
      const u = await corpUser();
      const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL), { sub_id: { format: 'iss_sub', iss: 'https://other-idp.example', sub: u.id } });
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({ code: 'LOGOUT_NOT_POSSIBLE', details: { reason: 'issuer_foreign' } });
      expect(await isAlive(t, u.session)).toBe(true);
    });
  });

  it('is rate-limited per IP', async () => {
    const limited = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' }, rateLimits: { 'universal-logout:ip': { points: 2, duration: 60 } } });
    try {
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push((await universalLogout(limited, null, byEmail('x@y.test'), { ip: '203.0.113.5' })).status);
      expect(codes).toEqual([401, 401, 429]);
      expect((await universalLogout(limited, null, byEmail('x@y.test'), { ip: '203.0.113.6' })).status).toBe(401);
    } finally {
      await limited.destroy();
    }
  });
});

/** A session's id, found by its token's hash (the API no longer shows an ended session). */
async function sessionIdOf(s: { cookie: string }): Promise<string> {
  const row = await t.deps.db.selectFrom('sessions').select('id').where('token_hash', '=', sha256(s.cookie)).executeTakeFirst();
  return row?.id ?? '';
}
