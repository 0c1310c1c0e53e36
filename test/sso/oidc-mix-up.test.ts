import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { startAdversarialIdp, type AdversarialIdp, type StartAdversarialIdpOptions } from '../helpers/adversarial-idp.js';
import { CALLBACK, configureOidc, dedicatedCallback, ssoLogin } from '../helpers/sso.js';

/**
 * OAuth mix-up (RFC 9700 §4.4, SPEC §12), end to end with two IdPs of our own on loopback.
 *
 * The owner of organization Evil points it at an IdP they run. They start a Corp sign-in of their
 * own at Gatehouse (so they know its PKCE challenge and state), then lure a victim to Evil's login
 * URL. Evil's IdP does not answer: it bounces the victim's browser to Corp's IdP with Corp's
 * client id, the attacker's challenge and the state of the victim's Evil flow. The victim is
 * signed in at Corp's IdP, which sends Corp's code to a redirect URI registered for Corp. If
 * Gatehouse then redeems the code in the Evil flow, it sends it to Evil's token endpoint, and the
 * attacker redeems it in their own Corp flow: signed in as the victim at Corp.
 */
const VICTIM = { sub: 'victim-sub', email: 'ceo@corp.test', email_verified: true, name: 'Corp CEO' };

let t: TestGatehouse;
let corpIdp: AdversarialIdp;
let evilIdp: AdversarialIdp;
let corpOwner: TestUser;
let evilOwner: TestUser;
let corpOrg: string;
let evilOrg: string;

/** What this test started, closed after it (in reverse), so a failed set-up never closes another test's servers. */
const started: Array<() => Promise<void>> = [];

async function world(opts: { corp?: StartAdversarialIdpOptions; mode?: 'dedicated' | 'shared'; env?: Record<string, string> } = {}) {
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true', ...opts.env } });
  const gatehouse = t;
  started.push(() => gatehouse.destroy());
  corpIdp = await startAdversarialIdp(opts.corp ?? {});
  started.push(corpIdp.close);
  evilIdp = await startAdversarialIdp();
  started.push(evilIdp.close);
  corpIdp.setUser(VICTIM);
  corpOwner = await t.signUp('owner@corp.test');
  evilOwner = await t.signUp('owner@evil.test');
  corpOrg = await createOrg(t, corpOwner, 'Corp', 'corp');
  evilOrg = await createOrg(t, evilOwner, 'Evil', 'evil');
  const mode = opts.mode ? { redirectUriMode: opts.mode } : {};
  // configureOidc registers at each IdP exactly the redirect URI Gatehouse shows for the connection.
  await configureOidc(t, corpOwner, corpOrg, corpIdp, mode);
  await configureOidc(t, evilOwner, evilOrg, evilIdp, mode);
}

afterEach(async () => {
  for (const close of started.splice(0).reverse()) await close();
});

/** What Gatehouse sent to the IdPs while `during` ran (the test's own authorize() calls are made outside it). */
async function outboundDuring<T>(during: () => Promise<T>): Promise<{ result: T; corp: string[]; evil: string[] }> {
  const c = corpIdp.requests.length;
  const e = evilIdp.requests.length;
  const result = await during();
  return { result, corp: corpIdp.requests.slice(c).map((r) => `${r.method} ${r.path}`), evil: evilIdp.requests.slice(e).map((r) => `${r.method} ${r.path}`) };
}

/**
 * The attack up to the victim's browser arriving back at Gatehouse. `redirectUri` is the one the
 * attacker names at Corp's IdP (it must be registered there for Corp, or Corp's IdP refuses).
 */
async function mixUp(redirectUri: string) {
  // 1. The attacker starts a Corp sign-in of their own: its state, nonce and PKCE challenge are theirs.
  const attackerStart = await t.request('GET', '/api/auth/sso/corp/login');
  expect(attackerStart.status).toBe(302);
  const attackerBrowser = attackerStart.cookies;
  const attackerAuthz = new URL(attackerStart.headers.get('location')!);
  // (With PAR they are never shown to the browser; the attacker then has to make up their own.)
  const codeChallenge = attackerAuthz.searchParams.get('code_challenge') ?? 'attacker-chosen-challenge-0123456789abcdefghijk';
  const nonce = attackerAuthz.searchParams.get('nonce') ?? undefined;
  // 2. Evil's IdP is told to bounce to Corp's IdP with Corp's client id.
  evilIdp.misbehave({ mixUpBounce: { authorizationEndpoint: corpIdp.authorizationEndpoint, clientId: corpIdp.clientId, redirectUri, codeChallenge, ...(nonce ? { nonce } : {}) } });
  // 3. The victim opens Evil's login URL...
  const victimStart = await t.request('GET', '/api/auth/sso/evil/login');
  expect(victimStart.status).toBe(302);
  const victimBrowser = victimStart.cookies;
  const evilAuthz = new URL(victimStart.headers.get('location')!);
  expect(evilAuthz.origin).toBe(new URL(evilIdp.issuer).origin);
  // 4. ...is bounced to Corp's IdP, carrying the state of the victim's Evil flow...
  const bounced = evilIdp.authorize(evilAuthz.href);
  expect(bounced.href.startsWith(corpIdp.authorizationEndpoint)).toBe(true);
  expect(bounced.searchParams.get('state')).toBe(evilAuthz.searchParams.get('state'));
  // 5. ...signs in at Corp's IdP, which answers on Corp's registered redirect URI.
  const answer = corpIdp.authorize(bounced.href);
  return { attackerAuthz, attackerBrowser, victimBrowser, answer, code: answer.searchParams.get('code') };
}

const json = { accept: 'application/json' };
const tokenRequests = (idp: AdversarialIdp) => idp.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/token'));
const ssoSessions = () => t.deps.db.selectFrom('sessions').select('id').where('auth_method', '=', 'sso').execute();

describe('mix-up attack, once per defence', () => {
  it("mix-up: Corp's code bounced through Evil's IdP is never sent to Evil's token endpoint (dedicated redirect URI)", async () => {
    await world(); // the default: every organization has its own redirect URI
    const { answer, code, victimBrowser } = await mixUp(dedicatedCallback(corpOrg));
    expect(code).toBeTruthy();
    expect(answer.pathname).toBe(`/api/auth/sso/callback/${corpOrg}`);
    const { result: callback, corp, evil } = await outboundDuring(() => t.request('GET', answer.pathname + answer.search, { cookies: victimBrowser, headers: json }));
    expect(callback.body).toMatchObject({ code: 'SSO_LOGIN_FAILED', details: { reason: 'state_invalid' } });
    expect(callback.cookie).toBeNull();
    // Refused before any request left Gatehouse: not the token request, not even discovery.
    expect(evil).toEqual([]);
    expect(corp).toEqual([]);
    expect(tokenRequests(evilIdp)).toHaveLength(0);
    expect(JSON.stringify(evilIdp.requests)).not.toContain(code!);
    // Corp's owner sees it in Corp's audit log (Corp's IdP issued the code), not only Evil's owner in Evil's.
    const corpLog = await t.deps.db.selectFrom('audit_events').select('metadata').where('organization_id', '=', corpOrg).where('action', '=', 'sso.login_failed').execute();
    expect(corpLog.some((f) => f.metadata?.includes('"reason":"state_invalid"'))).toBe(true);
    // Naming Evil's path or the shared one at Corp's IdP does not help: only Corp's is registered there.
    await expect(mixUp(dedicatedCallback(evilOrg))).rejects.toThrow(/not registered/);
    await expect(mixUp(CALLBACK)).rejects.toThrow(/not registered/);
    expect(tokenRequests(evilIdp)).toHaveLength(0);
  });

  it("mix-up: Corp's code bounced through Evil's IdP is never sent to Evil's token endpoint (shared redirect URI, Corp's IdP sends RFC 9207 iss)", async () => {
    await world({ mode: 'shared', corp: { issParameter: true } });
    const settings = await t.request('GET', `/api/user/organizations/${corpOrg}/settings/sso`, { as: corpOwner });
    expect(settings.body.data).toMatchObject({ redirectUriMode: 'shared', redirectUri: CALLBACK, mixUpProtection: 'iss' });
    const { answer, code, victimBrowser } = await mixUp(CALLBACK);
    expect(code).toBeTruthy();
    expect(answer.searchParams.get('iss')).toBe(corpIdp.issuer);
    const { result: callback, corp, evil } = await outboundDuring(() => t.request('GET', answer.pathname + answer.search, { cookies: victimBrowser, headers: json }));
    expect(callback.body).toMatchObject({ code: 'SSO_LOGIN_FAILED', details: { reason: 'issuer_mismatch' } });
    expect(evil).toEqual([]);
    expect(corp).toEqual([]);
    expect(tokenRequests(evilIdp)).toHaveLength(0);
    expect(JSON.stringify(evilIdp.requests)).not.toContain(code!);
    expect(await ssoSessions()).toHaveLength(0);
  });

  it("mix-up: Corp's IdP that requires PAR refuses the request Evil's IdP made up, so no Corp code exists to steal (shared redirect URI, RFC 9126)", async () => {
    await world({ mode: 'shared', corp: { par: 'required' } });
    const settings = await t.request('GET', `/api/user/organizations/${corpOrg}/settings/sso`, { as: corpOwner });
    expect(settings.body.data).toMatchObject({ redirectUriMode: 'shared', mixUpProtection: 'par' });
    const { attackerAuthz, answer, code, victimBrowser } = await mixUp(CALLBACK);
    // Gatehouse pushed its own Corp request: the browser only ever sees client_id and request_uri.
    expect([...attackerAuthz.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    expect(corpIdp.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/par'))).toHaveLength(1);
    // The made-up request was refused by Corp's IdP: no code.
    expect(code).toBeNull();
    expect(answer.searchParams.get('error')).toBe('invalid_request');
    const { result: callback, evil } = await outboundDuring(() => t.request('GET', answer.pathname + answer.search, { cookies: victimBrowser, headers: json }));
    expect(callback.body.details.reason).toBe('idp_error');
    expect(evil).toEqual([]);
    expect(tokenRequests(evilIdp)).toHaveLength(0);
    expect(await ssoSessions()).toHaveLength(0);
  });

  it('mix-up is NOT stopped with the shared redirect URI and an IdP with neither iss nor PAR: mixUpProtection "none" and the test endpoint warning are what tell the admin', async () => {
    await world({ mode: 'shared' });
    const { attackerAuthz, attackerBrowser, answer, code, victimBrowser } = await mixUp(CALLBACK);
    expect(code).toBeTruthy();
    const victim = await t.request('GET', answer.pathname + answer.search, { cookies: victimBrowser, headers: json });
    expect(victim.body.details.reason).toBe('token_exchange_failed');
    // The attack works: Corp's code went to Evil's token endpoint...
    expect(tokenRequests(evilIdp).some((r) => new URLSearchParams(r.body).get('code') === code)).toBe(true);
    // ...and the attacker redeems it in their own Corp flow: signed in as the victim.
    const stolen = await t.request('GET', `/api/auth/sso/callback?code=${encodeURIComponent(code!)}&state=${encodeURIComponent(attackerAuthz.searchParams.get('state')!)}`, { cookies: attackerBrowser });
    expect(stolen.status, stolen.text).toBe(302);
    const session = await t.request('GET', '/api/auth/session', { as: { cookie: stolen.cookie! } });
    expect(session.body.data.user.email).toBe(VICTIM.email);

    // What protects Corp's admin: the settings say so, and the test endpoint warns.
    const settings = await t.request('GET', `/api/user/organizations/${corpOrg}/settings/sso`, { as: corpOwner });
    expect(settings.body.data).toMatchObject({ redirectUriMode: 'shared', redirectUri: CALLBACK, mixUpProtection: 'none' });
    const test = await t.request('POST', `/api/user/organizations/${corpOrg}/settings/sso/test`, { as: corpOwner });
    expect(test.status).toBe(200);
    expect(test.body.data).toMatchObject({ success: true, message: 'SSO configuration is valid', mixUpProtection: 'none' });
    expect(test.body.data.warnings).toEqual([{ name: 'mix_up_protection', message: expect.stringMatching(/mixUpProtection is "none".*dedicated/) }]);
    expect(test.body.data.checks).toContainEqual({ name: 'mix_up_protection', ok: true, message: expect.stringMatching(/neither/) });
  });
});

describe('mixed modes: the mode the attacker picks for Evil does not matter to a dedicated Corp', () => {
  it("mix-up: Corp on its dedicated redirect URI, Evil's flow on the shared one: Corp's code is refused (state_invalid) and never reaches Evil's token endpoint", async () => {
    await world();
    await configureOidc(t, evilOwner, evilOrg, evilIdp, { redirectUriMode: 'shared' });
    const { answer, code, victimBrowser } = await mixUp(dedicatedCallback(corpOrg));
    expect(code).toBeTruthy();
    const { result, evil, corp } = await outboundDuring(() => t.request('GET', answer.pathname + answer.search, { cookies: victimBrowser, headers: json }));
    expect(result.body.details.reason).toBe('state_invalid');
    expect(evil).toEqual([]);
    expect(corp).toEqual([]);
    expect(tokenRequests(evilIdp)).toHaveLength(0);
  });
});

describe("a shared redirect URI left registered at a dedicated organization's IdP (a P1 registration)", () => {
  it('the test endpoint warns a dedicated organization while the deployment also serves the shared redirect URI (shared_redirect_uri)', async () => {
    await world();
    const res = await t.request('POST', `/api/user/organizations/${corpOrg}/settings/sso/test`, { as: corpOwner });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.mixUpProtection).toBe('dedicated');
    expect(res.body.data.warnings).toEqual([{ name: 'shared_redirect_uri', message: expect.stringContaining(`lists only ${dedicatedCallback(corpOrg)}`) }]);
  });

  it("mix-up: with GATEHOUSE_OIDC_SHARED_REDIRECT=false, Corp's code sent to the leftover shared redirect URI is refused (state_invalid) before any request, and no owner can pick shared mode", async () => {
    await world({ env: { GATEHOUSE_OIDC_SHARED_REDIRECT: 'false' } });
    corpIdp.addRedirectUri(CALLBACK); // the P1 registration nobody removed at Corp's IdP
    const put = await t.request('PUT', `/api/user/organizations/${evilOrg}/settings/sso`, {
      as: evilOwner,
      body: { provider: 'oidc', issuerUrl: evilIdp.issuer, clientId: evilIdp.clientId, clientSecret: evilIdp.clientSecret, redirectUriMode: 'shared' },
    });
    expect(put.status).toBe(400);
    expect(put.body.details.issues[0].path).toBe('redirectUriMode');
    const { answer, code, victimBrowser } = await mixUp(CALLBACK);
    expect(code).toBeTruthy();
    expect(answer.pathname).toBe('/api/auth/sso/callback');
    const { result, evil, corp } = await outboundDuring(() => t.request('GET', answer.pathname + answer.search, { cookies: victimBrowser, headers: json }));
    expect(result.body.details.reason).toBe('state_invalid');
    expect(evil).toEqual([]);
    expect(corp).toEqual([]);
    expect(tokenRequests(evilIdp)).toHaveLength(0);
    const test = await t.request('POST', `/api/user/organizations/${corpOrg}/settings/sso/test`, { as: corpOwner });
    expect(test.body.data).toMatchObject({ mixUpProtection: 'dedicated', warnings: [] });
  });

  it('GATEHOUSE_OIDC_SHARED_REDIRECT=false moves a connection stored as shared (saved while it was on) to its dedicated redirect URI, for login too', async () => {
    await world({ env: { GATEHOUSE_OIDC_SHARED_REDIRECT: 'false' } });
    // As a row saved in shared mode before the operator turned the shared URI off.
    const row = await t.deps.db.selectFrom('sso_connections').select(['id', 'config']).where('organization_id', '=', corpOrg).where('status', '=', 'active').executeTakeFirstOrThrow();
    await t.deps.db.updateTable('sso_connections').set({ config: JSON.stringify({ ...JSON.parse(row.config), redirectUriMode: 'shared' }) }).where('id', '=', row.id).execute();
    const moved = (await t.request('GET', `/api/user/organizations/${corpOrg}/settings/sso`, { as: corpOwner })).body.data;
    expect(moved).toMatchObject({ redirectUriMode: 'dedicated', redirectUri: dedicatedCallback(corpOrg), mixUpProtection: 'dedicated' });
    const start = await t.request('GET', '/api/auth/sso/corp/login');
    expect(new URL(start.headers.get('location')!).searchParams.get('redirect_uri')).toBe(dedicatedCallback(corpOrg));
  });
});

describe('the callback refuses an answer that does not fit its flow, before any request leaves Gatehouse', () => {
  beforeEach(async () => {
    await world();
  });

  /** Start a login at `slug` and get the IdP's answer (the adversarial IdP accepts any of the flow's parameters). */
  async function answerFor(slug: string, idp: AdversarialIdp) {
    const start = await t.request('GET', `/api/auth/sso/${slug}/login`);
    return { browser: start.cookies, answer: idp.authorize(start.headers.get('location')!) };
  }

  async function expectRefusedOffline(path: string, browser: Record<string, string>, reason: string) {
    const { result, corp, evil } = await outboundDuring(() => t.request('GET', path, { cookies: browser, headers: json }));
    expect(result.body, result.text).toMatchObject({ status: 400, code: 'SSO_LOGIN_FAILED', details: { reason } });
    expect(result.cookie).toBeNull();
    expect(corp).toEqual([]);
    expect(evil).toEqual([]);
    const failures = await t.deps.db.selectFrom('audit_events').select('metadata').where('action', '=', 'sso.login_failed').execute();
    expect(failures.some((f) => f.metadata?.includes(`"reason":"${reason}"`))).toBe(true);
  }

  it('mix-up: a dedicated-mode flow answered on the shared redirect URI is refused (state_invalid)', async () => {
    const { browser, answer } = await answerFor('corp', corpIdp);
    expect(answer.pathname).toBe(`/api/auth/sso/callback/${corpOrg}`);
    await expectRefusedOffline(`/api/auth/sso/callback${answer.search}`, browser, 'state_invalid');
  });

  it("mix-up: a dedicated-mode flow answered on another organization's redirect URI is refused (state_invalid)", async () => {
    const { browser, answer } = await answerFor('corp', corpIdp);
    await expectRefusedOffline(`/api/auth/sso/callback/${evilOrg}${answer.search}`, browser, 'state_invalid');
  });

  it("mix-up: a shared-mode flow answered on an organization's dedicated redirect URI is refused (state_invalid)", async () => {
    await configureOidc(t, evilOwner, evilOrg, evilIdp, { redirectUriMode: 'shared' });
    const { browser, answer } = await answerFor('evil', evilIdp);
    expect(answer.pathname).toBe('/api/auth/sso/callback');
    await expectRefusedOffline(`/api/auth/sso/callback/${evilOrg}${answer.search}`, browser, 'state_invalid');
  });

  it("mix-up: an answer whose RFC 9207 iss names another IdP than the flow's is refused (issuer_mismatch)", async () => {
    const { browser, answer } = await answerFor('corp', corpIdp);
    answer.searchParams.set('iss', evilIdp.issuer);
    await expectRefusedOffline(answer.pathname + answer.search, browser, 'issuer_mismatch');
  });

  it("mix-up: an answer without iss from an IdP that announces RFC 9207 is refused (iss_missing), before the token request", async () => {
    const issIdp = await startAdversarialIdp({ issParameter: true });
    try {
      const org = await createOrg(t, corpOwner, 'Iss', 'iss-org');
      await configureOidc(t, corpOwner, org, issIdp);
      const start = await t.request('GET', '/api/auth/sso/iss-org/login');
      const answer = issIdp.authorize(start.headers.get('location')!);
      expect(answer.searchParams.get('iss')).toBe(issIdp.issuer);
      answer.searchParams.delete('iss'); // stripped on the way (a mix-up IdP would never have it)
      const before = tokenRequests(issIdp).length;
      const res = await t.request('GET', answer.pathname + answer.search, { cookies: start.cookies, headers: json });
      expect(res.body.details.reason).toBe('iss_missing');
      expect(tokenRequests(issIdp)).toHaveLength(before);
      // With its iss the same answer shape signs in (control).
      const ok = await ssoLogin(t, '/api/auth/sso/iss-org/login', (u) => issIdp.authorize(u), { accept: 'application/json' });
      expect(ok.callbackUrl!.searchParams.get('iss')).toBe(issIdp.issuer);
      expect(ok.callback!.status, ok.callback!.text).toBe(302);
    } finally {
      await issIdp.close();
    }
  });

  it('the token request sends the redirect URI of the authorization request (dedicated), and a correct answer signs in', async () => {
    const run = await ssoLogin(t, '/api/auth/sso/corp/login', (u) => corpIdp.authorize(u), { accept: 'application/json' });
    expect(run.idpUrl.searchParams.get('redirect_uri')).toBe(dedicatedCallback(corpOrg));
    expect(run.callback!.status, run.callback!.text).toBe(302);
    expect(new URLSearchParams(tokenRequests(corpIdp).at(-1)!.body).get('redirect_uri')).toBe(dedicatedCallback(corpOrg));
  });

  it('a login initiated by the IdP (initiate login URI) uses the redirect URI of the connection’s mode', async () => {
    const start = await t.request('GET', `/api/auth/sso/corp/initiate?iss=${encodeURIComponent(corpIdp.issuer)}`);
    expect(start.status).toBe(302);
    expect(new URL(start.headers.get('location')!).searchParams.get('redirect_uri')).toBe(dedicatedCallback(corpOrg));
    await configureOidc(t, corpOwner, corpOrg, corpIdp, { redirectUriMode: 'shared' });
    const shared = await t.request('GET', `/api/auth/sso/corp/initiate?iss=${encodeURIComponent(corpIdp.issuer)}`);
    expect(new URL(shared.headers.get('location')!).searchParams.get('redirect_uri')).toBe(CALLBACK);
  });
});

describe('redirectUriMode settings', () => {
  it('PUT stores redirectUriMode (default: the deployment default); GET shows redirectUri, redirectUriMode and mixUpProtection per mode', async () => {
    await world();
    const shared = await configureOidc(t, corpOwner, corpOrg, corpIdp, { redirectUriMode: 'shared' });
    expect(shared).toMatchObject({ redirectUriMode: 'shared', redirectUri: CALLBACK, mixUpProtection: 'none' });
    const row = await t.deps.db.selectFrom('sso_connections').select('config').where('organization_id', '=', corpOrg).where('status', '=', 'active').executeTakeFirstOrThrow();
    expect(JSON.parse(row.config).redirectUriMode).toBe('shared');
    const dedicated = await configureOidc(t, corpOwner, corpOrg, corpIdp, {});
    expect(dedicated).toMatchObject({ redirectUriMode: 'dedicated', redirectUri: dedicatedCallback(corpOrg), mixUpProtection: 'dedicated' });
    const bad = await t.request('PUT', `/api/user/organizations/${corpOrg}/settings/sso`, { as: corpOwner, body: { provider: 'oidc', issuerUrl: corpIdp.issuer, clientId: corpIdp.clientId, redirectUriMode: 'per-org' } });
    expect(bad.status).toBe(400);
    expect(bad.body.details.issues[0].path).toBe('redirectUriMode');
  });

  it('a connection saved before the mode was stored takes the deployment default (dedicated)', async () => {
    await world();
    await t.deps.db.updateTable('sso_connections').set({ config: JSON.stringify({ protocol: 'oidc', issuerUrl: evilIdp.issuer, clientId: evilIdp.clientId, scopes: ['openid', 'profile', 'email'] }) }).where('organization_id', '=', evilOrg).execute();
    const legacy = await t.request('GET', `/api/user/organizations/${evilOrg}/settings/sso`, { as: evilOwner });
    expect(legacy.body.data).toMatchObject({ redirectUriMode: 'dedicated', redirectUri: dedicatedCallback(evilOrg), mixUpProtection: 'dedicated' });
  });

  it('GATEHOUSE_OIDC_REDIRECT_MODE=shared: a PUT without redirectUriMode stores "shared", and an older row without a mode signs in on the shared URI', async () => {
    await world({ env: { GATEHOUSE_OIDC_REDIRECT_MODE: 'shared' } });
    const saved = await t.request('GET', `/api/user/organizations/${corpOrg}/settings/sso`, { as: corpOwner });
    expect(saved.body.data).toMatchObject({ redirectUriMode: 'shared', redirectUri: CALLBACK });
    const row = await t.deps.db.selectFrom('sso_connections').select('config').where('organization_id', '=', corpOrg).where('status', '=', 'active').executeTakeFirstOrThrow();
    expect(JSON.parse(row.config).redirectUriMode).toBe('shared'); // stored: a later change of the default does not move it
    await t.deps.db.updateTable('sso_connections').set({ config: JSON.stringify({ protocol: 'oidc', issuerUrl: evilIdp.issuer, clientId: evilIdp.clientId, scopes: ['openid', 'profile', 'email'] }) }).where('organization_id', '=', evilOrg).execute();
    const legacy = await t.request('GET', `/api/user/organizations/${evilOrg}/settings/sso`, { as: evilOwner });
    expect(legacy.body.data).toMatchObject({ redirectUriMode: 'shared', redirectUri: CALLBACK, mixUpProtection: 'none' });
    const run = await ssoLogin(t, '/api/auth/sso/evil/login', (u) => evilIdp.authorize(u), { accept: 'application/json' });
    expect(run.idpUrl.searchParams.get('redirect_uri')).toBe(CALLBACK);
    expect(run.callback!.status, run.callback!.text).toBe(302);
  });

  it('an organization whose slug is "callback" keeps its login URL next to the dedicated callback route', async () => {
    await world();
    const org = await createOrg(t, corpOwner, 'Callback', 'callback');
    await configureOidc(t, corpOwner, org, corpIdp);
    const start = await t.request('GET', '/api/auth/sso/callback/login');
    expect(start.status).toBe(302);
    expect(start.headers.get('location')).toContain(corpIdp.authorizationEndpoint);
    const bad = await t.request('GET', '/api/auth/sso/callback/not-an-organization-id?state=x', { headers: json });
    expect(bad.status).toBe(400);
  });

  it('the test endpoint warns that "par" protects only when the IdP requires PAR', async () => {
    await world({ mode: 'shared', corp: { par: 'supported' } });
    const test = await t.request('POST', `/api/user/organizations/${corpOrg}/settings/sso/test`, { as: corpOwner });
    expect(test.status).toBe(200);
    expect(test.body.data.mixUpProtection).toBe('par');
    expect(test.body.data.warnings).toEqual([{ name: 'mix_up_protection', message: expect.stringMatching(/requires pushed authorization requests/) }]);
    // And a login through it pushes the request (shared mode, PAR offered).
    const run = await ssoLogin(t, '/api/auth/sso/corp/login', (u) => corpIdp.authorize(u), { accept: 'application/json' });
    expect([...run.idpUrl.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    expect(run.callback!.status, run.callback!.text).toBe(302);
    const par = corpIdp.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/par')).at(-1)!;
    expect(new URLSearchParams(par.body).get('redirect_uri')).toBe(CALLBACK);
    expect(String(par.headers.authorization)).toMatch(/^Basic /);
    expect(new URLSearchParams(tokenRequests(corpIdp).at(-1)!.body).get('redirect_uri')).toBe(CALLBACK);
  });

  it('dedicated mode does not push even when the IdP offers PAR (nothing to gain), but does when the IdP requires it', async () => {
    await world({ corp: { par: 'required' } });
    const required = await ssoLogin(t, '/api/auth/sso/corp/login', (u) => corpIdp.authorize(u), { accept: 'application/json' });
    expect([...required.idpUrl.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    expect(required.callback!.status, required.callback!.text).toBe(302);
    const offered = await startAdversarialIdp({ par: 'supported' });
    try {
      await configureOidc(t, evilOwner, evilOrg, offered);
      const run = await ssoLogin(t, '/api/auth/sso/evil/login', (u) => offered.authorize(u), { accept: 'application/json' });
      expect(run.idpUrl.searchParams.get('code_challenge')).toBeTruthy();
      expect(offered.requests.filter((r) => r.path.endsWith('/par'))).toHaveLength(0);
      expect(run.callback!.status).toBe(302);
    } finally {
      await offered.close();
    }
  });
});
