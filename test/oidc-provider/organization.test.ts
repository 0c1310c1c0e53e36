import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createOrg, type TestUser } from '../helpers/app.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { authorize, Browser, browserOf, makeSuperadmin, registerClient, rpConfig, startOpServer, type OpServer } from '../helpers/op.js';
import { seedVerifiedDomain, setSecurity } from '../helpers/policy.js';
import { configureOidc } from '../helpers/sso.js';

/**
 * SPEC §8: scope `organization` and the `organization` parameter (or the picker) give org_id,
 * org_slug and org_role, under that organization's sign-in policy — an attacker who belongs to one
 * organization must not get a token that names another, nor walk around an SSO-only policy.
 */
const REDIRECT = 'http://127.0.0.1:9/cb';
let op: OpServer;
let idp: RealIdp;
let client: { clientId: string; clientSecret: string | null };
let config: oidc.Configuration;
let owner: TestUser;
let carol: TestUser;
let acmeId: string;
let corpId: string;

beforeAll(async () => {
  idp = await startRealIdp({ redirectUris: [], users: [{ sub: 'carol-at-idp', email: 'carol@corp.test', email_verified: true, name: 'Carol' }] });
  op = await startOpServer();
  const admin = await op.gh.signUp('root@gatehouse.test');
  await makeSuperadmin(op.gh, admin);
  client = await registerClient(op.gh, admin, { name: 'Tenant app', redirectUris: [REDIRECT], firstParty: true, grantTypes: ['authorization_code', 'refresh_token'] });
  config = await rpConfig(op, client.clientId, client.clientSecret);
  owner = await op.gh.signUp('owner@acme.example');
  acmeId = await createOrg(op.gh, owner, 'Acme', 'acme');
  // Corp: Carol joins with a password, then Corp verifies its domain, connects its IdP and goes SSO-only.
  carol = await op.gh.signUp('carol@corp.test');
  corpId = await createOrg(op.gh, owner, 'Corp', 'corp');
  await addMember(op.gh, owner, corpId, carol, 'admin');
  await addMember(op.gh, owner, acmeId, carol, 'member');
  await seedVerifiedDomain(op.gh, corpId, 'corp.test');
  await configureOidc(op.gh, owner, corpId, idp);
  expect((await setSecurity(op.gh, corpId, owner, { authRequired: 'sso' })).status).toBe(200);
});
afterAll(async () => {
  await op?.close();
  await idp?.close();
});

async function codeFlow(browser: Browser, params: Record<string, string>): Promise<{ tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>; error?: undefined; description?: undefined } | { tokens?: undefined; error: string | null; description: string | null }> {
  const run = await authorize(browser, config, { scope: 'openid email organization offline_access', prompt: 'consent', ...params }, REDIRECT);
  if (run.callback.searchParams.get('error')) return { error: run.callback.searchParams.get('error'), description: run.callback.searchParams.get('error_description') };
  const tokens = await oidc.authorizationCodeGrant(config, run.callback, { pkceCodeVerifier: run.verifier, expectedState: run.state, expectedNonce: run.nonce });
  return { tokens };
}

describe('scope organization', () => {
  it('the organization parameter (slug) gives org_id, org_slug and org_role in the ID token and UserInfo', async () => {
    const out = await codeFlow(browserOf(op, owner), { organization: 'acme' });
    if (!out.tokens) throw new Error(`flow failed: ${out.error}`);
    expect(out.tokens.claims()).toMatchObject({ sub: owner.id, org_id: acmeId, org_slug: 'acme', org_role: 'owner' });
    const info = await oidc.fetchUserInfo(config, out.tokens.access_token, owner.id);
    expect(info).toMatchObject({ org_id: acmeId, org_slug: 'acme', org_role: 'owner' });
    // The refresh keeps the organization of the authorization.
    const again = await oidc.refreshTokenGrant(config, out.tokens.refresh_token!);
    expect(again.claims()).toMatchObject({ org_id: acmeId, org_role: 'owner' });
  });

  it('the organization parameter also takes the id', async () => {
    const out = await codeFlow(browserOf(op, owner), { organization: acmeId });
    if (!out.tokens) throw new Error(`flow failed: ${out.error}`);
    expect(out.tokens.claims()?.org_slug).toBe('acme');
  });

  it('without the parameter, a picker lists only the user\'s organizations and the choice continues the flow', async () => {
    const browser = browserOf(op, owner);
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT, scope: 'openid organization', state: 's1', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    const { url: page, res } = await browser.follow(url, REDIRECT);
    expect(res.status).toBe(200);
    expect(page.pathname).toMatch(/^\/oidc\/interaction\//);
    const html = await res.text();
    expect(html).toContain('Choose an organization');
    expect(html).toContain(acmeId);
    expect(html).toContain(corpId);
    const other = await op.gh.signUp('stranger@else.example');
    const theirs = await createOrg(op.gh, other, 'Elsewhere', 'elsewhere');
    expect(html).not.toContain(theirs);
    const { url: callback } = await browser.follow(`${page.href}/organization`, REDIRECT, { form: { organization: acmeId } });
    expect(callback.searchParams.get('code')).toBeTruthy();
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: 's1' });
    expect(tokens.claims()).toMatchObject({ org_id: acmeId, org_role: 'owner' });
  });

  it('choosing another organization in the picker than the user belongs to gets access_denied', async () => {
    const stranger = await op.gh.signUp('picker-attacker@else.example');
    const browser = browserOf(op, stranger);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT, scope: 'openid organization', state: 's2', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    });
    const { url: page } = await browser.follow(url, REDIRECT);
    const { url: callback } = await browser.follow(`${page.href}/organization`, REDIRECT, { form: { organization: acmeId } });
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('code')).toBeNull();
  });

  it('a non-member asking for an organization gets the error redirect access_denied (same answer for one that does not exist)', async () => {
    const stranger = await op.gh.signUp('mallory@evil.example');
    const denied = await codeFlow(browserOf(op, stranger), { organization: 'acme' });
    expect(denied).toMatchObject({ error: 'access_denied' });
    const missing = await codeFlow(browserOf(op, stranger), { organization: 'no-such-org' });
    expect(missing).toMatchObject({ error: 'access_denied', description: (denied as { description: string }).description });
  });

  it('a superadmin who is not a member gets access_denied too (org_role is a real membership)', async () => {
    const root = await op.gh.signUp('root2@gatehouse.test');
    await makeSuperadmin(op.gh, root);
    expect(await codeFlow(browserOf(op, root), { organization: 'acme' })).toMatchObject({ error: 'access_denied' });
  });

  it("a password session asking for an SSO-only organization is sent through the organization's IdP first", async () => {
    const browser = browserOf(op, carol);
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT, scope: 'openid email organization', organization: 'corp', state: 's3',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    // The flow stops at the IdP: Gatehouse sent the browser to Corp's SSO, returning to the interaction.
    const { url: atIdp } = await browser.follow(url, idp.issuer);
    expect(atIdp.href.startsWith(idp.issuer)).toBe(true);
    const back = await idp.login(atIdp.href, 'carol-at-idp');
    const { url: callback } = await browser.follow(back, REDIRECT);
    expect(callback.searchParams.get('code')).toBeTruthy();
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: 's3' });
    expect(tokens.claims()).toMatchObject({ sub: carol.id, org_id: corpId, org_slug: 'corp', org_role: 'admin' });
    // The app's sid is the SSO session that satisfied the policy, not the password session.
    const sso = await op.gh.deps.db.selectFrom('sessions').selectAll().where('id', '=', String(tokens.claims()?.sid)).executeTakeFirstOrThrow();
    expect(sso.auth_method).toBe('sso');
    expect(sso.organization_id).toBe(corpId);
  });

  it('a member removed from the organization cannot refresh a token that names it', async () => {
    const dave = await op.gh.signUp('dave@acme.example');
    await addMember(op.gh, owner, acmeId, dave, 'member');
    const out = await codeFlow(browserOf(op, dave), { organization: 'acme' });
    if (!out.tokens) throw new Error(`flow failed: ${out.error}`);
    const removed = await op.gh.request('DELETE', `/api/user/organizations/${acmeId}/members/${dave.id}`, { as: owner });
    expect(removed.status).toBeLessThan(300);
    await expect(oidc.refreshTokenGrant(config, out.tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.fetchUserInfo(config, out.tokens.access_token, dave.id)).rejects.toThrow();
  });

  it('an organization that requires MFA refuses a session without it (access_denied, saying why)', async () => {
    const erin = await op.gh.signUp('erin@acme.example');
    const strict = await createOrg(op.gh, owner, 'Strict', 'strict');
    await addMember(op.gh, owner, strict, erin, 'member');
    const raised = await setSecurity(op.gh, strict, owner, { authRequired: 'any', requireMfa: true });
    expect(raised.status, raised.text).toBe(200);
    const out = await codeFlow(browserOf(op, erin), { organization: 'strict' });
    expect(out).toMatchObject({ error: 'access_denied' });
    expect((out as { description: string }).description).toMatch(/multi-factor/);
  });
});
