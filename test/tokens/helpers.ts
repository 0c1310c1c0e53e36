import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { TestGatehouse, TestResponse, TestUser } from '../helpers/app.js';

export const TOKEN = '/api/auth/token';
export const REVOKE = '/api/auth/token/revoke';

export interface Pair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  refreshExpiresIn: number;
}

/** POST /api/auth/token with the user's session cookie (trusted Origin, as the browser sends). */
export function issueRaw(t: TestGatehouse, user: { cookie: string }, body: Record<string, unknown> = {}): Promise<TestResponse> {
  return t.request('POST', TOKEN, { as: user, body });
}

export async function issue(t: TestGatehouse, user: TestUser | { cookie: string }, body: Record<string, unknown> = {}): Promise<Pair> {
  const res = await issueRaw(t, user, body);
  if (res.status !== 200) throw new Error(`issue failed: ${res.status} ${res.text}`);
  return res.body.data as Pair;
}

/** The refresh grant as a server-side client sends it: JSON, no cookie, no Origin. */
export function refreshRaw(t: TestGatehouse, refreshToken: string, opts: { ip?: string } = {}): Promise<TestResponse> {
  return t.request('POST', TOKEN, { body: { grant_type: 'refresh_token', refresh_token: refreshToken }, origin: null, ...opts });
}

/** The refresh grant as an RFC 6749 form, no cookie, no Origin. */
export function refreshForm(t: TestGatehouse, refreshToken: string): Promise<TestResponse> {
  return t.request('POST', TOKEN, {
    rawBody: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    origin: null,
  });
}

export const claimsOf = (jwt: string) => decodeJwt(jwt) as Record<string, unknown>;
export const headerOf = (jwt: string) => decodeProtectedHeader(jwt) as Record<string, unknown>;

export async function countRows(t: TestGatehouse) {
  const tokens = await t.deps.db.selectFrom('refresh_tokens').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
  const audit = await t.deps.db.selectFrom('audit_events').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
  return { tokens: Number(tokens.n), audit: Number(audit.n) };
}
