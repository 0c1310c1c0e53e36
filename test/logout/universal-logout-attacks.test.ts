import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestGatehouse, ENGINE, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { newSigningKey, startMockOkta, type MockOkta, type SigningKey } from '../helpers/okta.js';
import { byEmail, isAlive, linkedAccount, oktaOrg, oktaSignIn, UL_URL, universalLogout, verifyDomain } from '../helpers/universal-logout.js';

/**
 * Universal Logout refusals, each named after the attack it stops. Every test names a live victim
 * in the body and asserts the victim's session is still alive afterwards, so a check that let the
 * request through would fail the test — not only the status code.
 */
let t: TestGatehouse;
let okta: MockOkta;
let evilOkta: MockOkta;
let owner: TestUser;
let corp: { orgId: string; slug: string };
let attackerKey: SigningKey;
let victim: { email: string; session: { cookie: string } };

beforeAll(async () => {
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  okta = await startMockOkta({ now: () => t.clock.now() });
  evilOkta = await startMockOkta({ now: () => t.clock.now() });
  owner = await t.signUp('owner@corp-admin.test');
  corp = await oktaOrg(t, owner, okta, 'corp');
  attackerKey = await newSigningKey();
  okta.users.set('00uvictim', { id: '00uvictim', email: 'victim@victim-home.test' });
  victim = { email: 'victim@victim-home.test', session: await oktaSignIn(t, okta, corp.slug, '00uvictim') };
});
afterAll(async () => {
  await t.destroy();
  await okta.close();
  await evilOkta.close();
});

const now = () => Math.floor(t.clock.now().getTime() / 1000);

/** Send the token naming the victim; expect 401 invalid_token with `reason`, and the victim still signed in. */
async function refused(token: string | null, reason: string, opts: { authorization?: string } = {}) {
  const res = await universalLogout(t, token, byEmail(victim.email), opts);
  expect(res.status, res.text).toBe(401);
  expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
  expect(res.body).toMatchObject({ code: 'UNAUTHENTICATED', details: { reason } });
  expect(await isAlive(t, victim.session)).toBe(true);
}

describe(`Universal Logout attacks on ${ENGINE}`, () => {
  it('control: the genuine token of Corp\'s Okta is accepted (for another user), so every refusal below is the check\'s doing', async () => {
    okta.users.set('00ucontrol', { id: '00ucontrol', email: 'control@control-home.test' });
    const s = await oktaSignIn(t, okta, corp.slug, '00ucontrol');
    expect((await universalLogout(t, await okta.universalLogoutToken(UL_URL), byEmail('control@control-home.test'))).status).toBe(204);
    expect(await isAlive(t, s)).toBe(false);
  });

  it('refuses a request without a token, with an empty or a non-Bearer Authorization', async () => {
    await refused(null, 'token_missing');
    await refused(null, 'token_missing', { authorization: 'Bearer ' });
    await refused(null, 'token_missing', { authorization: `Basic ${Buffer.from(`${okta.clientId}:${okta.clientSecret}`).toString('base64')}` });
  });

  it('refuses a token for another audience: a prefix, a suffix, another path, the base URL, a list without it', async () => {
    for (const aud of [`${UL_URL}x`, `${UL_URL}/`, UL_URL.slice(0, -1), 'http://localhost:3000/api/auth/sso/universal', 'http://localhost:3000', 'http://localhost:3000/api/auth/sso/backchannel-logout', `https://evil.test${new URL(UL_URL).pathname}`, ['https://app.test'], []]) {
      await refused(await okta.universalLogoutToken(UL_URL, { claims: { aud } }), 'audience_mismatch');
    }
    await refused(await okta.universalLogoutToken(UL_URL, { claims: { aud: undefined } }), 'audience_mismatch');
  });

  it('refuses a token of another issuer (an issuer no connection expects)', async () => {
    await refused(await okta.universalLogoutToken(UL_URL, { claims: { iss: `${okta.orgUrl}/oauth2/other` } }), 'no_connection');
    await refused(await okta.universalLogoutToken(UL_URL, { claims: { iss: 'https://evil.okta.com' } }), 'no_connection');
  });

  it('refuses a token with the custom authorization server as iss but signed by the org key (that issuer publishes other keys)', async () => {
    await refused(await okta.universalLogoutToken(UL_URL, { claims: { iss: okta.customIssuer } }), 'unknown_kid');
  });

  it('refuses a token with a wrong typ (JWT, an ID token, a logout token, none)', async () => {
    for (const typ of ['JWT', 'logout+jwt', 'at+jwt', 'global-token-revocation']) await refused(await okta.universalLogoutToken(UL_URL, { header: { typ } }), 'typ_invalid');
    await refused(await okta.universalLogoutToken(UL_URL, { header: { typ: undefined } }), 'typ_invalid');
  });

  it('accepts typ in any case and with the application/ prefix (media types are case-insensitive)', async () => {
    okta.users.set('00utyp', { id: '00utyp', email: 'typ@typ-home.test' });
    const s = await oktaSignIn(t, okta, corp.slug, '00utyp');
    const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL, { header: { typ: 'Application/Global-Token-Revocation+JWT' } }), byEmail('typ@typ-home.test'));
    expect(res.status, res.text).toBe(204);
    expect(await isAlive(t, s)).toBe(false);
  });

  it('refuses a token signed by a foreign key that claims the kid of the org key', async () => {
    await refused(await okta.universalLogoutToken(UL_URL, { key: { ...attackerKey, kid: okta.orgKey.kid } }), 'signature_invalid');
  });

  it('refuses a token signed by a foreign key under a kid the JWKS does not publish', async () => {
    await refused(await okta.universalLogoutToken(UL_URL, { key: attackerKey }), 'unknown_kid');
  });

  it('refuses a token signed by the custom authorization server\'s key (Okta\'s ID-token key, not its Universal Logout key)', async () => {
    await refused(await okta.universalLogoutToken(UL_URL, { key: okta.customKey }), 'unknown_kid');
  });

  it('refuses an expired token', async () => {
    await refused(await okta.universalLogoutToken(UL_URL, { now: now() - 400 }), 'expired');
  });

  it('refuses a token that is not valid yet (nbf, iat in the future)', async () => {
    await refused(await okta.universalLogoutToken(UL_URL, { claims: { nbf: now() + 120 } }), 'not_yet_valid');
    await refused(await okta.universalLogoutToken(UL_URL, { now: now() + 120 }), 'iat_invalid');
  });

  it('refuses a token with too long a life (over 10 minutes) or without exp or iat', async () => {
    await refused(await okta.universalLogoutToken(UL_URL, { claims: { exp: now() + 601 } }), 'lifetime_too_long');
    await refused(await okta.universalLogoutToken(UL_URL, { claims: { exp: now() + 86_400 * 365 } }), 'lifetime_too_long');
    await refused(await okta.universalLogoutToken(UL_URL, { claims: { exp: undefined } }), 'times_missing');
    await refused(await okta.universalLogoutToken(UL_URL, { claims: { iat: undefined } }), 'times_missing');
  });

  it('refuses a token without jti', async () => {
    await refused(await okta.universalLogoutToken(UL_URL, { claims: { jti: undefined } }), 'jti_missing');
  });

  it('refuses an unsigned token (alg none)', async () => {
    await refused(await okta.universalLogoutToken(UL_URL, { unsigned: true }), 'alg_not_allowed');
  });

  it('refuses an HMAC (HS256) token keyed with a guessable secret: the client secret, the org public key, the client id', async () => {
    const pub = okta.orgKey.publicJwk;
    for (const secret of [okta.clientSecret, JSON.stringify(pub), Buffer.from(pub.n!, 'base64url').toString('latin1'), okta.clientId]) {
      await refused(await okta.universalLogoutToken(UL_URL, { hmacSecret: new TextEncoder().encode(secret) }), 'alg_not_allowed');
    }
  });

  it('refuses a token for another client (wrong sub)', async () => {
    await refused(await okta.universalLogoutToken(UL_URL, { claims: { sub: '0oaOtherApp' } }), 'no_connection');
    await refused(await okta.universalLogoutToken(UL_URL, { claims: { sub: undefined } }), 'token_malformed');
  });

  it('refuses a replayed jti, even naming another user', async () => {
    okta.users.set('00ufirst', { id: '00ufirst', email: 'first@first-home.test' });
    const first = await oktaSignIn(t, okta, corp.slug, '00ufirst');
    const token = await okta.universalLogoutToken(UL_URL);
    expect((await universalLogout(t, token, byEmail('first@first-home.test'))).status).toBe(204);
    expect(await isAlive(t, first)).toBe(false);
    await refused(token, 'replayed');
  });

  it("fails closed when the issuer's keys cannot be fetched (discovery unreachable)", async () => {
    const own = await t.signUp('owner@unreachable.test');
    const deadOkta = await startMockOkta({ now: () => t.clock.now() });
    try {
      // The Universal Logout issuer points at a closed loopback port: no discovery, no keys.
      await oktaOrg(t, own, deadOkta, 'unreachable', { universalLogout: { issuer: 'http://127.0.0.1:9', subject: null } });
      const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL, { claims: { iss: 'http://127.0.0.1:9', sub: deadOkta.clientId } }), byEmail(victim.email));
      expect(res.status).toBe(401);
      expect(res.body.details.reason).toBe('keys_unavailable');
      expect(await isAlive(t, victim.session)).toBe(true);
    } finally {
      await deadOkta.close();
    }
  });

  it('refuses garbage where a JWT should be', async () => {
    await refused('not-a-jwt', 'token_malformed');
    await refused('a.b.c', 'token_malformed');
  });

  it('refuses every token once the connection turns Universal Logout off (enabled: false)', async () => {
    const own = await t.signUp('owner@off.test');
    const offOkta = await startMockOkta({ now: () => t.clock.now() });
    try {
      const off = await oktaOrg(t, own, offOkta, 'off', { universalLogout: { enabled: false } });
      offOkta.users.set('00uoff', { id: '00uoff', email: 'off@off-home.test' });
      const s = await oktaSignIn(t, offOkta, off.slug, '00uoff');
      const res = await universalLogout(t, await offOkta.universalLogoutToken(UL_URL), byEmail('off@off-home.test'));
      expect(res.status).toBe(401);
      expect(res.body.details.reason).toBe('no_connection');
      expect(await isAlive(t, s)).toBe(true);
      // No candidate, no outbound request: the issuer's keys were never fetched.
      expect(offOkta.hits.get('/oauth2/v1/keys') ?? 0).toBe(0);
    } finally {
      await offOkta.close();
    }
  });

  describe('cross-tenant: the owner of organization Evil', () => {
    let evil: { orgId: string; slug: string };
    let mallory: TestUser;
    beforeAll(async () => {
      mallory = await t.signUp('mallory@evil-admin.test');
      // Evil's connection is his own Okta app, but claims Corp's Universal Logout issuer and subject.
      evil = await oktaOrg(t, mallory, evilOkta, 'evil', { universalLogout: { issuer: okta.orgUrl, subject: okta.clientId } });
    });

    it("cannot end a Corp user's sessions with his own key, by copying Corp's issuer and subject into his connection", async () => {
      await refused(await okta.universalLogoutToken(UL_URL, { key: evilOkta.orgKey }), 'unknown_kid');
      await refused(await okta.universalLogoutToken(UL_URL, { key: { ...evilOkta.orgKey, kid: okta.orgKey.kid } }), 'signature_invalid');
      // Nor with a token of his own Okta org (its issuer, his key) for Corp's client id.
      await refused(await evilOkta.universalLogoutToken(UL_URL, { claims: { sub: okta.clientId } }), 'no_connection');
    });

    it("cannot block Corp's own Universal Logout by copying it, and Corp's genuine token reaches nobody of Evil", async () => {
      okta.users.set('00udave', { id: '00udave', email: 'dave@dave-home.test' });
      const dave = await oktaSignIn(t, okta, corp.slug, '00udave');
      const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL), byEmail('dave@dave-home.test'));
      expect(res.status, res.text).toBe(204);
      expect(await isAlive(t, dave)).toBe(false);
      const evilEvents = await t.deps.db.selectFrom('audit_events').select('id').where('action', '=', 'sso.universal_logout').where('organization_id', '=', evil.orgId).execute();
      expect(evilEvents).toHaveLength(0);
    });

    it("can never end sessions of a user in Corp's verified domain with his own genuine Okta token", async () => {
      const linked = await linkedAccount(t, okta, corp, '00uerin', 'erin@corp-staff.test', { keepDomain: true });
      // Evil's Okta signs its own, genuine request for its own connection, naming Corp's user.
      const mine = await oktaOrg(t, mallory, evilOkta, 'evil-own');
      const cases: Array<[unknown, number]> = [
        [byEmail('erin@corp-staff.test'), 404],
        [{ sub_id: { format: 'iss_sub', iss: okta.customIssuer, sub: '00uerin' } }, 422],
        [{ sub_id: { format: 'iss_sub', iss: evilOkta.customIssuer, sub: '00uerin' } }, 404],
      ];
      for (const [body, status] of cases) {
        const res = await universalLogout(t, await evilOkta.universalLogoutToken(UL_URL), body);
        expect(res.status, res.text).toBe(status);
      }
      expect(await isAlive(t, linked.sso)).toBe(true);
      expect(await isAlive(t, linked.password)).toBe(true);
      expect(mine.orgId).toBeTruthy();
    });

    it("reaches only Evil's own sessions of a user who also signs in through Evil, never Corp's or the user's others", async () => {
      // Frank's own password account; Evil's Okta and Corp's Okta each linked it while holding
      // frank-home.test (one organization at a time, as the database allows), and neither holds it now.
      const guests = await oktaOrg(t, mallory, evilOkta, 'evil-guests');
      const frank = await linkedAccount(t, evilOkta, guests, '00ufrank', 'frank@frank-home.test');
      await verifyDomain(t, corp.orgId, 'frank-home.test');
      okta.users.set('00ufrank-corp', { id: '00ufrank-corp', email: 'frank@frank-home.test' });
      const corpSession = await oktaSignIn(t, okta, corp.slug, '00ufrank-corp');
      await t.deps.db.deleteFrom('domains').where('domain', '=', 'frank-home.test').execute();

      const res = await universalLogout(t, await evilOkta.universalLogoutToken(UL_URL), byEmail('frank@frank-home.test'));
      expect(res.status, res.text).toBe(204);
      expect(await isAlive(t, frank.sso)).toBe(false);
      expect(await isAlive(t, corpSession)).toBe(true);
      expect(await isAlive(t, frank.password)).toBe(true);
    });
  });
});
