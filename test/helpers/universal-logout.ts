import { expect } from 'vitest';
import { newId } from '../../src/ids.js';
import { UNIVERSAL_LOGOUT_PATH } from '../../src/logout/urls.js';
import { BASE_URL, createOrg, type TestGatehouse, type TestUser } from './app.js';
import type { MockOkta } from './okta.js';
import { configureOidc, ssoLogin } from './sso.js';

/** What Okta posts to: the Global Token Revocation endpoint Gatehouse shows as universalLogoutUri. */
export const UL_URL = `${BASE_URL}${UNIVERSAL_LOGOUT_PATH}`;

/** An organization whose OIDC connection is an Okta app on the custom authorization server `/oauth2/default`. */
export async function oktaOrg(t: TestGatehouse, owner: TestUser, okta: MockOkta, slug: string, extra: Record<string, unknown> = {}) {
  const orgId = await createOrg(t, owner, slug, slug);
  const settings = await configureOidc(t, owner, orgId, { issuer: okta.customIssuer, clientId: okta.clientId, clientSecret: okta.clientSecret, addRedirectUri: (u: string) => okta.addRedirectUri(u) }, { provider: 'okta', ...extra });
  return { orgId, slug, settings };
}

/** A browser signs in through the organization's Okta as the Okta user; returns the session cookie. */
export async function oktaSignIn(t: TestGatehouse, okta: MockOkta, slug: string, oktaUserId: string): Promise<{ cookie: string }> {
  const run = await ssoLogin(t, `/api/auth/sso/${slug}/login`, (u) => okta.login(u, oktaUserId), { accept: 'application/json' });
  expect(run.callback?.status, run.callback?.text).toBe(302);
  return { cookie: run.callback!.cookie! };
}

/**
 * A person with a password account of their own (email proven) whom the organization's Okta also
 * signs in: linked while the organization held the email's domain, which it later removed. The
 * password session is from no organization; the SSO session is the organization's.
 */
export async function linkedAccount(t: TestGatehouse, okta: MockOkta, org: { orgId: string; slug: string }, oktaUserId: string, email: string, opts: { keepDomain?: boolean } = {}) {
  const password = await t.signUp(email);
  // The emailed verification link's effect (its own tests cover the link).
  await t.deps.db.updateTable('users').set({ email_verified: 1 }).where('id', '=', password.id).execute();
  t.deps.sessionCache.clear(); // written around the services: the session cache cannot know
  const domain = email.split('@')[1]!;
  await verifyDomain(t, org.orgId, domain);
  okta.users.set(oktaUserId, { id: oktaUserId, email });
  const sso = await oktaSignIn(t, okta, org.slug, oktaUserId);
  if (!opts.keepDomain) await t.deps.db.deleteFrom('domains').where('organization_id', '=', org.orgId).where('domain', '=', domain).execute();
  return { user: password, password: { cookie: password.cookie }, sso };
}

export const isAlive = async (t: TestGatehouse, s: { cookie: string }) => (await t.request('GET', '/api/auth/session', { as: s })).status === 200;

/** A session refresh token (POST /api/auth/token with the cookie). */
export async function refreshTokenOf(t: TestGatehouse, s: { cookie: string }): Promise<string> {
  const res = await t.request('POST', '/api/auth/token', { as: s, body: {} });
  expect(res.status, res.text).toBe(200);
  return res.body.data.refreshToken as string;
}

export const refresh = (t: TestGatehouse, refreshToken: string) => t.request('POST', '/api/auth/token', { body: { grant_type: 'refresh_token', refresh_token: refreshToken }, origin: null });

/** Okta's request: bearer token, JSON body, no cookie, no Origin. */
export function universalLogout(t: TestGatehouse, token: string | null, body: unknown, opts: { ip?: string; authorization?: string } = {}) {
  const headers: Record<string, string> = {};
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  return t.request('POST', UNIVERSAL_LOGOUT_PATH, { ...(token ? { bearer: token } : {}), body, origin: null, headers, ...(opts.ip ? { ip: opts.ip } : {}) });
}

export const byEmail = (email: string) => ({ sub_id: { format: 'email', email } });

/** Mark a domain verified by an organization (as a passed DNS check leaves it). */
export async function verifyDomain(t: TestGatehouse, organizationId: string, domain: string) {
  const now = t.clock.now().toISOString();
  await t.deps.db.insertInto('domains').values({
    id: newId(), organization_id: organizationId, domain, status: 'verified', verification_token: `tok-${newId()}`, verified_at: now, last_checked_at: now,
    auto_join: 0, require_approval: 0, join_role: 'member', created_at: now, updated_at: now,
  }).execute();
}
