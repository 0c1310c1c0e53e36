import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INTERACTION_PREFIX, OP_ROUTES } from '../../src/oidc-provider/urls.js';
import { dropSchema, ENGINE, TEST_DATABASE_URL, testKeySpec, type TestUser } from '../helpers/app.js';
import { until } from '../helpers/postgres.js';
import {
  authorizationRequest, authorize, browserOf, makeSuperadmin, oauthError, registerClient, rpConfig, startInstanceProxy, startOpServerBehind,
  userinfoStatus, type InstanceProxy, type OpServer,
} from '../helpers/op.js';

/**
 * Two Gatehouse instances on one database (one SQLite file, or one PostgreSQL schema) behind a
 * round-robin proxy, so the OpenID Provider has one issuer and any instance may serve any step:
 * the provider's state lives in the database (adapter.ts), its cookies and the sealed signing keys
 * derive from the shared GATEHOUSE_SECRET_KEYS.
 */

const REDIRECT = 'http://127.0.0.1:9/cb';
const OFFLINE = { scope: 'openid email profile offline_access', prompt: 'consent' };

describe(`OpenID Provider on two instances (${ENGINE})`, () => {
  let proxy: InstanceProxy;
  let a: OpServer & { address: string };
  let b: OpServer & { address: string };
  let admin: TestUser;
  let client: { clientId: string; clientSecret: string | null };
  let partner: { clientId: string; clientSecret: string | null };
  const schema = TEST_DATABASE_URL ? `opmi_${randomBytes(4).toString('hex')}` : undefined;
  let n = 0;
  /** The instance `name` serves every request from now on ('round-robin' for turns). */
  const via = (name: 'A' | 'B' | 'round-robin') => void (proxy.route = name);
  const servedSince = (from: number) => proxy.served.slice(from);

  beforeAll(async () => {
    proxy = await startInstanceProxy();
    const databaseUrl = TEST_DATABASE_URL ? undefined : `sqlite:${mkdtempSync(join(tmpdir(), 'gh-op-mi-'))}/gh.db`;
    const options = { env: { GATEHOUSE_SECRET_KEYS: testKeySpec() }, ...(databaseUrl ? { databaseUrl } : {}), ...(schema ? { schema } : {}) };
    // One after the other: the first runs the migrations and makes the signing key, the second finds them.
    a = await startOpServerBehind(proxy.base, options);
    b = await startOpServerBehind(proxy.base, options);
    proxy.targets = { A: a.address, B: b.address };
    admin = await a.gh.signUp('root@gatehouse.test');
    await makeSuperadmin(a.gh, admin);
    client = await registerClient(a.gh, admin, { name: 'Web app', redirectUris: [REDIRECT], firstParty: true });
    partner = await registerClient(b.gh, admin, { name: 'Partner app', redirectUris: [REDIRECT] });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await proxy?.close();
    if (schema) await dropSchema(schema);
  });

  it('both instances publish the same signing keys under one issuer', async () => {
    via('A');
    const fromA = (await (await fetch(`${proxy.base}${OP_ROUTES.jwks}`)).json()) as { keys: Array<{ kid: string }> };
    via('B');
    const fromB = (await (await fetch(`${proxy.base}${OP_ROUTES.jwks}`)).json()) as { keys: Array<{ kid: string }> };
    expect(fromA.keys.map((k) => k.kid)).toEqual(fromB.keys.map((k) => k.kid));
    const config = await rpConfig(a, client.clientId, client.clientSecret);
    expect(config.serverMetadata().issuer).toBe(proxy.base);
  });

  it('a login that starts on one instance finishes on another', async () => {
    const user = await b.gh.signUp(`user${++n}@example.com`, undefined, 'Multi');
    via('round-robin');
    const config = await rpConfig(a, client.clientId, client.clientSecret);
    const browser = browserOf(a, user);
    const { url, verifier, state, nonce } = await authorizationRequest(config, OFFLINE, REDIRECT);

    // The authorization request on A …
    via('A');
    const start = await browser.fetch(url);
    expect(start.status).toBe(303);
    const interaction = new URL(start.headers.get('location')!, proxy.base);
    expect(interaction.pathname.startsWith(`${INTERACTION_PREFIX}/`)).toBe(true);
    // … the interaction (and the resumed authorization) on B …
    via('B');
    const mark = proxy.served.length;
    const { url: callback } = await browser.follow(interaction, REDIRECT);
    expect(callback.href.startsWith(REDIRECT)).toBe(true);
    expect(callback.searchParams.get('iss')).toBe(proxy.base);
    expect(servedSince(mark).map((s) => s.instance)).toEqual(servedSince(mark).map(() => 'B'));
    expect(servedSince(mark).some((s) => s.path.startsWith(INTERACTION_PREFIX))).toBe(true);

    // … the code exchange on A …
    via('A');
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    expect(proxy.served.at(-1)).toMatchObject({ instance: 'A', path: OP_ROUTES.token });
    expect(tokens.claims()).toMatchObject({ sub: user.id, email: user.email });
    const session = await a.gh.request('GET', '/api/auth/session', { as: user });
    expect(tokens.claims()!.sid).toBe(session.body.data.session.id);

    // … the refresh on B (the ID token it signs verifies against A's JWKS) …
    via('B');
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(proxy.served.at(-1)).toMatchObject({ instance: 'B', path: OP_ROUTES.token });
    via('A');
    await jwtVerify(refreshed.id_token!, createRemoteJWKSet(new URL(`${proxy.base}${OP_ROUTES.jwks}`)), { issuer: proxy.base, audience: client.clientId, algorithms: ['ES256'] });

    // … and UserInfo on A.
    const info = await oidc.fetchUserInfo(config, refreshed.access_token, user.id);
    expect(proxy.served.at(-1)).toMatchObject({ instance: 'A', path: OP_ROUTES.userinfo });
    expect(info).toMatchObject({ sub: user.id, email: user.email, name: 'Multi' });
  });

  it('every step on whichever instance answers: round-robin through a consent page', async () => {
    const user = await a.gh.signUp(`user${++n}@example.com`);
    via('round-robin');
    const mark = proxy.served.length;
    const config = await rpConfig(a, partner.clientId, partner.clientSecret);
    const browser = browserOf(a, user);
    const request = await authorizationRequest(config, {}, REDIRECT);
    const { url: page, res } = await browser.follow(request.url, REDIRECT);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('value="allow"');
    const { url: callback } = await browser.follow(new URL(`${page.pathname}/consent`, proxy.base), REDIRECT, { form: { decision: 'allow' } });
    expect(callback.searchParams.get('code')).toBeTruthy();
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce, idTokenExpected: true });
    expect(await userinfoStatus(a, tokens.access_token)).toBe(200);
    expect(await userinfoStatus(b, tokens.access_token)).toBe(200);
    expect(new Set(servedSince(mark).map((s) => s.instance))).toEqual(new Set(['A', 'B']));
    // The grant is remembered by both: a second flow goes straight through, whichever instance serves it.
    expect((await authorize(browser, config, {}, REDIRECT)).callback.searchParams.get('code')).toBeTruthy();
  });

  it('a code redeemed on one instance cannot be redeemed again on another', async () => {
    const user = await a.gh.signUp(`user${++n}@example.com`);
    via('round-robin');
    const config = await rpConfig(a, client.clientId, client.clientSecret);
    const flow = await authorize(browserOf(a, user), config, OFFLINE, REDIRECT);
    via('A');
    const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce });
    via('B');
    expect(await oauthError(oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce }))).toBe('invalid_grant');
    via('A');
    expect(await userinfoStatus(a, tokens.access_token)).toBe(401);
  });

  it('a refresh token spent on one instance is refused on the other, and ends the session on both', async () => {
    const user = await a.gh.signUp(`user${++n}@example.com`);
    via('round-robin');
    const config = await rpConfig(a, client.clientId, client.clientSecret);
    const flow = await authorize(browserOf(a, user), config, OFFLINE, REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce });
    via('A');
    const rotated = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    via('B');
    expect(await oauthError(oidc.refreshTokenGrant(config, tokens.refresh_token!))).toBe('invalid_grant');
    via('A');
    expect(await oauthError(oidc.refreshTokenGrant(config, rotated.refresh_token!))).toBe('invalid_grant');
    // The instance that saw the reuse ended the session; the other hears of it within a second
    // (docs/operations.md, the session cache: PostgreSQL NOTIFY, SQLite's data_version read at most every 50 ms).
    for (const [name, t] of [['A', a], ['B', b]] as const) {
      await until(async () => (await t.gh.request('GET', '/api/auth/session', { as: user })).status === 401, `${name} to refuse the ended session`, 40);
    }
  });
});
