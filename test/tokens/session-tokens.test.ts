import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DAY, MINUTE } from '../../src/clock.js';
import { addMember, createApiKey, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { markEmailVerified, seedConfirmedFactor } from '../helpers/policy.js';
import { claimsOf, countRows, headerOf, issue, issueRaw, refreshForm, refreshRaw, REVOKE, TOKEN, type Pair } from './helpers.js';

/** SPEC §8 session tokens: issue, refresh rotation and reuse, revocation, and their ends. */
let t: TestGatehouse;
let n = 0;
const fresh = (tag: string) => t.signUp(`${tag}-${++n}@tokens.example`);

beforeAll(async () => {
  t = await createTestGatehouse({ rateLimits: { 'token:ip': { points: 100_000, duration: 60 } } });
});
afterAll(async () => {
  await t.destroy();
});

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const sessionOf = async (user: TestUser) => (await t.request('GET', '/api/auth/session', { as: user })).body.data.session.id as string;
const setOrgPolicy = (orgId: string, patch: { auth_required?: 'any' | 'mfa' | 'sso'; require_mfa?: 0 | 1 }) =>
  t.deps.db.updateTable('organizations').set(patch).where('id', '=', orgId).execute();

describe('issuing with a session', () => {
  it('answers the pair in the SPEC shape, with the SPEC claims and an at+jwt ES256 header whose kid is published', async () => {
    const user = await fresh('shape');
    const res = await issueRaw(t, user);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const pair = res.body.data as Pair;
    expect(Object.keys(pair).sort()).toEqual(['accessToken', 'expiresIn', 'refreshExpiresIn', 'refreshToken', 'tokenType']);
    expect(pair.tokenType).toBe('Bearer');
    expect(pair.expiresIn).toBe(600);
    expect(pair.refreshExpiresIn).toBe(30 * 24 * 3600);
    expect(pair.refreshToken).toMatch(/^grt_[A-Za-z0-9_-]{43}$/); // 32 random bytes = 256 bits
    const header = headerOf(pair.accessToken);
    expect(header.typ).toBe('at+jwt');
    expect(header.alg).toBe('ES256');
    const jwks = (await t.request('GET', '/.well-known/jwks.json')).body as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).toContain(header.kid);
    const claims = claimsOf(pair.accessToken);
    const sid = await sessionOf(user);
    const session = await t.deps.db.selectFrom('sessions').selectAll().where('id', '=', sid).executeTakeFirstOrThrow();
    const now = Math.floor(t.clock.now().getTime() / 1000);
    expect(Object.keys(claims).sort()).toEqual(['amr', 'aud', 'auth_time', 'email', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub']);
    expect(claims).toMatchObject({
      iss: 'http://localhost:3000', aud: 'http://localhost:3000', sub: user.id, sid, email: user.email, amr: ['pwd'],
      iat: now, exp: now + 600, auth_time: Math.floor(Date.parse(session.created_at) / 1000),
    });
    expect(typeof claims.jti).toBe('string');
  });

  it('stores only the SHA-256 of the refresh token, bound to the session and user', async () => {
    const user = await fresh('hash');
    const pair = await issue(t, user);
    const rows = await t.deps.db.selectFrom('refresh_tokens').selectAll().where('user_id', '=', user.id).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token_hash).toBe(sha256(pair.refreshToken));
    expect(JSON.stringify(rows)).not.toContain(pair.refreshToken.slice(4));
    expect(rows[0]!.session_id).toBe(await sessionOf(user));
    expect(rows[0]!.organization_id).toBeNull();
  });

  it('with an organization adds org_id, org_slug and org_role', async () => {
    const owner = await fresh('org-owner');
    const member = await fresh('org-member');
    const orgId = await createOrg(t, owner, 'Claims', `claims-${n}`);
    await addMember(t, owner, orgId, member, 'admin');
    const claims = claimsOf((await issue(t, member, { organizationId: orgId })).accessToken);
    expect(claims).toMatchObject({ org_id: orgId, org_slug: `claims-${n}`, org_role: 'admin' });
  });

  it('a non-member cannot get a token for an organization (tenant isolation: 404 as for every tenant request)', async () => {
    const owner = await fresh('iso-owner');
    const outsider = await fresh('iso-outsider');
    const orgId = await createOrg(t, owner, 'Isolated', `iso-${n}`);
    const before = await countRows(t);
    const res = await issueRaw(t, outsider, { organizationId: orgId });
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('NOT_FOUND');
    // An organization that does not exist answers the same.
    expect((await issueRaw(t, outsider, { organizationId: '01HZ3K5R4X9Y2V6QF8TJ7W0CDN' })).status).toBe(404);
    expect(await countRows(t)).toEqual(before);
  });

  it('a password session cannot get a token for an SSO-only organization (403 SSO_REQUIRED with ssoUrl)', async () => {
    const owner = await fresh('sso-owner');
    const orgId = await createOrg(t, owner, 'SSO only', `sso-only-${n}`);
    await setOrgPolicy(orgId, { auth_required: 'sso' });
    const res = await issueRaw(t, owner, { organizationId: orgId });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('SSO_REQUIRED');
    expect(res.body.details.ssoUrl).toBe(`/api/auth/sso/sso-only-${n}/login?login_hint=${encodeURIComponent(owner.email)}`);
    // Without an organization the session still gets a token: the policy applies per tenant request.
    expect((await issueRaw(t, owner)).status).toBe(200);
  });

  it('an MFA organization refuses a session without a completed second factor (MFA_ENROLLMENT_REQUIRED, then MFA_REQUIRED)', async () => {
    const owner = await fresh('mfa-owner');
    const orgId = await createOrg(t, owner, 'MFA org', `mfa-${n}`);
    await setOrgPolicy(orgId, { require_mfa: 1 });
    expect((await issueRaw(t, owner, { organizationId: orgId })).body.code).toBe('MFA_ENROLLMENT_REQUIRED');
    await seedConfirmedFactor(t, owner.id);
    expect((await issueRaw(t, owner, { organizationId: orgId })).body.code).toBe('MFA_REQUIRED');
    // A session whose MFA is complete gets it, and amr says so.
    await t.deps.db.updateTable('sessions').set({ mfa_state: 'complete' }).where('id', '=', await sessionOf(owner)).execute();
    t.deps.sessionCache.clear(); // written around the services: the session cache cannot know
    const pair = await issue(t, owner, { organizationId: orgId });
    expect(claimsOf(pair.accessToken).amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  it('a session with MFA pending gets nothing (403 MFA_REQUIRED)', async () => {
    const user = await fresh('pending');
    await seedConfirmedFactor(t, user.id);
    const signIn = await t.request('POST', '/api/auth/sign-in/email', { body: { email: user.email, password: user.password } });
    expect(signIn.body.data.session.mfa).toBe('pending');
    const before = await countRows(t);
    const res = await issueRaw(t, { cookie: signIn.cookie! });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('MFA_REQUIRED');
    expect((await countRows(t)).tokens).toBe(before.tokens);
    // The refresh grant does not act with the cookie: a browser still carrying the pending
    // session's cookie can refresh another session's token.
    const other = await issue(t, user);
    const refreshed = await t.request('POST', TOKEN, { as: { cookie: signIn.cookie! }, body: { grant_type: 'refresh_token', refresh_token: other.refreshToken } });
    expect(refreshed.status).toBe(200);
    expect(claimsOf(refreshed.body.data.accessToken).sid).toBe(claimsOf(other.accessToken).sid);
  });

  it('without a session: 401; with an API key: 403 (tokens are for sessions)', async () => {
    const none = await t.request('POST', TOKEN, { body: {} });
    expect(none.status).toBe(401);
    const user = await fresh('apikey');
    const { key } = await createApiKey(t, user);
    const res = await t.request('POST', TOKEN, { apiKey: key, body: {} });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('FORBIDDEN');
  });

  it('an access token cannot mint a new pair (Bearer is not a session cookie)', async () => {
    const user = await fresh('bearer-mint');
    const pair = await issue(t, user);
    const res = await t.request('POST', TOKEN, { bearer: pair.accessToken, body: {}, origin: null });
    expect(res.status).toBe(403);
  });

  it('a cross-site cookie POST to /api/auth/token is refused (CSRF)', async () => {
    const user = await fresh('csrf');
    const before = await countRows(t);
    for (const origin of ['https://evil.example', null]) {
      const res = await t.request('POST', TOKEN, { as: user, body: {}, origin });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('CSRF_REJECTED');
    }
    // A cross-site form post (what a hostile page can send without CORS) is refused too.
    const form = await t.request('POST', TOKEN, { as: user, rawBody: 'organizationId=x', headers: { 'content-type': 'application/x-www-form-urlencoded' }, origin: 'https://evil.example' });
    expect(form.status).toBe(403);
    expect(await countRows(t)).toEqual(before);
  });

  it('bad input answers 400 with no stack', async () => {
    const user = await fresh('bad');
    const cases: Array<{ body?: unknown; rawBody?: string; headers?: Record<string, string>; as?: TestUser | null }> = [
      { body: { organizationId: 'not-a-ulid' }, as: user },
      { body: { extra: 1 }, as: user },
      { body: { grant_type: 'password', username: 'a', password: 'b' } },
      { body: { grant_type: 'refresh_token' } },
      { body: { grant_type: 'refresh_token', refresh_token: 42 } },
      { body: { grant_type: 'refresh_token', refresh_token: 'grt_x', scope: 'all' } },
      { rawBody: '{"grant_type": "refresh_token", ', headers: { 'content-type': 'application/json' } },
      { rawBody: 'grant_type=refresh_token', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      { rawBody: 'grant_type=refresh_token&refresh_token=a&refresh_token=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
      { body: ['grant_type'] , as: user },
    ];
    for (const c of cases) {
      const res = await t.request('POST', TOKEN, { ...c, as: c.as ?? null, origin: c.as ? undefined : null });
      expect(res.status, JSON.stringify(c)).toBe(400);
      expect(res.body.code, JSON.stringify(c)).toBe('VALIDATION_FAILED');
      expect(res.text).not.toMatch(/\bat .+\.(ts|js):\d+|node_modules|Error:/);
    }
    // Issuing with a cookie is JSON only.
    const form = await t.request('POST', TOKEN, { as: user, rawBody: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
    const xml = await t.request('POST', TOKEN, { rawBody: '<x/>', headers: { 'content-type': 'text/xml' }, origin: null });
    expect(xml.status).toBe(415);
  });

  it('nothing is written when issuing fails (signing fails, or the audit write fails)', async () => {
    const user = await fresh('atomic');
    const before = await countRows(t);
    const sign = vi.spyOn(t.services.signingKeys, 'sign').mockRejectedValueOnce(new Error('HSM unplugged'));
    const res = await issueRaw(t, user);
    expect(res.status).toBe(500);
    expect(res.text).not.toContain('HSM unplugged');
    sign.mockRestore();
    const record = vi.spyOn(t.services.audit, 'record').mockRejectedValueOnce(new Error('disk full'));
    expect((await issueRaw(t, user)).status).toBe(500);
    record.mockRestore();
    expect(await countRows(t)).toEqual(before);
  });

  it('the token endpoints are rate-limited per IP (429 RATE_LIMITED with Retry-After)', async () => {
    const t2 = await createTestGatehouse({ rateLimits: { 'token:ip': { points: 3, duration: 60 } } });
    try {
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await refreshRaw(t2, 'grt_unknown', { ip: '192.0.2.7' }));
      expect(answers.map((a) => a.status)).toEqual([400, 400, 400, 429]);
      expect(answers[3]!.headers.get('retry-after')).toMatch(/^\d+$/);
      // Another address has its own budget; revocation counts against the same one.
      expect((await refreshRaw(t2, 'grt_unknown', { ip: '192.0.2.8' })).status).toBe(400);
      expect((await t2.request('POST', REVOKE, { body: { token: 'x' }, origin: null, ip: '192.0.2.7' })).status).toBe(429);
    } finally {
      await t2.destroy();
    }
  });
});

describe('the refresh grant', () => {
  it('the refresh grant needs neither cookie nor Origin, as JSON and as a form', async () => {
    const user = await fresh('grant');
    const first = await issue(t, user);
    const json = await refreshRaw(t, first.refreshToken);
    expect(json.status).toBe(200);
    expect(json.headers.get('cache-control')).toBe('no-store');
    const second = json.body.data as Pair;
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(second.tokenType).toBe('Bearer');
    expect(claimsOf(second.accessToken)).toMatchObject({ sub: user.id, sid: await sessionOf(user) });
    const form = await refreshForm(t, second.refreshToken);
    expect(form.status).toBe(200);
    // From a foreign origin (an app on its own domain), still no CSRF refusal: the token is the credential.
    const third = form.body.data as Pair;
    const foreign = await t.request('POST', TOKEN, { body: { grant_type: 'refresh_token', refresh_token: third.refreshToken }, origin: 'https://app.other.example' });
    expect(foreign.status).toBe(200);
    // Every rotation is one family; the spent ones are marked.
    const rows = await t.deps.db.selectFrom('refresh_tokens').selectAll().where('user_id', '=', user.id).orderBy('created_at').orderBy('id').execute();
    expect(new Set(rows.map((r) => r.family_id)).size).toBe(1);
    expect(rows.filter((r) => r.used_at !== null)).toHaveLength(3);
  });

  it('reuse of a spent refresh token revokes the family and ends the session', async () => {
    const user = await fresh('reuse');
    const sid = await sessionOf(user);
    const first = await issue(t, user);
    const second = (await refreshRaw(t, first.refreshToken)).body.data as Pair;
    // The thief replays the first token.
    const replay = await refreshRaw(t, first.refreshToken);
    expect(replay.status).toBe(400);
    expect(replay.body.code).toBe('INVALID_TOKEN');
    // The legitimate holder's newer token is dead too, and so is the session (cookie and bearer).
    expect((await refreshRaw(t, second.refreshToken)).body.code).toBe('INVALID_TOKEN');
    expect((await t.request('GET', '/api/auth/session', { as: user })).status).toBe(401);
    expect((await t.request('GET', '/api/auth/session', { bearer: second.accessToken })).status).toBe(401);
    const rows = await t.deps.db.selectFrom('refresh_tokens').select('revoked_at').where('session_id', '=', sid).execute();
    expect(rows.every((r) => r.revoked_at !== null)).toBe(true);
    const session = await t.deps.db.selectFrom('sessions').select('revoked_at').where('id', '=', sid).executeTakeFirstOrThrow();
    expect(session.revoked_at).not.toBeNull();
    const audit = await t.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'session_token.reuse_detected').where('target_id', '=', sid).execute();
    expect(audit).toHaveLength(1);
    expect(JSON.parse(audit[0]!.metadata!)).toMatchObject({ sessionEnded: true, revokedCount: 2 });
  });

  it('two concurrent refreshes of one token: exactly one succeeds', async () => {
    const user = await fresh('race');
    const pair = await issue(t, user);
    const answers = await Promise.all(Array.from({ length: 5 }, () => refreshRaw(t, pair.refreshToken)));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([200, 400, 400, 400, 400]);
    // The losers are reuse: the winner's new token does not outlive the race, nor does the session.
    const winner = answers.find((a) => a.status === 200)!.body.data as Pair;
    expect((await refreshRaw(t, winner.refreshToken)).status).toBe(400);
    expect((await t.request('GET', '/api/auth/session', { as: user })).status).toBe(401);
    const spent = await t.deps.db.selectFrom('refresh_tokens').select('id').where('token_hash', '=', sha256(pair.refreshToken)).where('used_at', 'is not', null).execute();
    expect(spent).toHaveLength(1);
  });

  it('two concurrent refreshes of one token that both pass every read: the conditional spend lets exactly one through', async () => {
    const user = await fresh('race-barrier');
    const pair = await issue(t, user);
    // Hold each refresh after its reads (token row, session) until both got there, so both race on the spend.
    const real = t.services.sessions.authenticateById.bind(t.services.sessions);
    let arrived = 0;
    let release!: () => void;
    const both = new Promise<void>((r) => (release = r));
    const spy = vi.spyOn(t.services.sessions, 'authenticateById').mockImplementation(async (id) => {
      const found = await real(id);
      if (++arrived === 2) release();
      await both;
      return found;
    });
    try {
      const answers = await Promise.all([refreshRaw(t, pair.refreshToken), refreshRaw(t, pair.refreshToken)]);
      expect(arrived).toBe(2);
      expect(answers.map((a) => a.status).sort()).toEqual([200, 400]);
    } finally {
      spy.mockRestore();
    }
    const audit = await t.deps.db.selectFrom('audit_events').select('id').where('action', '=', 'session_token.reuse_detected').where('target_id', '=', await t.deps.db.selectFrom('refresh_tokens').select('session_id').where('user_id', '=', user.id).executeTakeFirstOrThrow().then((r) => r.session_id)).execute();
    expect(audit).toHaveLength(1);
    expect((await t.request('GET', '/api/auth/session', { as: user })).status).toBe(401);
  });

  it('unknown, malformed and expired refresh tokens are refused (400 INVALID_TOKEN)', async () => {
    for (const token of ['grt_' + 'A'.repeat(43), 'gs_notarefreshtoken', 'grt_' + 'x'.repeat(200), 'eyJhbGciOiJub25lIn0.e30.']) {
      const res = await refreshRaw(t, token);
      expect(res.status, token).toBe(400);
      expect(res.body.code).toBe('INVALID_TOKEN');
    }
    const t2 = await createTestGatehouse({ env: { GATEHOUSE_REFRESH_TOKEN_TTL: '1h' } });
    try {
      const user = await t2.signUp('expiry@tokens.example');
      const pair = (await t2.request('POST', TOKEN, { as: user, body: {} })).body.data as Pair;
      expect(pair.refreshExpiresIn).toBe(3600);
      t2.clock.advance(3600 * 1000);
      expect((await refreshRaw(t2, pair.refreshToken)).body.code).toBe('INVALID_TOKEN');
    } finally {
      await t2.destroy();
    }
  });

  it('a refresh token never outlives its session: its lifetime stops at the session absolute expiry', async () => {
    const t2 = await createTestGatehouse({ env: { GATEHOUSE_REFRESH_TOKEN_TTL: '90d' } });
    try {
      const user = await t2.signUp('cap@tokens.example');
      const pair = (await t2.request('POST', TOKEN, { as: user, body: {} })).body.data as Pair;
      expect(pair.refreshExpiresIn).toBe(30 * 24 * 3600);
      // Keep the session from idling out, then cross its absolute expiry.
      let current = pair;
      for (let day = 6; day <= 30; day += 6) {
        t2.clock.advance(6 * DAY);
        const res = await refreshRaw(t2, current.refreshToken);
        if (day < 30) {
          expect(res.status, `day ${day}`).toBe(200);
          current = res.body.data as Pair;
          expect(current.refreshExpiresIn).toBe((30 - day) * 24 * 3600);
        } else {
          expect(res.body.code).toBe('INVALID_TOKEN');
        }
      }
    } finally {
      await t2.destroy();
    }
  });

  it('a refresh slides the session idle expiry like a cookie request', async () => {
    const user = await fresh('slide');
    let pair = await issue(t, user);
    // 6 days, refresh, 6 more days: 12 days after the last cookie use, the session is still live.
    t.clock.advance(6 * DAY);
    pair = (await refreshRaw(t, pair.refreshToken)).body.data as Pair;
    t.clock.advance(6 * DAY);
    expect((await refreshRaw(t, pair.refreshToken)).status).toBe(200);
    expect((await t.request('GET', '/api/auth/session', { as: user })).status).toBe(200);
    // Idle past 7 days: the session ends, and its tokens with it.
    const last = (await refreshRaw(t, (await issue(t, user)).refreshToken)).body.data as Pair;
    t.clock.advance(7 * DAY + MINUTE);
    expect((await refreshRaw(t, last.refreshToken)).body.code).toBe('INVALID_TOKEN');
  });

  it('the new pair keeps the organization of the family', async () => {
    const owner = await fresh('keep-org');
    const orgId = await createOrg(t, owner, 'Keep', `keep-${n}`);
    const pair = await issue(t, owner, { organizationId: orgId });
    const next = (await refreshRaw(t, pair.refreshToken)).body.data as Pair;
    expect(claimsOf(next.accessToken)).toMatchObject({ org_id: orgId, org_slug: `keep-${n}`, org_role: 'owner' });
  });

  it('a refresh re-checks membership: a user removed from the organization gets INVALID_TOKEN and the family is revoked', async () => {
    const owner = await fresh('rm-owner');
    const member = await fresh('rm-member');
    const orgId = await createOrg(t, owner, 'Removal', `removal-${n}`);
    await addMember(t, owner, orgId, member, 'member');
    const pair = await issue(t, member, { organizationId: orgId });
    const del = await t.request('DELETE', `/api/user/organizations/${orgId}/members/${member.id}`, { as: owner });
    expect(del.status).toBe(200);
    const res = await refreshRaw(t, pair.refreshToken);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_TOKEN');
    // Re-adding the member does not revive the old family.
    await addMember(t, owner, orgId, member, 'member');
    expect((await refreshRaw(t, pair.refreshToken)).body.code).toBe('INVALID_TOKEN');
    // The session itself is untouched.
    expect((await t.request('GET', '/api/auth/session', { as: member })).status).toBe(200);
  });

  it('a refresh re-checks the policy: an organization raised to SSO-only since answers the §6 error and spends nothing', async () => {
    const owner = await fresh('raise-owner');
    const orgId = await createOrg(t, owner, 'Raised', `raised-${n}`);
    const pair = await issue(t, owner, { organizationId: orgId });
    await setOrgPolicy(orgId, { auth_required: 'sso' });
    const res = await refreshRaw(t, pair.refreshToken);
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('SSO_REQUIRED');
    expect(res.body.details.ssoUrl).toContain(`/api/auth/sso/raised-${n}/login`);
    const row = await t.deps.db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', sha256(pair.refreshToken)).executeTakeFirstOrThrow();
    expect(row.used_at).toBeNull();
    // Lowered again, the same token works (it was never spent).
    await setOrgPolicy(orgId, { auth_required: 'any' });
    expect((await refreshRaw(t, pair.refreshToken)).status).toBe(200);
  });
});

describe('refresh tokens end with their session', () => {
  it('a refresh token of a signed-out session is refused', async () => {
    const user = await fresh('signout');
    const pair = await issue(t, user);
    expect((await t.request('POST', '/api/auth/sign-out', { as: user })).status).toBe(200);
    const res = await refreshRaw(t, pair.refreshToken);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('INVALID_TOKEN');
  });

  it('a refresh token of a session revoked from the sessions list (DELETE /api/user/sessions/{id}) is refused', async () => {
    const user = await fresh('listrevoke');
    const pair = await issue(t, user);
    const other = await t.request('POST', '/api/auth/sign-in/email', { body: { email: user.email, password: user.password } });
    const sid = await sessionOf(user);
    expect((await t.request('DELETE', `/api/user/sessions/${sid}`, { as: { cookie: other.cookie! } })).status).toBe(200);
    expect((await refreshRaw(t, pair.refreshToken)).body.code).toBe('INVALID_TOKEN');
  });

  async function resetPassword(user: TestUser) {
    expect((await t.request('POST', '/api/auth/password/forgot', { body: { email: user.email }, ip: '198.51.100.9' })).status).toBe(200);
    await t.services.emailLinks.idle();
    const mail = t.mails.findLast((m) => m.to === user.email);
    const token = mail && /\/reset-password\?token=([A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
    expect(token).toBeTruthy();
    expect((await t.request('POST', '/api/auth/password/reset', { body: { token, password: 'a brand new password' }, ip: '198.51.100.9' })).status).toBe(200);
  }

  it('a refresh token of a session ended by a password reset is refused (verified account: sessions revoked)', async () => {
    const user = await fresh('reset');
    await markEmailVerified(t, user.id);
    const pair = await issue(t, user);
    await resetPassword(user);
    expect((await refreshRaw(t, pair.refreshToken)).body.code).toBe('INVALID_TOKEN');
  });

  it('a refresh token of an unverified account claimed by a password reset is gone with its deleted session', async () => {
    const user = await fresh('claim');
    const pair = await issue(t, user);
    await resetPassword(user);
    expect((await refreshRaw(t, pair.refreshToken)).body.code).toBe('INVALID_TOKEN');
    expect(await t.deps.db.selectFrom('refresh_tokens').select('id').where('user_id', '=', user.id).execute()).toHaveLength(0);
  });
});

describe('revocation (RFC 7009)', () => {
  it('revoking a refresh token revokes its whole family; 200 whatever the token, as JSON or a form', async () => {
    const user = await fresh('revoke');
    const first = await issue(t, user);
    const second = (await refreshRaw(t, first.refreshToken)).body.data as Pair;
    const res = await t.request('POST', REVOKE, { body: { token: first.refreshToken }, origin: null });
    expect(res.status).toBe(200);
    expect((await refreshRaw(t, second.refreshToken)).body.code).toBe('INVALID_TOKEN');
    // Revoking is not reuse: the session lives on.
    expect((await t.request('GET', '/api/auth/session', { as: user })).status).toBe(200);
    const audit = await t.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'session_token.revoked').where('actor_user_id', 'is', null).orderBy('id', 'desc').executeTakeFirstOrThrow();
    expect(JSON.parse(audit.metadata!)).toMatchObject({ reason: 'revocation_request', revokedCount: 2 });
    for (const token of ['grt_unknown', 'garbage', second.accessToken, first.refreshToken]) {
      const again = await t.request('POST', REVOKE, { rawBody: new URLSearchParams({ token }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' }, origin: 'https://app.other.example' });
      expect(again.status, token).toBe(200);
    }
    expect((await t.request('POST', REVOKE, { body: { nope: 1 }, origin: null })).status).toBe(400);
  });
});

describe('routes', () => {
  it('the OpenAPI document lists the token endpoints', async () => {
    const doc = (await t.request('GET', '/api/openapi.json')).body;
    expect(doc.paths[TOKEN].post.requestBody.content).toHaveProperty('application/x-www-form-urlencoded');
    expect(doc.paths[REVOKE].post).toBeTruthy();
  });
});
