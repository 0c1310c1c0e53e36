import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { BACKCHANNEL_LOGOUT_PATH } from '../../src/logout/urls.js';
import type { TestGatehouse, TestResponse } from './app.js';
import type { RealIdp } from './oidc-idp.js';
import { ssoLogin } from './sso.js';

export const BCL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** The claims of a valid logout token from `idp` for its client, at `now` (seconds), plus `extra`. */
export function logoutClaims(idp: Pick<RealIdp, 'issuer' | 'clientId'>, now: Date, extra: Record<string, unknown> = {}): JWTPayload {
  const iat = Math.floor(now.getTime() / 1000);
  return { iss: idp.issuer, aud: idp.clientId, iat, exp: iat + 120, jti: randomUUID(), events: { [BCL_EVENT]: {} }, ...extra };
}

/** Sign `claims` with `key` (RS256 unless said), header `typ: logout+jwt` unless `header` overrides it. */
export async function signLogoutToken(key: JWK, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  const alg = (header.alg as string | undefined) ?? key.alg ?? 'RS256';
  return new SignJWT(claims as JWTPayload).setProtectedHeader({ alg, kid: key.kid, typ: 'logout+jwt', ...header }).sign(await importJWK(key, alg));
}

/** POST the logout token as the IdP does: a form, no cookie, no Origin. */
export function postLogoutToken(t: TestGatehouse, token: string | null, opts: { ip?: string } = {}): Promise<TestResponse> {
  return t.request('POST', BACKCHANNEL_LOGOUT_PATH, {
    rawBody: token === null ? '' : new URLSearchParams({ logout_token: token }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    origin: null,
    ip: opts.ip ?? '127.0.0.9',
  });
}

export interface SsoSession {
  cookie: string;
  sessionId: string;
  userId: string;
  /** The IdP's `sid` recorded on the session (from the ID token). */
  idpSessionId: string | null;
  identityId: string | null;
}

/** One SSO login of `sub` at `idp` through the organization `slug`, in a fresh IdP browser (so a new IdP session) unless one is given. */
export async function ssoSession(t: TestGatehouse, idp: RealIdp, slug: string, sub: string, browser = idp.browser()): Promise<SsoSession> {
  const run = await ssoLogin(t, `/api/auth/sso/${slug}/login`, (url) => idp.login(url, sub, { browser }));
  if (run.callback?.status !== 302 || !run.callback.cookie) throw new Error(`SSO login failed: ${run.callback?.status} ${run.callback?.text}`);
  const cookie = run.callback.cookie;
  const me = await t.request('GET', '/api/auth/session', { as: { cookie } });
  const row = await t.deps.db.selectFrom('sessions').selectAll().where('id', '=', me.body.data.session.id).executeTakeFirstOrThrow();
  return { cookie, sessionId: row.id, userId: row.user_id, idpSessionId: row.idp_session_id, identityId: row.identity_id };
}

/** Whether the session cookie still works. */
export async function isSignedIn(t: TestGatehouse, cookie: string): Promise<boolean> {
  const res = await t.request('GET', '/api/auth/session', { as: { cookie } });
  if (res.status !== 200 && res.status !== 401) throw new Error(`GET /api/auth/session: ${res.status} ${res.text}`);
  return res.status === 200;
}
