import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, createTestGatehouse, type TestGatehouse } from '../helpers/app.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { setSecurity } from '../helpers/policy.js';
import { CALLBACK, configureOidc, ssoLogin } from '../helpers/sso.js';
import { claimsOf, issue, issueRaw, refreshRaw, type Pair } from './helpers.js';

/**
 * SPEC §8 + §6 with a real OIDC IdP (oidc-provider): an SSO-only organization gives tokens to a
 * session of its own SSO, and only to that; the refresh grant re-checks it.
 */
let t: TestGatehouse;
let idp: RealIdp;

beforeAll(async () => {
  idp = await startRealIdp({ redirectUris: [CALLBACK], users: [{ sub: 'sso-member', email: 'member@ssotok.test', email_verified: true, name: 'Member' }] });
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
});
afterAll(async () => {
  await t.destroy();
  await idp.close();
});

describe('tokens for an SSO-only organization', () => {
  it("a session of the organization's SSO gets a token for it (amr fed); a password session of the same user does not", async () => {
    const owner = await t.signUp('owner@ssotok.example');
    const orgId = await createOrg(t, owner, 'SSO tokens', 'sso-tokens');
    await configureOidc(t, owner, orgId, idp);
    expect((await setSecurity(t, orgId, owner, { authRequired: 'sso' })).status).toBe(200);
    const run = await ssoLogin(t, '/api/auth/sso/sso-tokens/login', (u) => idp.login(u, 'sso-member'));
    expect(run.callback?.status).toBe(302);
    const sso = { cookie: run.callback!.cookie! };
    const pair = await issue(t, sso, { organizationId: orgId });
    expect(claimsOf(pair.accessToken)).toMatchObject({ org_id: orgId, org_slug: 'sso-tokens', org_role: 'member', amr: ['fed'] });
    // The bearer works on the organization's tenant routes, as the SSO session does.
    expect((await t.request('GET', `/api/user/organizations/${orgId}`, { bearer: pair.accessToken })).status).toBe(200);
    const next = await refreshRaw(t, pair.refreshToken);
    expect(next.status).toBe(200);
    expect(claimsOf((next.body.data as Pair).accessToken).org_id).toBe(orgId);
    // The owner's password session: SSO_REQUIRED, for the token as for any tenant request.
    const refused = await issueRaw(t, owner, { organizationId: orgId });
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('SSO_REQUIRED');
    expect(refused.body.details.ssoUrl).toContain('/api/auth/sso/sso-tokens/login');
  });
});
