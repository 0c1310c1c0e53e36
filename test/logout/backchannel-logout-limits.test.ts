import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logoutUrls } from '../../src/logout/urls.js';
import { BASE_URL, createOrg, createTestGatehouse, type TestGatehouse } from '../helpers/app.js';
import { isSignedIn, logoutClaims, postLogoutToken, signLogoutToken, ssoSession } from '../helpers/logout-token.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { configureOidc } from '../helpers/sso.js';
import { BACKCHANNEL_LOGOUT_PATH } from '../../src/logout/urls.js';

/** The back-channel logout endpoint's rate limit and its exemption from the browser rules (CSRF, JSON-only). */
let t: TestGatehouse;
let idp: RealIdp;

beforeAll(async () => {
  idp = await startRealIdp({ redirectUris: [], users: [{ sub: 'alice-sub', email: 'alice@corp.test', email_verified: true }], backchannelLogoutUri: logoutUrls(BASE_URL).backchannelLogoutUri });
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' }, rateLimits: { 'backchannel-logout:ip': { points: 3, duration: 60 } } });
  const owner = await t.signUp('owner@corp.test');
  await configureOidc(t, owner, await createOrg(t, owner, 'Corp', 'corp-limits'), idp);
});
afterAll(async () => {
  await t?.destroy();
  await idp?.close();
});

describe('POST /api/auth/sso/backchannel-logout outside the browser rules', () => {
  it('is served cross-site (a foreign Origin, a browser cookie) like the other IdP posts: no CSRF refusal', async () => {
    const s = await ssoSession(t, idp, 'corp-limits', 'alice-sub');
    const res = await t.request('POST', BACKCHANNEL_LOGOUT_PATH, {
      rawBody: new URLSearchParams({ logout_token: await signLogoutToken(idp.signingKey, logoutClaims(idp, t.clock.now(), { sid: s.idpSessionId })) }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      origin: 'https://idp.elsewhere.example',
      as: { cookie: s.cookie },
      ip: '127.0.0.20',
    });
    expect(res.status).toBe(200);
    expect(await isSignedIn(t, s.cookie)).toBe(false);
  });

  it('counts every post per IP: past the limit 429, whatever the token', async () => {
    const ip = '127.0.0.21';
    for (let i = 0; i < 3; i++) expect((await postLogoutToken(t, 'not-a-token', { ip })).status).toBe(400);
    const limited = await postLogoutToken(t, await signLogoutToken(idp.signingKey, logoutClaims(idp, t.clock.now(), { sub: 'alice-sub' })), { ip });
    expect(limited.status).toBe(429);
    expect(limited.body.code).toBe('RATE_LIMITED');
    // Another address is not affected.
    expect((await postLogoutToken(t, await signLogoutToken(idp.signingKey, logoutClaims(idp, t.clock.now(), { sub: 'alice-sub' })), { ip: '127.0.0.22' })).status).toBe(200);
  });
});
