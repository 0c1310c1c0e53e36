import { SsoLoginError } from '../../src/sso/errors.js';
import type { TestGatehouse, TestResponse, TestUser } from './app.js';

/** The shared redirect URI (redirectUriMode "shared") of the test Gatehouse. */
export const CALLBACK = 'http://localhost:3000/api/auth/sso/callback';
/** An organization's dedicated redirect URI (redirectUriMode "dedicated", the default) on the test Gatehouse. */
export const dedicatedCallback = (orgId: string, base = 'http://localhost:3000') => `${base}/api/auth/sso/callback/${orgId}`;

/**
 * Configure the organization's OIDC connection as its owner; fails the test on anything but 200.
 * Then registers the redirect URI Gatehouse shows at the IdP, as the admin does in its console.
 */
export async function configureOidc(
  t: TestGatehouse,
  owner: TestUser,
  orgId: string,
  idp: { issuer: string; clientId: string; clientSecret: string; addRedirectUri?: (uri: string) => unknown },
  extra: Record<string, unknown> = {},
) {
  const res = await t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, {
    as: owner,
    body: { provider: 'oidc', issuerUrl: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, ...extra },
  });
  if (res.status !== 200) throw new Error(`PUT settings/sso failed: ${res.status} ${res.text}`);
  await idp.addRedirectUri?.(res.body.data.redirectUri);
  return res.body.data;
}

export interface SsoRun {
  start: TestResponse;
  idpUrl: URL;
  callbackUrl: URL | null;
  callback: TestResponse | null;
  browser: Record<string, string>;
}

/**
 * Drive one browser through an SP-initiated login: GET /login → the IdP (via `idpLogin`, which
 * returns the redirect back) → GET the callback with the browser's cookies.
 */
export async function ssoLogin(
  t: TestGatehouse,
  startPath: string,
  idpLogin: (authorizationUrl: string) => Promise<URL> | URL,
  opts: { accept?: string; browser?: Record<string, string> } = {},
): Promise<SsoRun> {
  const headers = opts.accept ? { accept: opts.accept } : undefined;
  const start = await t.request('GET', startPath, { cookies: opts.browser ?? {}, ...(headers ? { headers } : {}) });
  if (start.status !== 302) return { start, idpUrl: new URL('about:blank'), callbackUrl: null, callback: null, browser: {} };
  const browser = { ...opts.browser, ...start.cookies };
  const idpUrl = new URL(start.headers.get('location')!);
  const callbackUrl = await idpLogin(idpUrl.toString());
  const callback = await t.request('GET', callbackUrl.pathname + callbackUrl.search, { cookies: browser, ...(headers ? { headers } : {}) });
  return { start, idpUrl, callbackUrl, callback, browser };
}

/** The `details.reason` a check throws (an SsoLoginError), or 'passed': for tests of one check at a time. */
export function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof SsoLoginError) return e.reason;
    throw e;
  }
  return 'passed';
}
