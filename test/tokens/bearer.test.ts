import { generateKeyPairSync } from 'node:crypto';
import { base64url, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MINUTE } from '../../src/clock.js';
import { createApiKey, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { claimsOf, headerOf, issue, refreshRaw } from './helpers.js';

/**
 * SPEC §8: Gatehouse's own API accepts an access token as `Authorization: Bearer`, and refuses it
 * once its session has ended. Every forged or foreign token is a 401 and never falls through to an
 * API key lookup or to the cookie.
 */
let t: TestGatehouse;
let n = 0;
const fresh = (tag: string) => t.signUp(`${tag}-${++n}@bearer.example`);

beforeAll(async () => {
  t = await createTestGatehouse({ rateLimits: { 'token:ip': { points: 100_000, duration: 60 } } });
});
afterAll(async () => {
  await t.destroy();
});

const me = (bearer: string, extra: { as?: TestUser } = {}) => t.request('GET', '/api/auth/session', { bearer, ...extra });

/** Valid claims for this user's current session, to be varied one at a time. */
async function claimsFor(user: TestUser) {
  return claimsOf((await issue(t, user)).accessToken);
}

/** Sign with Gatehouse's own current key (a token Gatehouse could have signed, with other claims or typ). */
const signOwn = (claims: Record<string, unknown>, typ = 'at+jwt') => t.services.signingKeys.sign(claims, typ);

function expect401(res: { status: number; body: { code: string } }) {
  expect(res.status).toBe(401);
  expect(res.body.code).toBe('UNAUTHENTICATED');
}

describe('a valid access token', () => {
  it('authenticates as its session: the session, its user, tenant requests; writes need no Origin', async () => {
    const user = await fresh('ok');
    const pair = await issue(t, user);
    const res = await me(pair.accessToken);
    expect(res.status).toBe(200);
    expect(res.body.data.user.id).toBe(user.id);
    expect(res.body.data.session.id).toBe(claimsOf(pair.accessToken).sid);
    // Not a cookie: a bearer write from any origin (or none) is no CSRF.
    const created = await t.request('POST', '/api/user/organizations', { bearer: pair.accessToken, body: { name: 'By bearer' }, origin: 'https://app.other.example' });
    expect(created.status).toBe(201);
  });

  it("carries the session's rights, so the organization's policy applies to bearer tenant requests (403 SSO_REQUIRED)", async () => {
    const owner = await fresh('policy');
    const orgId = await createOrg(t, owner, 'Policy', `policy-${n}`);
    const pair = await issue(t, owner);
    expect((await t.request('GET', `/api/user/organizations/${orgId}`, { bearer: pair.accessToken })).status).toBe(200);
    await t.deps.db.updateTable('organizations').set({ auth_required: 'sso' }).where('id', '=', orgId).execute();
    const res = await t.request('GET', `/api/user/organizations/${orgId}`, { bearer: pair.accessToken });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('SSO_REQUIRED');
  });

  it('API keys still work as Bearer', async () => {
    const user = await fresh('apikey');
    const { key } = await createApiKey(t, user);
    expect((await t.request('GET', '/api/user/me', { bearer: key })).status).toBe(200);
  });
});

describe('refused access tokens', () => {
  it('an access token whose session ended gets 401 (sign-out, revocation, deletion, expiry)', async () => {
    const a = await fresh('ended');
    const pa = await issue(t, a);
    expect((await t.request('POST', '/api/auth/sign-out', { as: a })).status).toBe(200);
    expect401(await me(pa.accessToken));

    const b = await fresh('deleted');
    const pb = await issue(t, b);
    await t.deps.db.deleteFrom('sessions').where('id', '=', claimsOf(pb.accessToken).sid as string).execute();
    t.deps.sessionCache.clear(); // written around the services: the session cache cannot know
    expect401(await me(pb.accessToken));

    const c = await fresh('idle');
    const pc = await issue(t, c);
    await t.deps.db.updateTable('sessions').set({ expires_at: t.clock.now().toISOString() }).where('id', '=', claimsOf(pc.accessToken).sid as string).execute();
    t.deps.sessionCache.clear(); // written around the services: the session cache cannot know
    expect401(await me(pc.accessToken));
  });

  it('an access token with alg none is refused', async () => {
    const user = await fresh('none');
    const claims = await claimsFor(user);
    const kid = headerOf((await issue(t, user)).accessToken).kid;
    const enc = (o: unknown) => base64url.encode(JSON.stringify(o));
    for (const alg of ['none', 'None', 'NONE']) {
      const token = `${enc({ alg, typ: 'at+jwt', kid })}.${enc(claims)}.`;
      expect401(await me(token));
    }
  });

  it('an access token signed by an unknown key is refused (with an unpublished kid, and with a published kid but another key)', async () => {
    const user = await fresh('unknown-key');
    const claims = await claimsFor(user);
    const { privateKey } = await generateKeyPair('ES256');
    const unknownKid = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'attacker-key' }).sign(privateKey);
    expect401(await me(unknownKid));
    const realKid = await t.services.signingKeys.currentKid();
    const wrongKey = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: realKid }).sign(privateKey);
    expect401(await me(wrongKey));
    const noKid = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' }).sign(privateKey);
    expect401(await me(noKid));
  });

  it('an access token signed with another algorithm is refused (RS256, and HS256 keyed with the public JWK)', async () => {
    const user = await fresh('alg');
    const claims = await claimsFor(user);
    const kid = await t.services.signingKeys.currentKid();
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rs = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid }).sign(privateKey);
    expect401(await me(rs));
    const jwks = (await t.request('GET', '/.well-known/jwks.json')).body as { keys: Array<Record<string, unknown>> };
    const secret = new TextEncoder().encode(JSON.stringify(jwks.keys.find((k) => k.kid === kid)));
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid }).sign(secret);
    expect401(await me(hs));
  });

  it('an access token for another audience is refused (and one from another issuer)', async () => {
    const user = await fresh('aud');
    const claims = await claimsFor(user);
    expect401(await me(await signOwn({ ...claims, aud: 'https://other-api.example' })));
    expect401(await me(await signOwn({ ...claims, aud: ['https://other-api.example', 'https://third.example'] })));
    expect401(await me(await signOwn({ ...claims, iss: 'https://evil.example' })));
    // The control: the same claims as issued are accepted.
    expect((await me(await signOwn(claims))).status).toBe(200);
  });

  it('an expired access token is refused', async () => {
    const user = await fresh('expired');
    const pair = await issue(t, user);
    t.clock.advance(10 * MINUTE); // exp, still within the 30 s skew
    expect((await me(pair.accessToken)).status).toBe(200);
    t.clock.advance(31_000);
    expect401(await me(pair.accessToken));
    // A fresh one from the refresh grant works.
    const next = (await refreshRaw(t, pair.refreshToken)).body.data;
    expect((await me(next.accessToken)).status).toBe(200);
  });

  it('an access token not valid yet (nbf in the future) is refused', async () => {
    const user = await fresh('nbf');
    const claims = await claimsFor(user);
    expect401(await me(await signOwn({ ...claims, nbf: (claims.iat as number) + 120 })));
  });

  it('a tampered payload is refused', async () => {
    const victim = await fresh('victim');
    const attacker = await fresh('attacker');
    const victimSid = claimsOf((await issue(t, victim)).accessToken).sid;
    const token = (await issue(t, attacker)).accessToken;
    const [h, p, s] = token.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    for (const patch of [{ sub: victim.id, sid: victimSid }, { email: victim.email }, { exp: (payload.exp as number) + 3600 }]) {
      const forged = `${h}.${base64url.encode(JSON.stringify({ ...payload, ...patch }))}.${s}`;
      expect401(await me(forged));
    }
  });

  it('an access token with typ JWT (an ID token) is refused', async () => {
    const user = await fresh('typ');
    const claims = await claimsFor(user);
    expect401(await me(await signOwn(claims, 'JWT')));
    expect401(await me(await signOwn(claims, 'logout+jwt')));
  });

  it("an access token naming another user's session is refused (sub and sid must agree)", async () => {
    const a = await fresh('sub-a');
    const b = await fresh('sub-b');
    const claimsA = await claimsFor(a);
    const claimsB = await claimsFor(b);
    expect401(await me(await signOwn({ ...claimsA, sid: claimsB.sid })));
  });

  it('an access token without sid is refused', async () => {
    const user = await fresh('nosid');
    const { sid: _sid, ...claims } = await claimsFor(user);
    expect401(await me(await signOwn(claims)));
  });

  it('a refused token never falls through to the API key lookup or to the cookie', async () => {
    const user = await fresh('fallthrough');
    const claims = await claimsFor(user);
    const forged = await signOwn({ ...claims, aud: 'https://other-api.example' });
    const lookup = vi.spyOn(t.services.apiKeys, 'authenticate');
    try {
      // With a valid session cookie alongside: still 401, not the cookie's session.
      expect401(await me(forged, { as: user }));
      expect(lookup).not.toHaveBeenCalled();
    } finally {
      lookup.mockRestore();
    }
    // A JWT-shaped garbage value too.
    expect401(await me('eyJhbGciOiJFUzI1NiJ9.eyJ9.sig', { as: user }));
  });
});
