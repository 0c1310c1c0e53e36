import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/ids.js';
import { addMember, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { CALLBACK, configureOidc, ssoLogin } from '../helpers/sso.js';

/** SSO against the certified `oidc-provider`, started on loopback as the customer's IdP. */
let t: TestGatehouse;
let idp: RealIdp;
let owner: TestUser;

beforeAll(async () => {
  idp = await startRealIdp({
    redirectUris: [CALLBACK],
    users: [
      { sub: 'alice-sub', email: 'alice@acme.test', email_verified: true, name: 'Alice Example' },
      { sub: 'bob-sub', email: 'bob@acme.test', email_verified: true, name: 'Bob Example' },
      { sub: 'carol-sub', email: 'carol@acme.test', email_verified: true, name: 'Carol' },
      { sub: 'dave-sub', email: 'dave@other.test', email_verified: true, name: 'Dave' },
      { sub: 'erin-sub', email: 'erin@acme.test', email_verified: false, name: 'Erin' },
      { sub: 'frank-sub', email: 'frank@acme.test', email_verified: true, name: 'Frank' },
      { sub: 'grace-sub', email: 'grace@acme.test', email_verified: true, name: 'Grace' },
    ],
  });
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true', GATEHOUSE_TRUSTED_ORIGINS: 'https://app.acme.test' } });
  owner = await t.signUp('owner@acme.test');
});
afterAll(async () => {
  await t.destroy();
  await idp.close();
});

async function orgWithSso(slug: string, extra: Record<string, unknown> = {}) {
  const orgId = await createOrg(t, owner, slug, slug);
  const settings = await configureOidc(t, owner, orgId, idp, extra);
  return { orgId, settings };
}

describe('SSO settings', () => {
  it('stores the four-field body, redacts the secret, and returns the URLs to paste into the IdP', async () => {
    const orgId = await createOrg(t, owner, 'Settings Org', 'settings-org');
    expect((await t.request('GET', `/api/user/organizations/${orgId}/settings/sso`, { as: owner })).status).toBe(404);
    const put = await t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, {
      as: owner,
      body: { provider: 'okta', issuerUrl: `${idp.issuer}/.well-known/openid-configuration`, clientId: idp.clientId, clientSecret: idp.clientSecret },
    });
    expect(put.status).toBe(200);
    const data = put.body.data;
    expect(data).toMatchObject({
      protocol: 'oidc', provider: 'okta', issuerUrl: idp.issuer, issuer: idp.issuer, clientId: idp.clientId,
      hasClientSecret: true, scopes: 'openid profile email', enabled: true, allowJitProvisioning: true, defaultRole: 'member',
      allowedDomains: null, allowIdpInitiated: false, configVersion: 1,
      // SPEC §12: the organization's own redirect URI by default (mix-up defence).
      redirectUri: `http://localhost:3000/api/auth/sso/callback/${orgId}`, redirectUriMode: 'dedicated', mixUpProtection: 'dedicated', allowedTenants: null,
      loginUrl: 'http://localhost:3000/api/auth/sso/settings-org/login',
      initiateLoginUri: 'http://localhost:3000/api/auth/sso/settings-org/initiate',
    });
    expect(data.clientSecret).not.toContain(idp.clientSecret);
    expect(put.text).not.toContain(idp.clientSecret);

    const row = await t.deps.db.selectFrom('sso_connections').selectAll().where('organization_id', '=', orgId).executeTakeFirstOrThrow();
    expect(row.secret_enc).toMatch(/^v1\./);
    expect(JSON.stringify(row)).not.toContain(idp.clientSecret);

    // A PUT without clientSecret keeps it and bumps the version; omitted optional fields take their defaults.
    const again = await t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, { as: owner, body: { provider: 'okta', issuerUrl: idp.issuer, clientId: idp.clientId, allowJitProvisioning: false } });
    expect(again.status).toBe(200);
    expect(again.body.data).toMatchObject({ hasClientSecret: true, configVersion: 2, allowJitProvisioning: false, id: data.id });
    const third = await t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, { as: owner, body: { provider: 'okta', issuerUrl: idp.issuer, clientId: idp.clientId } });
    expect(third.body.data).toMatchObject({ allowJitProvisioning: true, configVersion: 3 });

    const audit = JSON.stringify(await t.deps.db.selectFrom('audit_events').selectAll().where('organization_id', '=', orgId).execute());
    expect(audit).toContain('sso.connection_created');
    expect(audit).toContain('sso.connection_updated');
    expect(audit).not.toContain(idp.clientSecret);
  });

  it('only an owner (or a superadmin) may read or change SSO settings', async () => {
    const { orgId } = await orgWithSso('owner-only');
    const admin = await t.signUp('admin@owner-only.test');
    await addMember(t, owner, orgId, admin, 'admin');
    expect((await t.request('GET', `/api/user/organizations/${orgId}/settings/sso`, { as: admin })).status).toBe(403);
    expect((await t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, { as: admin, body: { provider: 'oidc', issuerUrl: idp.issuer, clientId: 'x' } })).status).toBe(403);
    expect((await t.request('POST', `/api/user/organizations/${orgId}/settings/sso/test`, { as: admin })).status).toBe(403);
    expect((await t.request('DELETE', `/api/user/organizations/${orgId}/settings/sso`, { as: admin })).status).toBe(403);
  });

  it('validates the body: unknown provider, unknown fields, SAML providers, a new connection without secret', async () => {
    const orgId = await createOrg(t, owner, 'Validate SSO', 'validate-sso');
    const put = (body: unknown) => t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, { as: owner, body });
    expect((await put({ provider: 'facebook', issuerUrl: idp.issuer, clientId: 'a', clientSecret: 'b' })).status).toBe(400);
    expect((await put({ provider: 'oidc', issuerUrl: idp.issuer, clientId: 'a', clientSecret: 'b', tokenUrl: 'x' })).status).toBe(400);
    expect((await put({ provider: 'oidc', issuerUrl: 'not a url', clientId: 'a', clientSecret: 'b' })).status).toBe(400);
    const saml = await put({ provider: 'saml', issuerUrl: idp.issuer, clientId: 'a', clientSecret: 'b' });
    expect(saml.status).toBe(400);
    expect(JSON.stringify(saml.body.details)).toMatch(/SAML/);
    const noSecret = await put({ provider: 'oidc', issuerUrl: idp.issuer, clientId: idp.clientId });
    expect(noSecret.status).toBe(400);
    expect(noSecret.body.details.issues[0].path).toBe('clientSecret');
    expect(await t.deps.db.selectFrom('sso_connections').select('id').where('organization_id', '=', orgId).execute()).toHaveLength(0);
  });

  it('the test endpoint lists every check and passes against the real IdP', async () => {
    const { orgId } = await orgWithSso('testable');
    const res = await t.request('POST', `/api/user/organizations/${orgId}/settings/sso/test`, { as: owner });
    expect(res.status).toBe(200);
    expect(res.body.data.success).toBe(true);
    expect(res.body.data.message).toBe('SSO configuration is valid');
    expect(res.body.data.checks.map((c: { name: string; ok: boolean }) => [c.name, c.ok])).toEqual([
      ['discovery', true], ['issuer', true], ['endpoints', true], ['jwks', true], ['signing_key', true], ['mix_up_protection', true],
    ]);
    expect(res.body.data).toMatchObject({ mixUpProtection: 'dedicated', warnings: [{ name: 'shared_redirect_uri', message: expect.stringContaining(CALLBACK) }] });
    expect(await t.deps.db.selectFrom('sessions').select('id').where('auth_method', '=', 'sso').execute()).toHaveLength(0);
  });
});

describe('SP-initiated login against oidc-provider', () => {
  it('first login creates the user just in time, makes them a member, and signs them in', async () => {
    const { orgId, settings } = await orgWithSso('jit-org', { defaultRole: 'admin' });
    const run = await ssoLogin(t, '/api/auth/sso/jit-org/login?returnTo=/dashboard', (u) => idp.login(u, 'alice-sub'));
    // The authorization request: code flow, PKCE S256, state, nonce.
    expect(run.idpUrl.origin + run.idpUrl.pathname).toBe(`${idp.issuer}/auth`);
    const q = run.idpUrl.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('nonce')).toBeTruthy();
    expect(q.get('redirect_uri')).toBe(settings.redirectUri);

    expect(run.callback!.status).toBe(302);
    expect(run.callback!.headers.get('location')).toBe('/dashboard');
    const cookie = run.callback!.cookie!;
    const session = await t.request('GET', '/api/auth/session', { as: { cookie } });
    expect(session.body.data.user).toMatchObject({ email: 'alice@acme.test', name: 'Alice Example' });
    expect(session.body.data.session).toMatchObject({ authMethod: 'sso', connectionId: settings.id, organizationId: orgId });
    expect(session.body.data.memberships).toEqual([{ organizationId: orgId, name: 'jit-org', slug: 'jit-org', role: 'admin' }]);
    const user = await t.deps.db.selectFrom('users').selectAll().where('email', '=', 'alice@acme.test').executeTakeFirstOrThrow();
    expect(user.password_hash).toBeNull();
    expect(user.email_verified).toBe(0); // acme.test is not a verified domain of this organization
  });

  it('a repeat login signs the same user in through the same identity and refreshes its claims', async () => {
    const { orgId } = await orgWithSso('repeat-org');
    const first = await ssoLogin(t, '/api/auth/sso/repeat-org/login', (u) => idp.login(u, 'bob-sub'));
    expect(first.callback!.status).toBe(302);
    idp.users.get('bob-sub')!.name = 'Robert Example';
    const second = await ssoLogin(t, '/api/auth/sso/repeat-org/login', (u) => idp.login(u, 'bob-sub'));
    expect(second.callback!.status).toBe(302);
    expect(second.callback!.headers.get('location')).toBe('/');
    const identities = await t.request('GET', `/api/user/organizations/${orgId}/sso/identities`, { as: owner });
    expect(identities.body.data.items).toHaveLength(1);
    expect(identities.body.data.items[0]).toMatchObject({ subject: 'bob-sub', email: 'bob@acme.test', user: { email: 'bob@acme.test' }, connection: { protocol: 'oidc', active: true } });
    expect(identities.body.data.items[0].claims.name).toBe('Robert Example');
    expect(identities.body.data.items[0].claims).not.toHaveProperty('nonce');
    expect(await t.deps.db.selectFrom('users').select('id').where('email', '=', 'bob@acme.test').execute()).toHaveLength(1);
  });

  it('forwards login_hint to the IdP and honours a trusted absolute returnTo', async () => {
    await orgWithSso('hint-org');
    const run = await ssoLogin(t, `/api/auth/sso/hint-org/login?login_hint=carol%40acme.test&returnTo=${encodeURIComponent('https://app.acme.test/welcome?x=1')}`, (u) => idp.login(u, 'carol-sub'));
    expect(idp.lastLoginHint()).toBe('carol@acme.test');
    expect(run.callback!.headers.get('location')).toBe('https://app.acme.test/welcome?x=1');
  });

  it('refuses a returnTo to an untrusted origin at the start, with 400', async () => {
    await orgWithSso('open-redirect');
    for (const bad of ['https://evil.example/steal', '//evil.example', '/\\evil.example', 'javascript:alert(1)']) {
      const res = await t.request('GET', `/api/auth/sso/open-redirect/login?returnTo=${encodeURIComponent(bad)}`, { headers: { accept: 'application/json' } });
      expect(res.status, bad).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
    }
    expect(await t.deps.db.selectFrom('sso_flows').select('id').where('return_to', 'like', '%evil%').execute()).toHaveLength(0);
  });

  it('the IdP can start the login (initiate login URI): iss must match, target must be trusted', async () => {
    await orgWithSso('initiated');
    const url = new URL(idp.initiateUrl('http://localhost:3000/api/auth/sso/initiated/initiate', { targetLinkUri: '/from-okta', loginHint: 'frank@acme.test' }));
    const run = await ssoLogin(t, url.pathname + url.search, (u) => idp.login(u, 'frank-sub'));
    expect(run.start.status).toBe(302);
    expect(idp.lastLoginHint()).toBe('frank@acme.test');
    expect(run.callback!.status).toBe(302);
    expect(run.callback!.headers.get('location')).toBe('/from-okta');

    const wrongIss = await t.request('GET', `/api/auth/sso/initiated/initiate?iss=${encodeURIComponent('https://evil.example')}`, { headers: { accept: 'application/json' } });
    expect(wrongIss.status).toBe(400);
    expect(wrongIss.body.details.reason).toBe('issuer_mismatch');
    const badTarget = await t.request('GET', `/api/auth/sso/initiated/initiate?iss=${encodeURIComponent(idp.issuer)}&target_link_uri=${encodeURIComponent('https://evil.example')}`, { headers: { accept: 'application/json' } });
    expect(badTarget.body.details.reason).toBe('untrusted_target');
    // The same by form POST, as some IdPs send it (cross-site, so no CSRF check applies).
    const posted = await t.request('POST', '/api/auth/sso/initiated/initiate', { rawBody: new URLSearchParams({ iss: idp.issuer }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' }, origin: idp.issuer });
    expect(posted.status).toBe(302);
    expect(posted.headers.get('location')).toContain(`${idp.issuer}/auth`);
  });

  it('identities are listed and can be unlinked; the next login links again', async () => {
    const { orgId } = await orgWithSso('unlink-org');
    await ssoLogin(t, '/api/auth/sso/unlink-org/login', (u) => idp.login(u, 'grace-sub'));
    const list = await t.request('GET', `/api/user/organizations/${orgId}/sso/identities`, { as: owner });
    const id = list.body.data.items[0].id;
    expect((await t.request('DELETE', `/api/user/organizations/${orgId}/sso/identities/${id}`, { as: owner })).status).toBe(200);
    expect((await t.request('GET', `/api/user/organizations/${orgId}/sso/identities`, { as: owner })).body.data.items).toHaveLength(0);
    expect((await t.request('DELETE', `/api/user/organizations/${orgId}/sso/identities/${id}`, { as: owner })).status).toBe(404);
    // grace now has an account (created by the first login) but no identity: linking needs a verified domain.
    const again = await ssoLogin(t, '/api/auth/sso/unlink-org/login', (u) => idp.login(u, 'grace-sub'), { accept: 'application/json' });
    expect(again.callback!.status).toBe(403);
    expect(again.callback!.body.code).toBe('SSO_ACCOUNT_LINK_REQUIRED');
  });

  it('a disabled connection and a deleted connection refuse to start', async () => {
    const { orgId } = await orgWithSso('disabled-org', { enabled: false });
    const disabled = await t.request('GET', '/api/auth/sso/disabled-org/login', { headers: { accept: 'application/json' } });
    expect(disabled.status).toBe(400);
    expect(disabled.body).toMatchObject({ code: 'SSO_LOGIN_FAILED', details: { reason: 'connection_disabled' } });
    await configureOidc(t, owner, orgId, idp, { enabled: true });
    expect((await t.request('GET', '/api/auth/sso/disabled-org/login')).status).toBe(302);
    expect((await t.request('DELETE', `/api/user/organizations/${orgId}/settings/sso`, { as: owner })).status).toBe(200);
    const deleted = await t.request('GET', '/api/auth/sso/disabled-org/login', { headers: { accept: 'application/json' } });
    expect(deleted.body.details.reason).toBe('sso_not_configured');
    expect((await t.request('GET', '/api/auth/sso/no-such-org/login', { headers: { accept: 'application/json' } })).body.details.reason).toBe('sso_not_configured');
  });

  it('a failed login shows an HTML page an admin can act on, with a request id; JSON for API clients', async () => {
    await orgWithSso('failing-org');
    const run = await ssoLogin(t, '/api/auth/sso/failing-org/login', (u) => idp.login(u, 'alice-sub', { deny: true }));
    expect(run.callback!.status).toBe(400);
    expect(run.callback!.headers.get('content-type')).toMatch(/text\/html/);
    expect(run.callback!.headers.get('content-security-policy')).toMatch(/^default-src 'none'; script-src 'self';.*frame-ancestors 'none'/);
    expect(run.callback!.headers.get('cache-control')).toBe('no-store');
    expect(run.callback!.text).toContain('The IdP refused the sign-in: access_denied');
    expect(run.callback!.text).toContain(run.callback!.headers.get('x-request-id')!);
    expect(run.callback!.text).toContain('idp_error');
    expect(run.callback!.cookie).toBeNull();
    const audit = await t.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'sso.login_failed').execute();
    expect(audit.some((a) => a.metadata?.includes('idp_error'))).toBe(true);
  });
});

describe('redirect URI modes against oidc-provider (SPEC §12)', () => {
  it('shared mode: the request is pushed (PAR) with client authentication, the RFC 9207 iss is checked, and the token request sends the shared redirect URI', async () => {
    const par = await startRealIdp({ redirectUris: [], requirePar: true, users: [{ sub: 'paula-sub', email: 'paula@acme.test', email_verified: true, name: 'Paula' }] });
    try {
      const orgId = await createOrg(t, owner, 'par-org', 'par-org');
      const settings = await configureOidc(t, owner, orgId, par, { redirectUriMode: 'shared' });
      // oidc-provider announces RFC 9207 iss, which is what GET reports first.
      expect(settings).toMatchObject({ redirectUriMode: 'shared', redirectUri: CALLBACK, mixUpProtection: 'iss' });
      const run = await ssoLogin(t, '/api/auth/sso/par-org/login?returnTo=/par', (u) => par.login(u, 'paula-sub'));
      expect([...run.idpUrl.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
      expect(run.idpUrl.searchParams.get('request_uri')).toMatch(/^urn:ietf:params:oauth:request_uri:/);
      expect(run.callbackUrl!.origin + run.callbackUrl!.pathname).toBe(CALLBACK);
      expect(run.callbackUrl!.searchParams.get('iss')).toBe(par.issuer);
      expect(run.callback!.status, run.callback!.text).toBe(302);
      expect(run.callback!.headers.get('location')).toBe('/par');

      // The same answer with the iss of another IdP is refused (a fresh flow: the first was consumed).
      const again = await ssoLogin(t, '/api/auth/sso/par-org/login', async (u) => {
        const back = await par.login(u, 'paula-sub');
        back.searchParams.set('iss', idp.issuer);
        return back;
      }, { accept: 'application/json' });
      expect(again.callback!.body.details.reason).toBe('issuer_mismatch');
    } finally {
      await par.close();
    }
  });

  it('a non-pushed authorization request is refused by an IdP that requires PAR (what makes "par" a mix-up defence)', async () => {
    const par = await startRealIdp({ redirectUris: [CALLBACK], requirePar: true, users: [{ sub: 'quinn-sub', email: 'quinn@acme.test', email_verified: true }] });
    try {
      const made = new URL(`${par.issuer}/auth`);
      made.search = new URLSearchParams({ client_id: par.clientId, response_type: 'code', redirect_uri: CALLBACK, scope: 'openid', state: 'evil-state', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }).toString();
      const back = await par.login(made.href, 'quinn-sub');
      expect(back.searchParams.get('error')).toBe('invalid_request');
      expect(back.searchParams.get('code')).toBeNull();
    } finally {
      await par.close();
    }
  });
});

describe('provisioning rules (SPEC §4.5)', () => {
  it('an existing account on an unverified domain is not linked: SSO_ACCOUNT_LINK_REQUIRED', async () => {
    await orgWithSso('link-unverified');
    await t.signUp('dave@other.test');
    const run = await ssoLogin(t, '/api/auth/sso/link-unverified/login', (u) => idp.login(u, 'dave-sub'), { accept: 'application/json' });
    expect(run.callback!.status).toBe(403);
    expect(run.callback!.body).toMatchObject({ code: 'SSO_ACCOUNT_LINK_REQUIRED', details: { reason: 'account_link_required' } });
    expect(run.callback!.cookie).toBeNull();
  });

  it('an existing account on a domain the organization verified is linked, unless the IdP says the email is unverified', async () => {
    const { orgId } = await orgWithSso('link-verified');
    await verifyDomain(orgId, 'acme.test');
    const existing = await t.signUp('erin@acme.test');
    const unverified = await ssoLogin(t, '/api/auth/sso/link-verified/login', (u) => idp.login(u, 'erin-sub'), { accept: 'application/json' });
    expect(unverified.callback!.body.code).toBe('SSO_ACCOUNT_LINK_REQUIRED'); // email_verified: false
    idp.users.get('erin-sub')!.email_verified = true;
    const linked = await ssoLogin(t, '/api/auth/sso/link-verified/login', (u) => idp.login(u, 'erin-sub'));
    expect(linked.callback!.status).toBe(302);
    const session = await t.request('GET', '/api/auth/session', { as: { cookie: linked.callback!.cookie! } });
    expect(session.body.data.user.id).toBe(existing.id);
  });

  it('a new person whose IdP says email_verified: false is created unverified, even on a verified domain (no squatting on the address)', async () => {
    const { orgId } = await orgWithSso('jit-unverified');
    await verifyDomain(orgId, 'jitv.test');
    idp.users.set('uma-sub', { sub: 'uma-sub', email: 'uma@jitv.test', email_verified: false });
    const run = await ssoLogin(t, '/api/auth/sso/jit-unverified/login', (u) => idp.login(u, 'uma-sub'));
    expect(run.callback!.status).toBe(302);
    expect((await t.deps.db.selectFrom('users').select('email_verified').where('email', '=', 'uma@jitv.test').executeTakeFirstOrThrow()).email_verified).toBe(0);
    idp.users.set('vic-sub', { sub: 'vic-sub', email: 'vic@jitv.test', email_verified: true });
    expect((await ssoLogin(t, '/api/auth/sso/jit-unverified/login', (u) => idp.login(u, 'vic-sub'))).callback!.status).toBe(302);
    expect((await t.deps.db.selectFrom('users').select('email_verified').where('email', '=', 'vic@jitv.test').executeTakeFirstOrThrow()).email_verified).toBe(1);
  });

  it('with JIT off only members and invitees get in: SSO_USER_NOT_PROVISIONED otherwise', async () => {
    const { orgId } = await orgWithSso('no-jit', { allowJitProvisioning: false });
    idp.users.set('jack-sub', { sub: 'jack-sub', email: 'jack@acme.test', email_verified: true });
    const refused = await ssoLogin(t, '/api/auth/sso/no-jit/login', (u) => idp.login(u, 'jack-sub'), { accept: 'application/json' });
    expect(refused.callback!.status).toBe(403);
    expect(refused.callback!.body.code).toBe('SSO_USER_NOT_PROVISIONED');
    idp.users.set('henry-sub', { sub: 'henry-sub', email: 'henry@acme.test', email_verified: true, name: 'Henry' });
    await t.request('POST', `/api/user/organizations/${orgId}/invitations`, { as: owner, body: { email: 'henry@acme.test', role: 'admin' } });
    const invited = await ssoLogin(t, '/api/auth/sso/no-jit/login', (u) => idp.login(u, 'henry-sub'));
    expect(invited.callback!.status).toBe(302);
    const session = await t.request('GET', '/api/auth/session', { as: { cookie: invited.callback!.cookie! } });
    expect(session.body.data.memberships).toEqual([expect.objectContaining({ organizationId: orgId, role: 'admin' })]);
  });

  it('allowedDomains refuses other domains, on every login: SSO_DOMAIN_NOT_ALLOWED', async () => {
    const { orgId } = await orgWithSso('allowed-domains', { allowedDomains: ['acme.test'] });
    const outsider = await ssoLogin(t, '/api/auth/sso/allowed-domains/login', (u) => idp.login(u, 'dave-sub'), { accept: 'application/json' });
    expect(outsider.callback!.status).toBe(403);
    expect(outsider.callback!.body.code).toBe('SSO_DOMAIN_NOT_ALLOWED');
    idp.users.set('ivy-sub', { sub: 'ivy-sub', email: 'ivy@acme.test', email_verified: true });
    expect((await ssoLogin(t, '/api/auth/sso/allowed-domains/login', (u) => idp.login(u, 'ivy-sub'))).callback!.status).toBe(302);
    // The IdP later changes ivy's email to another domain: the existing identity is refused too.
    idp.users.get('ivy-sub')!.email = 'ivy@elsewhere.test';
    const moved = await ssoLogin(t, '/api/auth/sso/allowed-domains/login', (u) => idp.login(u, 'ivy-sub'), { accept: 'application/json' });
    expect(moved.callback!.body.code).toBe('SSO_DOMAIN_NOT_ALLOWED');
    void orgId;
  });

  it('replacing the connection with another IdP keeps the old identities listed as inactive', async () => {
    const { orgId } = await orgWithSso('replace-org');
    idp.users.set('kim-sub', { sub: 'kim-sub', email: 'kim@acme.test', email_verified: true });
    expect((await ssoLogin(t, '/api/auth/sso/replace-org/login', (u) => idp.login(u, 'kim-sub'))).callback!.status).toBe(302);
    const other = await startRealIdp({ redirectUris: [CALLBACK], users: [{ sub: 'kim-sub', email: 'kim@acme.test', email_verified: true }] });
    try {
      await configureOidc(t, owner, orgId, other);
      const list = await t.request('GET', `/api/user/organizations/${orgId}/sso/identities`, { as: owner });
      expect(list.body.data.items).toHaveLength(1);
      expect(list.body.data.items[0].connection.active).toBe(false);
      const old = await t.deps.db.selectFrom('sso_connections').selectAll().where('organization_id', '=', orgId).where('status', '=', 'replaced').executeTakeFirstOrThrow();
      expect(old.secret_enc).toBeNull(); // the old IdP's client secret is erased
      // Same subject at the new IdP is a different identity: it does not inherit the old link.
      const run = await ssoLogin(t, '/api/auth/sso/replace-org/login', (u) => other.login(u, 'kim-sub'), { accept: 'application/json' });
      expect(run.callback!.body.code).toBe('SSO_ACCOUNT_LINK_REQUIRED');
    } finally {
      await other.close();
    }
  });
});

async function verifyDomain(orgId: string, domain: string) {
  const now = new Date().toISOString();
  // The domains API arrives with the domain-verification feature; the table is the contract here.
  await t.deps.db.insertInto('domains').values({
    id: newId(), organization_id: orgId, domain, status: 'verified', verification_token: 'x', verified_at: now, last_checked_at: now,
    auto_join: 0, require_approval: 0, join_role: 'member', created_at: now, updated_at: now,
  }).execute();
}
