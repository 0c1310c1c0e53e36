import { request as httpRequest } from 'node:http';
import { generateKeyPair, SignJWT, decodeProtectedHeader, decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INTERACTION_PREFIX, OP_ROUTES } from '../../src/oidc-provider/urls.js';
import { addMember, createOrg, type TestUser } from '../helpers/app.js';
import {
  authorizationRequest, authorize, Browser, browserOf, makeSuperadmin, oauthError, registerClient, rpConfig, startOpServer,
  tokenRequest, userinfoStatus, type OpServer,
} from '../helpers/op.js';

/**
 * Attacks on the OpenID Provider (SPEC §8), each test named after the one it stops. The provider
 * runs over real HTTP on loopback; the app is openid-client, and raw fetch where openid-client
 * would refuse to send the bad request.
 */

const REDIRECT = 'http://127.0.0.1:9/cb';
const REDIRECT_B = 'http://127.0.0.1:9/other-app/cb';
const LOGGED_OUT = 'http://127.0.0.1:9/bye';
const OFFLINE = { scope: 'openid email profile offline_access', prompt: 'consent' };

interface Client {
  clientId: string;
  clientSecret: string | null;
}

describe('OpenID Provider attacks', () => {
  let op: OpServer;
  let admin: TestUser;
  let app: Client; // first-party confidential client
  let other: Client; // a second first-party app, same redirect URI
  let thirdParty: Client; // asks for consent
  let appConfig: oidc.Configuration;
  let n = 0;
  /** A fresh user with a fresh Gatehouse session (tests that end sessions need their own). */
  const newUser = (name = 'user') => op.gh.signUp(`${name}${++n}@example.com`, undefined, name);

  /** Sign in through `config` as the browser's user; exchange the code. */
  async function signIn(browser: Browser, config: oidc.Configuration, params: Record<string, string> = OFFLINE, redirect = REDIRECT) {
    const flow = await authorize(browser, config, params, redirect);
    const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce, idTokenExpected: true });
    return { ...flow, tokens };
  }

  /** Follow an authorization request up to the interaction page it stops at (consent for third-party apps). */
  async function untilPage(browser: Browser, config: oidc.Configuration, params: Record<string, string> = {}) {
    const request = await authorizationRequest(config, params, REDIRECT);
    const { url, res } = await browser.follow(request.url, REDIRECT);
    return { ...request, pageUrl: url, status: res.status, html: await res.text() };
  }

  beforeAll(async () => {
    op = await startOpServer();
    admin = await op.gh.signUp('root@gatehouse.test');
    await makeSuperadmin(op.gh, admin);
    app = await registerClient(op.gh, admin, { name: 'Web app', redirectUris: [REDIRECT], postLogoutRedirectUris: [LOGGED_OUT], firstParty: true });
    other = await registerClient(op.gh, admin, { name: 'Other app', redirectUris: [REDIRECT, REDIRECT_B], firstParty: true });
    thirdParty = await registerClient(op.gh, admin, { name: 'Partner app', redirectUris: [REDIRECT] });
    appConfig = await rpConfig(op, app.clientId, app.clientSecret);
  });
  afterAll(async () => op?.close());

  describe('redirect URIs', () => {
    it('an unregistered redirect_uri gets an error page, never a redirect', async () => {
      const browser = browserOf(op, await newUser());
      const bad = ['https://evil.example/cb', `${REDIRECT}/`, `${REDIRECT}?next=x`, 'http://127.0.0.1:9/CB', 'http://localhost:9/cb'];
      for (const redirectUri of bad) {
        const { url } = await authorizationRequest(appConfig, {}, redirectUri);
        const res = await browser.fetch(url);
        expect(res.status, redirectUri).toBe(400);
        expect(res.headers.get('location'), redirectUri).toBeNull();
        const html = await res.text();
        expect(html).toContain('redirect_uri');
        expect(html).not.toContain('evil.example');
      }
      // The registered one, exactly, goes through.
      const ok = await authorize(browser, appConfig, {}, REDIRECT);
      expect(ok.callback.searchParams.get('code')).toBeTruthy();
    });
  });

  describe('authorization codes and PKCE', () => {
    it('a replayed authorization code is refused and revokes what it issued', async () => {
      const browser = browserOf(op, await newUser());
      const { callback, verifier, state, nonce, tokens } = await signIn(browser, appConfig);
      expect(await userinfoStatus(op, tokens.access_token)).toBe(200);
      const replay = oidc.authorizationCodeGrant(appConfig, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
      expect(await oauthError(replay)).toBe('invalid_grant');
      expect(await userinfoStatus(op, tokens.access_token)).toBe(401);
      expect(await oauthError(oidc.refreshTokenGrant(appConfig, tokens.refresh_token!))).toBe('invalid_grant');
    });

    it('a PKCE verifier that does not match is refused', async () => {
      const browser = browserOf(op, await newUser());
      const { callback, state, nonce } = await authorize(browser, appConfig, {}, REDIRECT);
      const wrong = oidc.authorizationCodeGrant(appConfig, callback, { pkceCodeVerifier: oidc.randomPKCECodeVerifier(), expectedState: state, expectedNonce: nonce });
      expect(await oauthError(wrong)).toBe('invalid_grant');
      // Without any verifier (raw: openid-client always sends the one it is given).
      const code = callback.searchParams.get('code')!;
      const none = await tokenRequest(op, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, { id: app.clientId, secret: app.clientSecret! });
      expect(none.status).toBe(400);
      expect(none.body.error).toMatch(/invalid_grant|invalid_request/);
    });

    it('an authorization request without PKCE is refused', async () => {
      for (const client of [app, await registerClient(op.gh, admin, { name: 'SPA', redirectUris: [REDIRECT], tokenEndpointAuthMethod: 'none', firstParty: true })]) {
        const config = await rpConfig(op, client.clientId, client.clientSecret);
        const browser = browserOf(op, await newUser());
        const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', state: 's1', nonce: 'n1' });
        const { url: last } = await browser.follow(url, REDIRECT);
        expect(last.href.startsWith(REDIRECT)).toBe(true);
        expect(last.searchParams.get('code')).toBeNull();
        expect(last.searchParams.get('error')).toBe('invalid_request');
        expect(last.searchParams.get('error_description')).toMatch(/PKCE/i);
      }
    });

    it('plain PKCE method is refused', async () => {
      const browser = browserOf(op, await newUser());
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(appConfig, { redirect_uri: REDIRECT, scope: 'openid', state: 's1', nonce: 'n1', code_challenge: verifier, code_challenge_method: 'plain' });
      const { url: last } = await browser.follow(url, REDIRECT);
      expect(last.href.startsWith(REDIRECT)).toBe(true);
      expect(last.searchParams.get('code')).toBeNull();
      expect(last.searchParams.get('error')).toBe('invalid_request');
      expect(appConfig.serverMetadata().code_challenge_methods_supported).toEqual(['S256']);
    });

    it("another client's code cannot be redeemed", async () => {
      const browser = browserOf(op, await newUser());
      const { callback, verifier, state, nonce } = await authorize(browser, appConfig, {}, REDIRECT);
      const otherConfig = await rpConfig(op, other.clientId, other.clientSecret);
      const stolen = oidc.authorizationCodeGrant(otherConfig, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
      expect(await oauthError(stolen)).toBe('invalid_grant');
    });

    it('a code cannot be redeemed with another redirect_uri', async () => {
      const otherConfig = await rpConfig(op, other.clientId, other.clientSecret);
      const browser = browserOf(op, await newUser());
      const { callback, verifier } = await authorize(browser, otherConfig, {}, REDIRECT_B);
      const res = await tokenRequest(op, { grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier }, { id: other.clientId, secret: other.clientSecret! });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    });
  });

  describe('client authentication', () => {
    it('a wrong client secret is refused (invalid_client)', async () => {
      const browser = browserOf(op, await newUser());
      const { callback, verifier } = await authorize(browser, appConfig, {}, REDIRECT);
      const code = callback.searchParams.get('code')!;
      const form = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier };
      const wrong = await tokenRequest(op, form, { id: app.clientId, secret: `${app.clientSecret}x` });
      expect(wrong.status).toBe(401);
      expect(wrong.body.error).toBe('invalid_client');
      const otherSecret = await tokenRequest(op, form, { id: app.clientId, secret: other.clientSecret! });
      expect(otherSecret.body.error).toBe('invalid_client');
      const inBody = await tokenRequest(op, { ...form, client_id: app.clientId, client_secret: 'gcs_guess' });
      expect(inBody.body.error).toBe('invalid_client');
      // The code was not spent by the refused attempts: the real secret redeems it.
      const right = await tokenRequest(op, form, { id: app.clientId, secret: app.clientSecret! });
      expect(right.status).toBe(200);
      expect(right.body.id_token).toBeTruthy();
    });

    it('the stored hash presented as the secret is refused', async () => {
      const row = await op.gh.deps.db.selectFrom('oauth_clients').select('secret_hash').where('id', '=', app.clientId).executeTakeFirstOrThrow();
      expect(row.secret_hash).toBeTruthy();
      expect(row.secret_hash).not.toBe(app.clientSecret);
      const browser = browserOf(op, await newUser());
      const { callback, verifier } = await authorize(browser, appConfig, {}, REDIRECT);
      const form = { grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier };
      const basic = await tokenRequest(op, form, { id: app.clientId, secret: row.secret_hash! });
      expect(basic.status).toBe(401);
      expect(basic.body.error).toBe('invalid_client');
      const post = await tokenRequest(op, { ...form, client_id: app.clientId, client_secret: row.secret_hash! });
      expect(post.body.error).toBe('invalid_client');
    });

    it("a deleted client's tokens stop working", async () => {
      const doomed = await registerClient(op.gh, admin, { name: 'Doomed', redirectUris: [REDIRECT], firstParty: true });
      const config = await rpConfig(op, doomed.clientId, doomed.clientSecret);
      const { tokens } = await signIn(browserOf(op, await newUser()), config);
      expect(await userinfoStatus(op, tokens.access_token)).toBe(200);
      expect((await op.gh.request('DELETE', `/api/admin/clients/${doomed.clientId}`, { as: admin })).status).toBe(200);
      expect(await userinfoStatus(op, tokens.access_token)).toBe(401);
      const refresh = await tokenRequest(op, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, { id: doomed.clientId, secret: doomed.clientSecret! });
      expect(refresh.body.error).toBe('invalid_client');
    });
  });

  describe('refresh tokens and sessions', () => {
    it('reuse of a spent refresh token revokes the family and ends the Gatehouse session', async () => {
      const user = await newUser();
      const { tokens } = await signIn(browserOf(op, user), appConfig);
      const rotated = await oidc.refreshTokenGrant(appConfig, tokens.refresh_token!);
      expect(rotated.refresh_token).toBeTruthy();
      expect(rotated.refresh_token).not.toBe(tokens.refresh_token);
      expect(await userinfoStatus(op, rotated.access_token)).toBe(200);

      expect(await oauthError(oidc.refreshTokenGrant(appConfig, tokens.refresh_token!))).toBe('invalid_grant');
      expect(await oauthError(oidc.refreshTokenGrant(appConfig, rotated.refresh_token!))).toBe('invalid_grant');
      expect(await userinfoStatus(op, rotated.access_token)).toBe(401);
      expect((await op.gh.request('GET', '/api/auth/session', { as: user })).status).toBe(401);
    });

    it('a refresh token of a signed-out session is refused', async () => {
      const user = await newUser();
      const { tokens } = await signIn(browserOf(op, user), appConfig);
      expect(await userinfoStatus(op, tokens.access_token)).toBe(200);
      const out = await op.gh.request('POST', '/api/auth/sign-out', { as: user });
      expect(out.status).toBe(200);
      expect(await oauthError(oidc.refreshTokenGrant(appConfig, tokens.refresh_token!))).toBe('invalid_grant');
      expect(await userinfoStatus(op, tokens.access_token)).toBe(401);
      const introspected = await oidc.tokenIntrospection(appConfig, tokens.refresh_token!);
      expect(introspected.active).toBe(false);
    });

    it('a user removed from the organization loses org claims on refresh', async () => {
      const owner = await newUser('owner');
      const member = await newUser('member');
      const orgId = await createOrg(op.gh, owner, 'Acme', `acme-${n}`);
      await addMember(op.gh, owner, orgId, member, 'member');
      const params = { scope: 'openid email organization offline_access', prompt: 'consent', organization: `acme-${n}` };
      const { tokens } = await signIn(browserOf(op, member), appConfig, params);
      expect(tokens.claims()).toMatchObject({ sub: member.id, org_id: orgId, org_slug: `acme-${n}`, org_role: 'member' });
      const refreshed = await oidc.refreshTokenGrant(appConfig, tokens.refresh_token!);
      expect(refreshed.claims()).toMatchObject({ org_id: orgId, org_role: 'member' });
      expect(await oidc.fetchUserInfo(appConfig, refreshed.access_token, member.id)).toMatchObject({ org_id: orgId });

      const removed = await op.gh.request('DELETE', `/api/user/organizations/${orgId}/members/${member.id}`, { as: owner });
      expect(removed.status).toBe(200);
      // The token no longer names an account in that organization: no new tokens, no claims.
      expect(await oauthError(oidc.refreshTokenGrant(appConfig, refreshed.refresh_token!))).toBe('invalid_grant');
      expect(await userinfoStatus(op, refreshed.access_token)).toBe(401);
      // The Gatehouse session itself is untouched: only the organization's claims are gone.
      expect((await op.gh.request('GET', '/api/auth/session', { as: member })).status).toBe(200);
    });

    it('an organization choice tampered with or posted cross-site is refused', async () => {
      const owner = await newUser('owner');
      const member = await newUser('member');
      const mine = await createOrg(op.gh, owner, 'Mine', `mine-${n}`);
      await addMember(op.gh, owner, mine, member, 'member');
      const theirs = await createOrg(op.gh, owner, 'Theirs', `theirs-${n}`);
      const browser = browserOf(op, member);
      const picker = async () => {
        const request = await authorizationRequest(appConfig, { scope: 'openid organization' }, REDIRECT);
        const { url, res } = await browser.follow(request.url, REDIRECT);
        const html = await res.text();
        expect(res.status).toBe(200);
        expect(html).toContain(`value="${mine}"`);
        expect(html).not.toContain(theirs);
        return { action: new URL(`${url.pathname}/organization`, op.base), request };
      };
      const first = await picker();
      const crossSite = await browser.fetch(first.action, { form: { organization: mine }, origin: 'https://evil.example' });
      expect(crossSite.status).toBe(403);
      expect(crossSite.headers.get('location')).toBeNull();
      // An organization the user is not a member of, put in the form by hand.
      const { url: denied } = await browser.follow(first.action, REDIRECT, { form: { organization: theirs } });
      expect(denied.searchParams.get('error')).toBe('access_denied');
      expect(denied.searchParams.get('code')).toBeNull();
      // The honest choice goes through and names that organization.
      const second = await picker();
      const { url: callback } = await browser.follow(second.action, REDIRECT, { form: { organization: mine } });
      const tokens = await oidc.authorizationCodeGrant(appConfig, callback, { pkceCodeVerifier: second.request.verifier, expectedState: second.request.state, expectedNonce: second.request.nonce, idTokenExpected: true });
      expect(tokens.claims()).toMatchObject({ org_id: mine, org_role: 'member' });
    });

    it('a non-member asking for an organization gets access_denied', async () => {
      const owner = await newUser('owner');
      const outsider = await newUser('outsider');
      await createOrg(op.gh, owner, 'Private', `private-${n}`);
      const { url } = await authorizationRequest(appConfig, { scope: 'openid organization', organization: `private-${n}` }, REDIRECT);
      const { url: last } = await browserOf(op, outsider).follow(url, REDIRECT);
      expect(last.href.startsWith(REDIRECT)).toBe(true);
      expect(last.searchParams.get('error')).toBe('access_denied');
      expect(last.searchParams.get('code')).toBeNull();
    });
  });

  describe('end-session endpoint', () => {
    const endSession = (hint: string) => {
      const url = new URL(OP_ROUTES.end_session, op.base);
      url.search = new URLSearchParams({ id_token_hint: hint, post_logout_redirect_uri: LOGGED_OUT, state: 'st' }).toString();
      return url;
    };

    it('an ID token hint signed with alg none is not accepted at the end-session endpoint', async () => {
      const user = await newUser();
      const browser = browserOf(op, user);
      const { tokens } = await signIn(browser, appConfig, { scope: 'openid' });
      // Control: the genuine hint is accepted (the confirmation page).
      const genuine = await browser.fetch(endSession(tokens.id_token!));
      expect(genuine.status).toBe(200);
      expect(await genuine.text()).toContain('op.logoutForm');

      const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(decodeJwt(tokens.id_token!))}.`;
      const res = await browser.fetch(endSession(unsigned));
      expect(res.status).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      expect(await res.text()).toContain('id_token_hint');
      expect((await op.gh.request('GET', '/api/auth/session', { as: user })).status).toBe(200);
    });

    it('an id_token_hint forged with another key is refused', async () => {
      const user = await newUser();
      const browser = browserOf(op, user);
      const { tokens } = await signIn(browser, appConfig, { scope: 'openid' });
      const { kid } = decodeProtectedHeader(tokens.id_token!);
      const { privateKey } = await generateKeyPair('ES256');
      const forged = await new SignJWT(decodeJwt(tokens.id_token!)).setProtectedHeader({ alg: 'ES256', kid: kid! }).sign(privateKey);
      const res = await browser.fetch(endSession(forged));
      expect(res.status).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      expect((await op.gh.request('GET', '/api/auth/session', { as: user })).status).toBe(200);
    });
  });

  describe('RP-initiated logout', () => {
    const logoutForm = (html: string) => {
      const action = /<form id="op\.logoutForm" method="post" action="([^"]+)"/.exec(html)?.[1];
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
      return { action: action!, xsrf: xsrf! };
    };

    it('RP-initiated logout ends the Gatehouse session, so no token of it survives', async () => {
      const user = await newUser();
      const browser = browserOf(op, user);
      const { tokens } = await signIn(browser, appConfig);
      const page = await browser.fetch(oidc.buildEndSessionUrl(appConfig, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: LOGGED_OUT, state: 'st' }));
      expect(page.status).toBe(200);
      const { action, xsrf } = logoutForm(await page.text());
      const done = await browser.fetch(action, { form: { xsrf, logout: 'yes' } });
      expect(done.status).toBe(303);
      const back = new URL(done.headers.get('location')!);
      expect(`${back.origin}${back.pathname}`).toBe(LOGGED_OUT);
      expect(back.searchParams.get('state')).toBe('st');
      expect((await op.gh.request('GET', '/api/auth/session', { as: user })).status).toBe(401);
      expect(browser.jar.get(op.base)?.has('gatehouse_session')).toBe(false);
      expect(await oauthError(oidc.refreshTokenGrant(appConfig, tokens.refresh_token!))).toBe('invalid_grant');
      expect(await userinfoStatus(op, tokens.access_token)).toBe(401);
    });

    it('an unregistered post_logout_redirect_uri gets an error page, never a redirect', async () => {
      const user = await newUser();
      const browser = browserOf(op, user);
      const { tokens } = await signIn(browser, appConfig, { scope: 'openid' });
      const otherConfig = await rpConfig(op, other.clientId, other.clientSecret);
      const { tokens: otherTokens } = await signIn(browser, otherConfig, { scope: 'openid' });
      const attempts = [
        { hint: tokens.id_token!, to: 'https://evil.example/bye' },
        { hint: tokens.id_token!, to: `${LOGGED_OUT}/` },
        { hint: tokens.id_token!, to: `${LOGGED_OUT}?x=1` },
        // Registered by the app, but the hint names another client that did not register it.
        { hint: otherTokens.id_token!, to: LOGGED_OUT },
      ];
      for (const { hint, to } of attempts) {
        const url = new URL(OP_ROUTES.end_session, op.base);
        url.search = new URLSearchParams({ id_token_hint: hint, post_logout_redirect_uri: to, state: 'st' }).toString();
        const res = await browser.fetch(url);
        expect(res.status, to).toBe(400);
        expect(res.headers.get('location'), to).toBeNull();
        expect(await res.text()).toContain('post_logout_redirect_uri');
      }
      expect((await op.gh.request('GET', '/api/auth/session', { as: user })).status).toBe(200);
    });

    it('a sign-out confirmation posted without its xsrf token does not end the session', async () => {
      const user = await newUser();
      const browser = browserOf(op, user);
      const { tokens } = await signIn(browser, appConfig, { scope: 'openid' });
      const page = await browser.fetch(oidc.buildEndSessionUrl(appConfig, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: LOGGED_OUT, state: 'st' }));
      const { action } = logoutForm(await page.text());
      for (const form of [{ logout: 'yes' }, { logout: 'yes', xsrf: 'forged' }] as Array<Record<string, string>>) {
        const res = await browser.fetch(action, { form, origin: 'https://evil.example' });
        expect(res.status).toBe(400);
        expect(res.headers.get('location')).toBeNull();
      }
      expect((await op.gh.request('GET', '/api/auth/session', { as: user })).status).toBe(200);
    });
  });

  describe('sign-in and single sign-on', () => {
    it('a browser without a Gatehouse session is sent to /sign-in with returnTo=the interaction URL', async () => {
      const user = await newUser();
      const browser = new Browser();
      const { url, verifier, state, nonce } = await authorizationRequest(appConfig, {}, REDIRECT);
      const { url: stoppedAt, res } = await browser.follow(url, REDIRECT);
      expect(res.status).toBe(200);
      expect(stoppedAt.pathname).toBe('/sign-in');
      const toSignIn = browser.hops.find((h) => h.location?.startsWith('/sign-in'));
      expect(toSignIn?.location).toMatch(new RegExp(`^/sign-in\\?returnTo=${encodeURIComponent(`${INTERACTION_PREFIX}/`)}[A-Za-z0-9_-]+$`));
      const returnTo = stoppedAt.searchParams.get('returnTo')!;
      expect(toSignIn!.url.pathname).toBe(returnTo);

      const signedIn = await browser.fetch(`${op.base}/api/auth/sign-in/email`, { json: { email: user.email, password: user.password } });
      expect(signedIn.status).toBe(200);
      const { url: callback } = await browser.follow(new URL(returnTo, op.base), REDIRECT);
      expect(callback.href.startsWith(REDIRECT)).toBe(true);
      const tokens = await oidc.authorizationCodeGrant(appConfig, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
      expect(tokens.claims()!.sub).toBe(user.id);
    });

    it('single sign-on across apps: a second app gets a code without any prompt', async () => {
      const user = await newUser();
      const browser = browserOf(op, user);
      const first = await signIn(browser, appConfig, { scope: 'openid' });
      const otherConfig = await rpConfig(op, other.clientId, other.clientSecret);
      const second = await signIn(browser, otherConfig, { scope: 'openid' }, REDIRECT_B);
      // Every hop was a redirect: no page was shown on the way.
      expect(browser.hops.every((h) => h.status >= 300 && h.status < 400)).toBe(true);
      expect(second.tokens.claims()!.sub).toBe(user.id);
      expect(second.tokens.claims()!.aud).toBe(other.clientId);
      expect(second.tokens.claims()!.sid).toBe(first.tokens.claims()!.sid);
    });
  });

  describe('the Gatehouse session is the authority', () => {
    it('prompt=none without a Gatehouse session answers login_required, never a sign-in page', async () => {
      const { url, state } = await authorizationRequest(appConfig, { prompt: 'none' }, REDIRECT);
      const browser = new Browser();
      const { url: last } = await browser.follow(url, REDIRECT);
      expect(last.href.startsWith(REDIRECT)).toBe(true);
      expect(last.searchParams.get('error')).toBe('login_required');
      expect(last.searchParams.get('state')).toBe(state);
      expect(last.searchParams.get('code')).toBeNull();
      expect(browser.hops.some((h) => h.location?.startsWith('/sign-in'))).toBe(false);
    });

    it("a browser whose Gatehouse user changed gets the new user's code, never the old user's", async () => {
      const first = await newUser('first');
      const second = await newUser('second');
      const browser = browserOf(op, first);
      expect((await signIn(browser, appConfig, { scope: 'openid' })).tokens.claims()!.sub).toBe(first.id);
      // Same browser (its provider session cookie kept), now signed in to Gatehouse as someone else.
      browser.setCookie(op.base, 'gatehouse_session', second.cookie);
      const { tokens } = await signIn(browser, appConfig, { scope: 'openid' });
      expect(tokens.claims()!.sub).toBe(second.id);
      const session = await op.gh.request('GET', '/api/auth/session', { as: second });
      expect(tokens.claims()!.sid).toBe(session.body.data.session.id);
      // And with prompt=none too.
      const silent = await signIn(browser, appConfig, { scope: 'openid', prompt: 'none' });
      expect(silent.tokens.claims()!.sub).toBe(second.id);
    });

    it("a browser signed out of Gatehouse gets no code from the provider's own session", async () => {
      const user = await newUser();
      const browser = browserOf(op, user);
      await signIn(browser, appConfig, { scope: 'openid' });
      expect((await op.gh.request('POST', '/api/auth/sign-out', { as: user })).status).toBe(200);
      // The provider's session cookie is still in the jar; the Gatehouse one names an ended session.
      expect(browser.jar.get(op.base)?.has('gatehouse_op_session')).toBe(true);
      const { url } = await authorizationRequest(appConfig, { scope: 'openid' }, REDIRECT);
      const { url: stoppedAt } = await browser.follow(url, REDIRECT);
      expect(stoppedAt.pathname).toBe('/sign-in');
      const silent = (await authorizationRequest(appConfig, { scope: 'openid', prompt: 'none' }, REDIRECT)).url;
      const { url: back } = await browser.follow(silent, REDIRECT);
      expect(back.searchParams.get('error')).toBe('login_required');
      expect(back.searchParams.get('code')).toBeNull();
    });
  });

  describe('consent of third-party apps', () => {
    let config: oidc.Configuration;
    beforeAll(async () => {
      config = await rpConfig(op, thirdParty.clientId, thirdParty.clientSecret);
    });
    const consentAction = (html: string) => /<form method="post" action="([^"]+\/consent)"/.exec(html)?.[1]?.replace(/&#x2F;|&#47;/g, '/');

    it('a third-party client shows a consent page once per grant', async () => {
      const user = await newUser();
      const browser = browserOf(op, user);
      const flow = await untilPage(browser, config);
      expect(flow.status).toBe(200);
      expect(flow.pageUrl.pathname.startsWith(`${INTERACTION_PREFIX}/`)).toBe(true);
      expect(flow.html).toContain('Partner app');
      expect(flow.html).toContain('value="allow"');
      expect(flow.html).toContain('value="deny"');
      const action = consentAction(flow.html)!;
      expect(action).toBe(`${flow.pageUrl.pathname}/consent`);

      const { url: callback } = await browser.follow(new URL(action, op.base), REDIRECT, { form: { decision: 'allow' } });
      expect(callback.href.startsWith(REDIRECT)).toBe(true);
      const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce, idTokenExpected: true });
      expect(tokens.claims()!.sub).toBe(user.id);

      // The grant is remembered: the second flow goes straight through.
      const again = await authorize(browser, config, {}, REDIRECT);
      expect(again.callback.searchParams.get('code')).toBeTruthy();
      expect(browser.hops.every((h) => h.status >= 300 && h.status < 400)).toBe(true);

      // Deny → access_denied at the redirect URI (another user: no grant yet).
      const other = browserOf(op, await newUser());
      const denied = await untilPage(other, config);
      const { url: back } = await other.follow(new URL(consentAction(denied.html)!, op.base), REDIRECT, { form: { decision: 'deny' } });
      expect(back.href.startsWith(REDIRECT)).toBe(true);
      expect(back.searchParams.get('error')).toBe('access_denied');
      expect(back.searchParams.get('code')).toBeNull();
      expect(back.searchParams.get('state')).toBe(denied.state);
    });

    it('a consent form posted cross-site is refused', async () => {
      const user = await newUser();
      const browser = browserOf(op, user);
      const flow = await untilPage(browser, config);
      const action = new URL(consentAction(flow.html)!, op.base);
      for (const origin of ['https://evil.example', 'null']) {
        const res = await browser.fetch(action, { form: { decision: 'allow' }, origin });
        expect(res.status, origin).toBe(403);
        expect(res.headers.get('location')).toBeNull();
      }
      const grants = await op.gh.deps.db.selectFrom('oidc_records').select('payload').where('model', '=', 'Grant').execute();
      expect(grants.map((g) => JSON.parse(g.payload) as { accountId: string; clientId: string }).filter((g) => g.accountId === user.id && g.clientId === thirdParty.clientId)).toEqual([]);
      // The page still asks: nothing was granted.
      const still = await browser.fetch(flow.pageUrl);
      expect(still.status).toBe(200);
      expect(await still.text()).toContain('value="allow"');
    });

    it('an oversized consent form is refused before it is read (memory exhaustion)', async () => {
      const user = await newUser();
      const browser = browserOf(op, user);
      const flow = await untilPage(browser, config);
      const action = new URL(consentAction(flow.html)!, op.base);
      // On a connection of its own: the server answers before reading the body and closes the
      // socket, which a pooled connection would pass on to the next test's request.
      const status = await new Promise<number>((resolve, reject) => {
        const body = new URLSearchParams({ decision: 'allow', padding: 'x'.repeat(2 * 1024 * 1024) }).toString();
        const req = httpRequest(action, {
          method: 'POST',
          agent: false,
          headers: { cookie: browser.cookieHeader(action) ?? '', origin: op.base, 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
        }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? undefined : reject(e)));
        req.end(body);
      });
      expect(status).toBe(413);
      const still = await browser.fetch(flow.pageUrl);
      expect(await still.text()).toContain('value="allow"');
    });

    it("the interaction page of another browser's flow is refused", async () => {
      const victim = browserOf(op, await newUser('victim'));
      const flow = await untilPage(victim, config);
      const attacker = browserOf(op, await newUser('attacker'));
      const opened = await attacker.fetch(flow.pageUrl);
      expect(opened.status).toBe(400);
      expect(opened.headers.get('location')).toBeNull();
      expect(await opened.text()).not.toContain('value="allow"');
      const posted = await attacker.fetch(new URL(consentAction(flow.html)!, op.base), { form: { decision: 'allow' } });
      expect(posted.status).toBe(400);
      expect(posted.headers.get('location')).toBeNull();
      // Without any Gatehouse session either.
      expect((await new Browser().fetch(flow.pageUrl)).status).toBe(400);
      // The victim's flow is untouched and still finishes.
      const { url: callback } = await victim.follow(new URL(consentAction(flow.html)!, op.base), REDIRECT, { form: { decision: 'allow' } });
      expect(callback.searchParams.get('code')).toBeTruthy();
    });
  });
});
