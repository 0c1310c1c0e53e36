/** Shared set-up of the hosted-page browser tests: a served Gatehouse, the real test IdP, Chromium. */
import { generate } from 'otplib';
import type { Browser } from 'playwright-core';
import { createOrg, type TestUser } from '../helpers/app.js';
import { launchChromium, startServedGatehouse, type GuardedPage, type ServedGatehouse } from '../helpers/browser.js';
import { startRealIdp, type IdpUser, type RealIdp } from '../helpers/oidc-idp.js';
import { seedVerifiedDomain, setSecurity } from '../helpers/policy.js';
import { configureOidc } from '../helpers/sso.js';

export interface World {
  served: ServedGatehouse;
  idp: RealIdp;
  browser: Browser;
  close(): Promise<void>;
}

export async function startWorld(idpUsers: IdpUser[] = []): Promise<World> {
  // Every browser request comes from 127.0.0.1: the per-IP limits are raised so that many tests in a
  // row stay under them; the per-account limits keep their defaults (one test exercises them).
  const served = await startServedGatehouse({
    env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' },
    rateLimits: { 'sign-in:ip': { points: 10_000, duration: 300 }, 'sign-up:ip': { points: 10_000, duration: 3600 }, 'magic-link:ip': { points: 10_000, duration: 900 }, 'password-reset:ip': { points: 10_000, duration: 900 } },
  });
  const idp = await startRealIdp({ redirectUris: [`${served.baseUrl}/api/auth/sso/callback`], users: idpUsers });
  let browser: Browser;
  try {
    browser = await launchChromium();
  } catch (e) {
    await idp.close();
    await served.close();
    throw e;
  }
  return {
    served,
    idp,
    browser,
    async close() {
      await browser.close();
      await idp.close();
      await served.close();
    },
  };
}

/** An organization with an enabled OIDC connection to the test IdP and a verified email domain. */
export async function orgWithSso(world: World, owner: TestUser, input: { name: string; slug: string; domain: string | null; requireSso?: boolean }) {
  const { t } = world.served;
  const orgId = await createOrg(t, owner, input.name, input.slug);
  await configureOidc(t, owner, orgId, world.idp);
  if (input.domain) await seedVerifiedDomain(t, orgId, input.domain);
  if (input.requireSso) {
    const res = await setSecurity(t, orgId, owner, { authRequired: 'sso' });
    if (res.status !== 200) throw new Error(`PUT settings/security failed: ${res.status} ${res.text}`);
  }
  return orgId;
}

/**
 * Log in at the test IdP as its user `sub`: its non-interactive login reads a header. The header
 * goes on every request of the context (the router does not see redirect hops, and the IdP is
 * reached by redirects); Gatehouse ignores it.
 */
export async function loginAtIdpAs(_world: World, g: GuardedPage, sub: string) {
  await g.context.setExtraHTTPHeaders({ 'x-test-login-sub': sub });
}

/** The code an authenticator app shows at the served Gatehouse's (frozen) clock, `steps` steps from now. */
export function totpAt(world: World, secret: string, steps = 0): Promise<string> {
  return generate({ secret, epoch: Math.floor(world.served.t.clock.now().getTime() / 1000) + steps * 30 });
}

/** The session behind the browser's cookie, read through the API. */
export async function browserSession(world: World, g: GuardedPage) {
  const cookie = (await g.context.cookies(world.served.baseUrl)).find((c) => c.name === 'gatehouse_session');
  if (!cookie) return null;
  const res = await world.served.t.request('GET', '/api/auth/session', { as: { cookie: cookie.value } });
  return res.status === 200 ? (res.body.data as { user: { email: string; name: string | null }; session: { authMethod: string; mfa: string; organizationId: string | null } }) : null;
}
