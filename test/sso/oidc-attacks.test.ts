import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { startAdversarialIdp, type AdversarialIdp } from '../helpers/adversarial-idp.js';
import { configureOidc, ssoLogin, type SsoRun } from '../helpers/sso.js';

/**
 * The OpenID RP certification cases, each named after the attack it stops, against a small IdP
 * of our own that can be told to misbehave. Every test runs on a fresh Gatehouse so no cached
 * discovery or JWKS carries over.
 */
let idp: AdversarialIdp;
let t: TestGatehouse;
let owner: TestUser;
let orgId: string;

beforeAll(async () => {
  idp = await startAdversarialIdp();
});
afterAll(async () => {
  await idp.close();
});
beforeEach(async () => {
  idp.reset();
  idp.setUser({ sub: 'user-1', email: 'user1@adversary.test', email_verified: true, name: 'User One' });
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  owner = await t.signUp('owner@adversary.test');
  orgId = await createOrg(t, owner, 'Adversary', 'adv');
  await configureOidc(t, owner, orgId, idp);
});
afterEach(async () => {
  await t.destroy();
});

const login = (opts: { browser?: Record<string, string> } = {}) => ssoLogin(t, '/api/auth/sso/adv/login', (u) => idp.authorize(u), { accept: 'application/json', ...opts });

async function expectRefused(run: SsoRun | Promise<SsoRun>, reason: string) {
  const r = await run;
  expect(r.callback, 'the login should have reached the callback').not.toBeNull();
  expect(r.callback!.body, JSON.stringify(r.callback!.body)).toMatchObject({ success: false, status: 400, code: 'SSO_LOGIN_FAILED', details: { reason } });
  expect(r.callback!.cookie).toBeNull();
  expect(await t.deps.db.selectFrom('sessions').select('id').where('auth_method', '=', 'sso').execute()).toHaveLength(0);
  const failures = await t.deps.db.selectFrom('audit_events').select(['metadata', 'organization_id']).where('action', '=', 'sso.login_failed').execute();
  expect(failures.some((f) => f.metadata?.includes(`"reason":"${reason}"`))).toBe(true);
}

describe('ID token verification (rejected)', () => {
  it('accepts the well-behaved IdP (control)', async () => {
    const run = await login();
    expect(run.callback!.status).toBe(302);
    expect(run.callback!.cookie).toBeTruthy();
  });

  it('rejects an ID token from another issuer (wrong iss)', async () => {
    idp.misbehave({ idTokenClaims: (c) => ({ ...c, iss: 'https://evil.example' }) });
    await expectRefused(login(), 'issuer_mismatch');
  });

  it('rejects an ID token meant for another client (wrong aud)', async () => {
    idp.misbehave({ idTokenClaims: (c) => ({ ...c, aud: 'some-other-client' }) });
    await expectRefused(login(), 'audience_mismatch');
  });

  it('rejects an ID token for several audiences whose azp is another client', async () => {
    idp.misbehave({ idTokenClaims: (c) => ({ ...c, aud: [idp.clientId, 'other'], azp: 'other' }) });
    await expectRefused(login(), 'audience_mismatch');
  });

  it('rejects an ID token without sub', async () => {
    idp.misbehave({ idTokenClaims: ({ sub: _sub, ...c }) => c });
    await expectRefused(login(), 'sub_missing');
  });

  it('rejects an ID token without iat', async () => {
    idp.misbehave({ idTokenClaims: ({ iat: _iat, ...c }) => c });
    await expectRefused(login(), 'iat_invalid');
  });

  it('rejects an ID token issued in the future beyond the clock skew', async () => {
    idp.misbehave({ idTokenClaims: (c) => ({ ...c, iat: Math.floor(Date.now() / 1000) + 600 }) });
    await expectRefused(login(), 'iat_invalid');
  });

  it('rejects an expired ID token', async () => {
    idp.misbehave({ idTokenClaims: (c) => ({ ...c, exp: Math.floor(Date.now() / 1000) - 120, iat: Math.floor(Date.now() / 1000) - 600 }) });
    await expectRefused(login(), 'token_expired');
  });

  it('rejects an ID token with a corrupted signature', async () => {
    idp.misbehave({ corruptSignature: true });
    await expectRefused(login(), 'signature_invalid');
  });

  it('rejects an unsigned ID token (alg: none)', async () => {
    idp.misbehave({ alg: 'none' });
    await expectRefused(login(), 'alg_not_allowed');
  });

  it('rejects an ID token HMAC-signed with the client secret (HS256)', async () => {
    idp.misbehave({ alg: 'HS256-client-secret' });
    await expectRefused(login(), 'alg_not_allowed');
  });

  it('rejects an ID token with a wrong nonce (replayed token)', async () => {
    idp.misbehave({ idTokenClaims: (c) => ({ ...c, nonce: 'nonce-of-another-login' }) });
    await expectRefused(login(), 'nonce_mismatch');
  });

  it('rejects an ID token without nonce', async () => {
    idp.misbehave({ idTokenClaims: ({ nonce: _n, ...c }) => c });
    await expectRefused(login(), 'nonce_mismatch');
  });

  it('rejects an ID token without kid when the JWKS has several keys', async () => {
    idp.misbehave({ omitKid: true, jwksKeys: 'two' });
    await configureOidc(t, owner, orgId, idp); // saving refetches the JWKS, now with two keys
    await expectRefused(login(), 'kid_ambiguous');
  });

  it('rejects an ID token signed by a key the JWKS does not publish', async () => {
    idp.misbehave({ signWithUnpublishedKey: true });
    await expectRefused(login(), 'unknown_kid');
  });

  it('rejects a UserInfo answer about another subject (token substitution)', async () => {
    idp.misbehave({ userinfoSub: 'someone-else' });
    await expectRefused(login(), 'userinfo_sub_mismatch');
  });

  it('never lets UserInfo override the ID token claims it carries', async () => {
    idp.setUser({ sub: 'user-2', email: 'user2@adversary.test', email_verified: true, name: 'Two' });
    const run = await login();
    expect(run.callback!.status).toBe(302);
    const identity = await t.deps.db.selectFrom('sso_identities').selectAll().executeTakeFirstOrThrow();
    expect(identity.subject).toBe('user-2');
  });

  it('rejects a failed code exchange and names the cause', async () => {
    idp.misbehave({ tokenStatus: 400, tokenBody: JSON.stringify({ error: 'invalid_client' }) });
    const run = await login();
    expect(run.callback!.body.details.reason).toBe('token_exchange_failed');
    expect(run.callback!.body.message).toMatch(/invalid_client.*client secret/);
  });
});

describe('ID token verification (accepted)', () => {
  it('accepts an ID token without kid when the JWKS has exactly one key', async () => {
    idp.misbehave({ omitKid: true, jwksKeys: 'one' });
    expect((await login()).callback!.status).toBe(302);
  });

  it('accepts a rotated signing key by refetching the JWKS once (after the one-minute floor)', async () => {
    expect((await login()).callback!.status).toBe(302); // JWKS now cached
    idp.rotateKeys();
    // Within the minute, an unknown kid does not trigger a refetch: refused.
    await expectRefusedNoSessionCheck(login(), 'unknown_kid');
    t.clock.advance(61_000);
    const before = idp.requests.filter((r) => r.path.endsWith('/jwks')).length;
    expect((await login()).callback!.status).toBe(302);
    expect(idp.requests.filter((r) => r.path.endsWith('/jwks')).length).toBe(before + 1);
  });

  it('uses client_secret_post when that is what the IdP accepts', async () => {
    const postIdp = await startAdversarialIdp({ clientAuth: 'client_secret_post' });
    try {
      const org = await createOrg(t, owner, 'Post', 'post-auth');
      await configureOidc(t, owner, org, postIdp);
      const run = await ssoLogin(t, '/api/auth/sso/post-auth/login', (u) => postIdp.authorize(u), { accept: 'application/json' });
      expect(run.callback!.status, JSON.stringify(run.callback!.body)).toBe(302);
      const tokenCalls = postIdp.requests.filter((r) => r.path.endsWith('/token'));
      expect(tokenCalls.at(-1)!.body).toContain('client_secret=');
    } finally {
      await postIdp.close();
    }
  });

  it('sends the client secret with client_secret_basic by default', async () => {
    await login();
    const call = idp.requests.filter((r) => r.path.endsWith('/token')).at(-1)!;
    expect(String(call.headers.authorization)).toMatch(/^Basic /);
    expect(call.body).not.toContain('client_secret=');
    expect(call.body).toMatch(/code_verifier=/);
  });
});

describe('discovery', () => {
  it('refuses to save a connection whose discovery issuer differs from the configured one', async () => {
    idp.misbehave({ discoveryIssuer: 'https://impostor.example' });
    const org = await createOrg(t, owner, 'Mismatch', 'mismatch');
    const res = await t.request('PUT', `/api/user/organizations/${org}/settings/sso`, { as: owner, body: { provider: 'oidc', issuerUrl: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret } });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('SSO_TEST_FAILED');
    expect(res.body.details.checks).toContainEqual(expect.objectContaining({ name: 'issuer', ok: false }));
    const test = await t.request('POST', `/api/user/organizations/${orgId}/settings/sso/test`, { as: owner });
    expect(test.status).toBe(422);
    expect(test.body.details.checks.find((c: { name: string }) => c.name === 'issuer').ok).toBe(false);
  });

  it('reports each failing check: not JSON, HTTP error, no JWKS, no signing key', async () => {
    const cases: Array<[Parameters<AdversarialIdp['misbehave']>[0], string, RegExp]> = [
      [{ discoveryBody: 'this is not json' }, 'discovery', /not JSON/],
      [{ discoveryStatus: 500 }, 'discovery', /HTTP 500/],
      [{ noJwksUri: true }, 'endpoints', /jwks_uri/],
    ];
    for (const [m, check, message] of cases) {
      idp.reset();
      idp.misbehave(m);
      const res = await t.request('POST', `/api/user/organizations/${orgId}/settings/sso/test`, { as: owner });
      expect(res.status, JSON.stringify(m)).toBe(422);
      const failed = res.body.details.checks.find((c: { ok: boolean }) => !c.ok);
      expect(failed.name).toBe(check);
      expect(failed.message).toMatch(message);
    }
  });
});

describe('flow state', () => {
  it('rejects a replayed callback (state used twice)', async () => {
    const run = await login();
    expect(run.callback!.status).toBe(302);
    const replay = await t.request('GET', run.callbackUrl!.pathname + run.callbackUrl!.search, { cookies: run.browser, headers: { accept: 'application/json' } });
    expect(replay.body.details.reason).toBe('replayed');
    expect(replay.cookie).toBeNull();
  });

  it('rejects an unknown state', async () => {
    const res = await t.request('GET', '/api/auth/sso/callback?code=abc&state=not-a-state-we-issued', { headers: { accept: 'application/json' } });
    expect(res.status).toBe(400);
    expect(res.body.details.reason).toBe('state_invalid');
  });

  it("rejects a callback carried into another browser (login CSRF with the attacker's own state)", async () => {
    const attacker = await t.request('GET', '/api/auth/sso/adv/login');
    const redirect = idp.authorize(attacker.headers.get('location')!);
    // The victim's browser has no (or another) SSO browser cookie.
    const victim = await t.request('GET', redirect.pathname + redirect.search, { cookies: { gatehouse_sso_browser: 'A'.repeat(32) }, headers: { accept: 'application/json' } });
    expect(victim.body.details.reason).toBe('browser_mismatch');
    expect(victim.cookie).toBeNull();
  });

  it("rejects a code replayed under another flow's state", async () => {
    const first = await login();
    const code = first.callbackUrl!.searchParams.get('code')!;
    const second = await t.request('GET', '/api/auth/sso/adv/login', { cookies: first.browser });
    const state = new URL(second.headers.get('location')!).searchParams.get('state')!;
    const res = await t.request('GET', `${first.callbackUrl!.pathname}?code=${encodeURIComponent(code)}&state=${encodeURIComponent(state)}`, { cookies: first.browser, headers: { accept: 'application/json' } });
    expect(res.body.details.reason).toBe('token_exchange_failed');
    expect(res.cookie).toBeNull();
  });

  it('rejects a flow older than 10 minutes', async () => {
    const run = await ssoLogin(t, '/api/auth/sso/adv/login', (u) => {
      t.clock.advance(10 * 60_000 + 1000);
      return idp.authorize(u);
    }, { accept: 'application/json' });
    expect(run.callback!.body.details.reason).toBe('flow_expired');
  });

  it('rejects a flow whose connection configuration changed mid-login', async () => {
    const run = await ssoLogin(t, '/api/auth/sso/adv/login', async (u) => {
      await configureOidc(t, owner, orgId, idp, { scopes: 'openid email' });
      return idp.authorize(u);
    }, { accept: 'application/json' });
    expect(run.callback!.body.details.reason).toBe('config_changed');
  });

  it('stores only the hash of the state', async () => {
    const start = await t.request('GET', '/api/auth/sso/adv/login');
    const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
    const flows = JSON.stringify(await t.deps.db.selectFrom('sso_flows').selectAll().execute());
    expect(flows).not.toContain(state);
  });
});

async function expectRefusedNoSessionCheck(run: Promise<SsoRun>, reason: string) {
  const r = await run;
  expect(r.callback!.body.details.reason).toBe(reason);
  expect(r.callback!.cookie).toBeNull();
}
