import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TestUser } from '../helpers/app.js';
import { startBackchannelRp, type BackchannelRp } from '../helpers/backchannel-rp.js';
import { authorize, Browser, browserOf, makeSuperadmin, registerClient, rpConfig, startOpServer, type OpServer } from '../helpers/op.js';

/**
 * RP-initiated logout 1.0 and Back-Channel Logout 1.0 (SPEC §8). The RP here is a small server on
 * loopback that validates each logout token exactly as §2.6 says an RP must.
 */
const REDIRECT = 'http://127.0.0.1:9/cb';
const BYE = 'http://127.0.0.1:9/bye';
let op: OpServer;
let admin: TestUser;
let rp: BackchannelRp;
let withBackchannel: { clientId: string; clientSecret: string | null };
let plain: { clientId: string; clientSecret: string | null };

beforeAll(async () => {
  op = await startOpServer();
  admin = await op.gh.signUp('root@gatehouse.test');
  await makeSuperadmin(op.gh, admin);
  rp = await startBackchannelRp(op.base, () => withBackchannel.clientId);
  withBackchannel = await registerClient(op.gh, admin, { name: 'BCL app', redirectUris: [REDIRECT], postLogoutRedirectUris: [BYE], backchannelLogoutUri: rp.url, firstParty: true });
  plain = await registerClient(op.gh, admin, { name: 'Plain app', redirectUris: [REDIRECT], postLogoutRedirectUris: [BYE], firstParty: true });
});
afterAll(async () => {
  await op?.close();
  await rp?.close();
});

async function signInto(browser: Browser, client: { clientId: string; clientSecret: string | null }) {
  const config = await rpConfig(op, client.clientId, client.clientSecret);
  const run = await authorize(browser, config, {}, REDIRECT);
  const tokens = await oidc.authorizationCodeGrant(config, run.callback, { pkceCodeVerifier: run.verifier, expectedState: run.state, expectedNonce: run.nonce });
  return { config, tokens };
}

/** The sign-out page's form: its action and hidden fields. */
async function logoutForm(res: Response): Promise<{ action: string; fields: Record<string, string> }> {
  const html = await res.text();
  const action = /<form[^>]*id="op.logoutForm"[^>]*action="([^"]+)"|<form[^>]*action="([^"]+)"[^>]*id="op.logoutForm"/.exec(html);
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) fields[m[1]!] = m[2]!;
  if (!action) throw new Error(`no logout form in: ${html.slice(0, 400)}`);
  return { action: (action[1] ?? action[2])!.replace(/&amp;/g, '&'), fields };
}

describe('RP-initiated logout and back-channel logout', () => {
  it('a valid id_token_hint and a registered post_logout_redirect_uri end the Gatehouse session, redirect with state, and send a valid logout token', async () => {
    const user = await op.gh.signUp('leaving@example.com');
    const browser = browserOf(op, user);
    const a = await signInto(browser, withBackchannel);
    await signInto(browser, plain);
    const sid = a.tokens.claims()!.sid as string;
    const url = oidc.buildEndSessionUrl(a.config, { id_token_hint: a.tokens.id_token!, post_logout_redirect_uri: BYE, state: 'see-you' });
    const page = await browser.fetch(url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const form = await logoutForm(page);
    const done = await browser.fetch(new URL(form.action, op.base), { form: { ...form.fields, logout: 'yes' } });
    expect(done.status).toBe(303);
    const to = new URL(done.headers.get('location')!);
    expect(to.origin + to.pathname).toBe(BYE);
    expect(to.searchParams.get('state')).toBe('see-you');
    // The Gatehouse session is over: its cookie no longer signs in, its tokens no longer refresh.
    expect((await op.gh.request('GET', '/api/auth/session', { as: user })).status).toBe(401);
    await expect(oidc.refreshTokenGrant(a.config, a.tokens.refresh_token ?? 'none')).rejects.toThrow();
    await expect(oidc.fetchUserInfo(a.config, a.tokens.access_token, user.id)).rejects.toThrow();
    // One logout token, to the client that registered a back-channel URI, valid per §2.6, sent
    // by the outbox (logout/outbox.ts) within seconds of the session's end.
    await vi.waitFor(() => expect(rp.received.filter((r) => r.claims?.sid === sid)).toHaveLength(1), { timeout: 5000, interval: 50 });
    const got = rp.received.filter((r) => r.claims?.sid === sid);
    expect(got[0]).toMatchObject({ ok: true, typ: 'logout+jwt', claims: { sub: user.id, sid, aud: withBackchannel.clientId, iss: op.base } });
    const audit = await op.gh.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'session.revoked').where('target_id', '=', sid).execute();
    expect(JSON.parse(audit[0]!.metadata!)).toMatchObject({ reason: 'oidc_rp_logout' });
  });

  it('an unregistered post_logout_redirect_uri gets an error page, never a redirect (open redirect)', async () => {
    const user = await op.gh.signUp('redirect-victim@example.com');
    const browser = browserOf(op, user);
    const a = await signInto(browser, plain);
    const url = oidc.buildEndSessionUrl(a.config, { id_token_hint: a.tokens.id_token!, post_logout_redirect_uri: 'https://evil.example/phish', state: 'x' });
    const res = await browser.fetch(url);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).not.toContain('evil.example/phish"');
    expect((await op.gh.request('GET', '/api/auth/session', { as: user })).status).toBe(200);
  });

  it('staying signed in on the confirmation page keeps the Gatehouse session', async () => {
    const user = await op.gh.signUp('staying@example.com');
    const browser = browserOf(op, user);
    const a = await signInto(browser, plain);
    const page = await browser.fetch(oidc.buildEndSessionUrl(a.config, { id_token_hint: a.tokens.id_token!, post_logout_redirect_uri: BYE }));
    const form = await logoutForm(page);
    await browser.fetch(new URL(form.action, op.base), { form: form.fields });
    expect((await op.gh.request('GET', '/api/auth/session', { as: user })).status).toBe(200);
  });

  it('a logout token is signed by the key ring with typ logout+jwt and lives at most 2 minutes', async () => {
    const ok = rp.received.filter((r) => r.ok);
    expect(ok.length).toBeGreaterThan(0);
    for (const r of ok) expect((r.claims!.exp ?? 0) - (r.claims!.iat ?? 0)).toBeLessThanOrEqual(120);
  });
});
