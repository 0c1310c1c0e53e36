import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdpLogoutHint } from '../../src/sessions/idp-session.js';
import { BACKCHANNEL_LOGOUT_PATH, logoutUrls } from '../../src/logout/urls.js';
import { BASE_URL, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { isSignedIn, ssoSession } from '../helpers/logout-token.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { configureOidc } from '../helpers/sso.js';

/**
 * The whole round with the real `oidc-provider` as the IdP, which sends its own back-channel
 * logout tokens (features.backchannelLogout) to Gatehouse listening on loopback, and serves
 * RP-initiated logout (its end_session_endpoint, confirmation form, post_logout_redirect_uri).
 */
let t: TestGatehouse;
let idp: RealIdp;
let owner: TestUser;
let server: ServerType;
const SIGNED_OUT = logoutUrls(BASE_URL).postLogoutRedirectUri;

beforeAll(async () => {
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  const port = await new Promise<number>((resolve) => {
    server = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => resolve(info.port));
  });
  idp = await startRealIdp({
    redirectUris: [],
    // One user per organization: an account signed in through one organization is not linked
    // automatically by another (SPEC §4.5).
    users: ['e2e', 'out', 'stay'].map((n) => ({ sub: `${n}-sub`, email: `${n}@corp.test`, email_verified: true })),
    postLogoutRedirectUris: [SIGNED_OUT],
  });
  // Registered as the admin does at the IdP: the back-channel logout URI (session required).
  // Here Gatehouse's real listener on loopback (the test Gatehouse's base URL is not served).
  await idp.setBackchannelLogoutUri(`http://127.0.0.1:${port}${BACKCHANNEL_LOGOUT_PATH}`);
  owner = await t.signUp('owner@corp.test');
});
afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await t?.destroy();
  await idp?.close();
});

async function org(slug: string, extra: Record<string, unknown> = {}) {
  const orgId = await createOrg(t, owner, slug, slug);
  const settings = await configureOidc(t, owner, orgId, idp, extra);
  return { orgId, settings };
}

async function idTokenOf(sessionId: string): Promise<string> {
  const row = await t.deps.db.selectFrom('sessions').selectAll().where('id', '=', sessionId).executeTakeFirstOrThrow();
  const hint = openIdpLogoutHint(t.deps.keyring, row);
  if (hint?.protocol !== 'oidc') throw new Error('no OIDC logout hint on the session');
  return hint.idToken;
}

describe('the IdP itself sends the back-channel logout token', () => {
  it('ending the IdP session at its end_session_endpoint ends the Gatehouse session (oidc-provider posts the logout token)', async () => {
    await org('e2e-bcl');
    const browser = idp.browser();
    const s = await ssoSession(t, idp, 'e2e-bcl', 'e2e-sub', browser);
    expect(s.idpSessionId).toEqual(expect.any(String));
    // The user signs out at the IdP (another app, or the IdP's own portal).
    const endSession = new URL(`${idp.issuer}/session/end`);
    endSession.searchParams.set('id_token_hint', await idTokenOf(s.sessionId));
    endSession.searchParams.set('post_logout_redirect_uri', SIGNED_OUT);
    const back = await idp.followLogout(endSession.href, browser);
    expect(`${back.origin}${back.pathname}`).toBe(SIGNED_OUT);
    expect(await isSignedIn(t, s.cookie)).toBe(false);
    const revoked = await t.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'session.revoked').where('target_id', '=', s.sessionId).executeTakeFirstOrThrow();
    expect(JSON.parse(revoked.metadata ?? '{}')).toMatchObject({ reason: 'idp_backchannel_logout' });
  });
});

describe('signing out of the IdP (signOutOfIdp)', () => {
  it('signOutOfIdp round-trips in PUT/GET settings/sso (default false), with the URLs to register at the IdP', async () => {
    const { orgId, settings } = await org('settings-bcl');
    expect(settings).toMatchObject({ signOutOfIdp: false, postLogoutRedirectUri: SIGNED_OUT, backchannelLogoutUri: `${BASE_URL}${BACKCHANNEL_LOGOUT_PATH}` });
    await configureOidc(t, owner, orgId, idp, { signOutOfIdp: true });
    const got = await t.request('GET', `/api/user/organizations/${orgId}/settings/sso`, { as: owner });
    expect(got.body.data.signOutOfIdp).toBe(true);
    await configureOidc(t, owner, orgId, idp);
    expect((await t.request('GET', `/api/user/organizations/${orgId}/settings/sso`, { as: owner })).body.data.signOutOfIdp).toBe(false);
  });

  it("sign-out answers the IdP's end_session URL; following it ends the IdP session and comes back to /signed-out", async () => {
    await org('idp-out', { signOutOfIdp: true });
    const browser = idp.browser();
    const first = await ssoSession(t, idp, 'idp-out', 'out-sub', browser);
    // A second Gatehouse session from the same IdP session (same browser at the IdP, same sid).
    const second = await ssoSession(t, idp, 'idp-out', 'out-sub', browser);
    expect(second.idpSessionId).toBe(first.idpSessionId);
    const idToken = await idTokenOf(first.sessionId);

    const out = await t.request('POST', '/api/auth/sign-out', { as: { cookie: first.cookie } });
    expect(out.status).toBe(200);
    const url = new URL(out.body.data.idpLogoutUrl);
    expect(`${url.origin}${url.pathname}`).toBe(`${idp.issuer}/session/end`); // the discovery end_session_endpoint
    expect(url.searchParams.get('id_token_hint')).toBe(idToken);
    expect(url.searchParams.get('post_logout_redirect_uri')).toBe(SIGNED_OUT);
    expect(url.searchParams.get('client_id')).toBe(idp.clientId);
    const state = url.searchParams.get('state');
    expect(state).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(await isSignedIn(t, first.cookie)).toBe(false); // the Gatehouse session ended at once

    const back = await idp.followLogout(url.href, browser);
    expect(`${back.origin}${back.pathname}`).toBe(SIGNED_OUT);
    expect(back.searchParams.get('state')).toBe(state);
    // The IdP session ended: the IdP told Gatehouse (back-channel), which ended the other session of it.
    expect(await isSignedIn(t, second.cookie)).toBe(false);
    const page = await t.request('GET', back.pathname + back.search);
    expect(page.status).toBe(200);
    expect(page.text).toContain('You are signed out');
  });

  it('with signOutOfIdp false (the default) sign-out gives no idpLogoutUrl and ends the session', async () => {
    await org('stay-idp');
    const s = await ssoSession(t, idp, 'stay-idp', 'stay-sub');
    const out = await t.request('POST', '/api/auth/sign-out', { as: { cookie: s.cookie } });
    expect(out.status).toBe(200);
    expect(out.body.data).toBeNull();
    expect(await isSignedIn(t, s.cookie)).toBe(false);
  });

  it('an IdP without an end_session_endpoint gives no idpLogoutUrl; the session ends all the same', async () => {
    const quiet = await startRealIdp({ redirectUris: [], users: [{ sub: 'alice-sub', email: 'alice@quiet.test', email_verified: true }], rpInitiatedLogout: false });
    try {
      const orgId = await createOrg(t, owner, 'quiet-idp', 'quiet-idp');
      await configureOidc(t, owner, orgId, quiet, { signOutOfIdp: true });
      const s = await ssoSession(t, quiet, 'quiet-idp', 'alice-sub');
      const out = await t.request('POST', '/api/auth/sign-out', { as: { cookie: s.cookie } });
      expect(out.status).toBe(200);
      expect(out.body.data).toBeNull();
      expect(await isSignedIn(t, s.cookie)).toBe(false);
    } finally {
      await quiet.close();
    }
  });
});

describe('the signed-out page', () => {
  it('reflects no parameter (state or anything else) and is served with the page CSP', async () => {
    const payload = '"><script>alert(1)</script>';
    const page = await t.request('GET', `/signed-out?state=${encodeURIComponent(payload)}&error=${encodeURIComponent(payload)}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.text).toContain('You are signed out');
    expect(page.text).not.toContain('alert(1)');
    expect(page.text).not.toContain('<script>');
  });
});
