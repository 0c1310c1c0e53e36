import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOutboundFetch } from '../../src/sso/outbound.js';
import type { OidcMetadata } from '../../src/sso/oidc/metadata.js';
import { offlineAccessParams } from '../../src/sso/idp-tokens/offline-access.js';
import { createIdpTokenVault } from '../../src/sso/idp-tokens/vault.js';
import { createApiKey, createOrg, createTestGatehouse, ENGINE, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { startMockOkta, type MockOkta } from '../helpers/okta.js';
import { configureOidc, ssoLogin } from '../helpers/sso.js';
import { installTripwire, offLoopbackAttempts, uninstallTripwire } from '../helpers/tripwire.js';
import { byEmail, oktaOrg, oktaSignIn, UL_URL, universalLogout } from '../helpers/universal-logout.js';

let t: TestGatehouse;
let idp: RealIdp;
let okta: MockOkta;
let owner: TestUser;

beforeAll(async () => {
  installTripwire();
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true', GATEHOUSE_IDP_TOKEN_REFRESHER: 'true' }, idpTokenSweep: { intervalMs: 200 } });
  idp = await startRealIdp({ redirectUris: [], users: [{ sub: 'edge-1', email: 'edge1@edges.test', email_verified: true }], refreshTokens: {}, accessTokenTtl: 30 });
  okta = await startMockOkta({ now: () => t.clock.now() });
  owner = await t.signUp('owner@edges.test');
});
afterEach(() => {
  expect(offLoopbackAttempts.splice(0), 'connection attempts off loopback').toEqual([]);
});
afterAll(async () => {
  await t.destroy();
  await idp.close();
  await okta.close();
  uninstallTripwire();
});

const rowOf = (id: string) => t.deps.db.selectFrom('sso_idp_tokens').selectAll().where('id', '=', id).executeTakeFirst();

let n = 0;
async function oidcIdentity() {
  const slug = `edge-${randomBytes(3).toString('hex')}`;
  const sub = `edge-${++n}`;
  idp.users.set(sub, { sub, email: `${sub}@edges.test`, email_verified: true });
  const orgId = await createOrg(t, owner, slug, slug);
  await configureOidc(t, owner, orgId, idp, { storeIdpTokens: true });
  const run = await ssoLogin(t, `/api/auth/sso/${slug}/login`, (u) => idp.login(u, sub), { accept: 'application/json' });
  expect(run.callback?.status, run.callback?.text).toBe(302);
  const list = await t.request('GET', `/api/user/organizations/${orgId}/sso/identities`, { as: owner });
  return { orgId, identityId: list.body.data.items[0].id as string };
}

describe(`IdP token vault edges on ${ENGINE}`, () => {
  it('offline access per provider: prompt=consent for oidc and auth0, the scope alone for okta and azure, access_type=offline for google', () => {
    const scopes = ['openid', 'email', 'https://graph.microsoft.com/Mail.Read'];
    expect(offlineAccessParams('oidc', scopes)).toEqual({ scope: 'openid email https://graph.microsoft.com/Mail.Read offline_access', prompt: 'consent' });
    expect(offlineAccessParams('auth0', scopes)).toEqual({ scope: 'openid email https://graph.microsoft.com/Mail.Read offline_access', prompt: 'consent' });
    expect(offlineAccessParams('okta', scopes)).toEqual({ scope: 'openid email https://graph.microsoft.com/Mail.Read offline_access' });
    expect(offlineAccessParams('azure', scopes)).toEqual({ scope: 'openid email https://graph.microsoft.com/Mail.Read offline_access' });
    expect(offlineAccessParams('google', scopes)).toEqual({ access_type: 'offline' });
    expect(offlineAccessParams('okta', ['openid', 'offline_access'])).toEqual({ scope: 'openid offline_access' });
  });

  it('the sweep timer runs by itself (GATEHOUSE_IDP_TOKEN_REFRESHER) and refreshes a token close to expiry', async () => {
    const { identityId } = await oidcIdentity();
    const before = idp.grants.filter((g) => g.grantType === 'refresh_token').length;
    const deadline = Date.now() + 5000;
    while (idp.grants.filter((g) => g.grantType === 'refresh_token').length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(idp.grants.filter((g) => g.grantType === 'refresh_token' && g.ok).length).toBeGreaterThan(before);
    expect((await rowOf(identityId))!.last_refreshed_at).not.toBeNull();
  });

  it('SSRF: a token endpoint that the IdP moved to a private address is refused before any connection; nothing changes', async () => {
    const { identityId } = await oidcIdentity();
    await t.services.idpTokenRefresher.stop();
    const before = (await rowOf(identityId))!;
    const real = await t.services.idpTokens.refresh(identityId); // control: the real IdP refreshes
    expect(real.outcome).toBe('refreshed');
    const moved: OidcMetadata = {
      discover: async () => ({ issuer: idp.issuer, authorization_endpoint: `${idp.issuer}/auth`, token_endpoint: 'https://token.idp-moved.test/token', jwks_uri: `${idp.issuer}/jwks` }),
      jwks: async () => ({ keys: [] }),
    } as unknown as OidcMetadata;
    const guarded = createOutboundFetch({ allowLoopback: false, lookup: async () => [{ address: '10.0.0.7', family: 4 }] });
    const vault = createIdpTokenVault({ ...t.deps, outbound: guarded, oidcMetadata: moved, audit: t.services.audit, organizations: t.services.organizations, connections: t.services.connections });
    const refused = await vault.refresh(identityId);
    expect(refused.outcome).toBe('failed');
    expect(refused.detail).toMatch(/private or reserved address/);
    const after = (await rowOf(identityId))!;
    expect(after.access_token_enc).toBe(real.row!.access_token_enc);
    expect(after.refresh_token_enc).toBe(real.row!.refresh_token_enc);
    expect(after.status).toBe('valid');
    expect(after.generation).toBe(before.generation + 1); // only the control refresh
  });

  it('a full-access API key is refused by the vault itself, whatever path reached it (defence in depth behind the middleware)', async () => {
    const { orgId, identityId } = await oidcIdentity();
    const key = await createApiKey(t, owner, { name: 'full' });
    const apiKey = (await t.deps.db.selectFrom('api_keys').selectAll().where('id', '=', key.id).executeTakeFirst())!;
    const user = (await t.deps.db.selectFrom('users').selectAll().where('id', '=', owner.id).executeTakeFirst())!;
    const ctx = { ip: '127.0.0.1', userAgent: null, requestId: null, principal: { kind: 'api_key' as const, user, apiKey, scopes: null } };
    await expect(t.services.idpTokens.getForApp(ctx, orgId, identityId)).rejects.toMatchObject({ code: 'FORBIDDEN' });
    const scoped = { ...ctx, principal: { ...ctx.principal, scopes: ['sso:idp-tokens'] } };
    expect((await t.services.idpTokens.getForApp(scoped, orgId, identityId)).accessToken).toBeTruthy();
    // And the route variants: a trailing slash still needs the scope.
    const res = await t.request('GET', `/api/user/organizations/${orgId}/sso/identities/${identityId}/idp-token/`, { apiKey: key.key });
    expect([403, 404]).toContain(res.status);
  });

  it('a login that ends after the connection changed (another save meanwhile) does not bring back tokens the save erased', async () => {
    const { orgId, identityId } = await oidcIdentity();
    const row = (await t.deps.db.selectFrom('sso_connections').selectAll().where('organization_id', '=', orgId).where('status', '=', 'active').executeTakeFirst())!;
    const { parseConnection } = await import('../../src/sso/connections/model.js');
    const stale = parseConnection(row);
    await configureOidc(t, owner, orgId, idp, { storeIdpTokens: false }); // the save: erases, bumps the version
    expect(await rowOf(identityId)).toBeUndefined();
    await t.deps.db.transaction().execute((tx) =>
      t.services.idpTokens.storeAtLogin(tx, { identityId, connection: stale, userId: owner.id, tokens: { accessToken: 'late-access-token', refreshToken: 'late-refresh-token', expiresIn: 60, scopes: null }, requestedScopes: ['openid'] }));
    expect(await rowOf(identityId)).toBeUndefined();
  });

  it('an IdP error that echoes the refresh token is stored and logged without it', async () => {
    const { identityId } = await oidcIdentity();
    const row = (await rowOf(identityId))!;
    const plain = t.deps.keyring.decrypt(row.refresh_token_enc!, `sso_idp_tokens.refresh_token_enc:${identityId}`);
    idp.tokenEndpointOverride = { status: 400, body: JSON.stringify({ error: `bad_${plain}_x`, error_description: `token ${encodeURIComponent(plain)} rejected` }) };
    try {
      const r = await t.services.idpTokens.refresh(identityId);
      expect(r.outcome).toBe('failed');
      expect(r.detail).not.toContain(plain.slice(0, 12));
      expect((await rowOf(identityId))!.last_error).not.toContain(plain.slice(0, 12));
    } finally {
      idp.tokenEndpointOverride = null;
    }
  });

  it('Universal Logout of a user erases the IdP tokens kept for the app: the identity shows revoked and the app gets 409', async () => {
    const org = await oktaOrg(t, owner, okta, `ul-${randomBytes(3).toString('hex')}`, { storeIdpTokens: true });
    okta.users.set('00uvault', { id: '00uvault', email: 'vaulted@ul-edges.test' });
    await oktaSignIn(t, okta, org.slug, '00uvault');
    const list = await t.request('GET', `/api/user/organizations/${org.orgId}/sso/identities`, { as: owner });
    const identity = list.body.data.items[0];
    expect(identity.idpTokens.status).toBe('valid');
    expect((await t.request('GET', `/api/user/organizations/${org.orgId}/sso/identities/${identity.id}/idp-token`, { as: owner })).status).toBe(200);
    const res = await universalLogout(t, await okta.universalLogoutToken(UL_URL), byEmail('vaulted@ul-edges.test'));
    expect(res.status, res.text).toBe(204);
    expect(await rowOf(identity.id)).toMatchObject({ status: 'revoked', access_token_enc: null, refresh_token_enc: null });
    const after = await t.request('GET', `/api/user/organizations/${org.orgId}/sso/identities/${identity.id}/idp-token`, { as: owner });
    expect(after.status).toBe(409);
    expect(after.body.details).toEqual({ status: 'revoked' });
    const audit = await t.deps.db.selectFrom('audit_events').select('metadata').where('action', '=', 'sso.universal_logout').where('organization_id', '=', org.orgId).executeTakeFirst();
    expect(JSON.parse(audit!.metadata!), audit!.metadata!).toMatchObject({ idpVaultRevoked: 1 });
  });
});
