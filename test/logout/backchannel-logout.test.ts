import { generateKeyPairSync } from 'node:crypto';
import { SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdpLogoutHint } from '../../src/sessions/idp-session.js';
import { logoutUrls } from '../../src/logout/urls.js';
import { BASE_URL, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { BCL_EVENT, isSignedIn, logoutClaims, postLogoutToken, signLogoutToken, ssoSession } from '../helpers/logout-token.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { configureOidc } from '../helpers/sso.js';

/**
 * SPEC §8 "OIDC Back-Channel Logout from the IdP", against the real `oidc-provider` as the IdP:
 * the sessions come from real logins (their `sid` from the IdP's ID token), and the logout tokens
 * are signed with the IdP's own key (as the IdP would) unless the test is about another key.
 * The attacks are those of the OpenID conformance suite's RP back-channel logout tests.
 */
let t: TestGatehouse;
let idp: RealIdp;
let owner: TestUser;
const CORP = 'corp-bcl';

beforeAll(async () => {
  idp = await startRealIdp({
    redirectUris: [],
    users: [
      { sub: 'alice-sub', email: 'alice@corp.test', email_verified: true, name: 'Alice' },
      { sub: 'bob-sub', email: 'bob@corp.test', email_verified: true, name: 'Bob' },
    ],
    backchannelLogoutUri: logoutUrls(BASE_URL).backchannelLogoutUri,
  });
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  owner = await t.signUp('owner@corp.test');
  const orgId = await createOrg(t, owner, 'Corp', CORP);
  await configureOidc(t, owner, orgId, idp);
});
afterAll(async () => {
  await t?.destroy();
  await idp?.close();
});

const now = () => t.clock.now();
const asIdp = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) => signLogoutToken(idp.signingKey, claims, header);

function unsigned(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part(header)}.${part(claims)}.`;
}

async function expectRefused(token: string, description: RegExp) {
  const res = await postLogoutToken(t, token);
  expect(res.status).toBe(400);
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(res.body).toEqual({ error: 'invalid_request', error_description: expect.any(String) });
  expect(res.body.error_description).toMatch(description);
  return res;
}

describe('the OIDC login records the IdP session', () => {
  it('stores identity_id, the ID token sid as idp_session_id, and the ID token sealed (never in clear)', async () => {
    const s = await ssoSession(t, idp, CORP, 'alice-sub');
    const identity = await t.deps.db.selectFrom('sso_identities').selectAll().where('subject', '=', 'alice-sub').executeTakeFirstOrThrow();
    expect(s.identityId).toBe(identity.id);
    expect(s.idpSessionId).toEqual(expect.any(String));
    const row = await t.deps.db.selectFrom('sessions').selectAll().where('id', '=', s.sessionId).executeTakeFirstOrThrow();
    expect(row.idp_logout_enc).toMatch(/^v1\./);
    const hint = openIdpLogoutHint(t.deps.keyring, row);
    expect(hint).toMatchObject({ protocol: 'oidc', idToken: expect.stringMatching(/^ey[^.]+\.ey[^.]+\.[^.]+$/) });
    const idToken = hint!.protocol === 'oidc' ? hint!.idToken : '';
    expect(row.idp_logout_enc).not.toContain(idToken.split('.')[1]!);
    // The sealed ID token is the one the IdP issued in this login: its sid is the recorded one.
    expect(JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString()).sid).toBe(s.idpSessionId);
  });
});

describe('a valid logout token', () => {
  it('ends the session it names by sid: 200 no-store, the cookie is refused, its refresh token too, audited', async () => {
    const s = await ssoSession(t, idp, CORP, 'alice-sub');
    const tokens = await t.request('POST', '/api/auth/token', { as: { cookie: s.cookie }, body: {} });
    expect(tokens.status).toBe(200);
    const res = await postLogoutToken(t, await asIdp(logoutClaims(idp, now(), { sub: 'alice-sub', sid: s.idpSessionId })));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect((await t.request('GET', '/api/auth/session', { as: { cookie: s.cookie } })).status).toBe(401);
    const refresh = await t.request('POST', '/api/auth/token', { body: { grant_type: 'refresh_token', refresh_token: tokens.body.data.refreshToken }, origin: null });
    expect(refresh.status).toBe(400);
    expect(refresh.body.code).toBe('INVALID_TOKEN');
    const revoked = await t.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'session.revoked').where('target_id', '=', s.sessionId).executeTakeFirstOrThrow();
    expect(JSON.parse(revoked.metadata ?? '{}')).toMatchObject({ reason: 'idp_backchannel_logout' });
    const accepted = await t.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'sso.backchannel_logout').orderBy('created_at', 'desc').execute();
    expect(accepted.map((a) => JSON.parse(a.metadata ?? '{}'))).toContainEqual(expect.objectContaining({ sessionsEnded: 1, by: 'sid' }));
  });

  it('answers 200 when it names no session (an IdP session Gatehouse never saw)', async () => {
    const res = await postLogoutToken(t, await asIdp(logoutClaims(idp, now(), { sid: 'no-such-idp-session' })));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('accepts aud as an array that contains the client id', async () => {
    const s = await ssoSession(t, idp, CORP, 'alice-sub');
    const res = await postLogoutToken(t, await asIdp(logoutClaims(idp, now(), { aud: ['another-rp', idp.clientId], sid: s.idpSessionId })));
    expect(res.status).toBe(200);
    expect(await isSignedIn(t, s.cookie)).toBe(false);
  });
});

describe('sid and sub target what they name, and nothing else', () => {
  it('a token with sid A ends only the session of IdP session A, not the same user’s session B', async () => {
    const a = await ssoSession(t, idp, CORP, 'alice-sub');
    const b = await ssoSession(t, idp, CORP, 'alice-sub');
    expect(a.idpSessionId).not.toBe(b.idpSessionId);
    expect((await postLogoutToken(t, await asIdp(logoutClaims(idp, now(), { sub: 'alice-sub', sid: a.idpSessionId })))).status).toBe(200);
    expect(await isSignedIn(t, a.cookie)).toBe(false);
    expect(await isSignedIn(t, b.cookie)).toBe(true);
  });

  it('a token with only sub ends every session of that identity (and not another user’s)', async () => {
    const a = await ssoSession(t, idp, CORP, 'alice-sub');
    const b = await ssoSession(t, idp, CORP, 'alice-sub');
    const bob = await ssoSession(t, idp, CORP, 'bob-sub');
    const res = await postLogoutToken(t, await asIdp(logoutClaims(idp, now(), { sub: 'alice-sub' })));
    expect(res.status).toBe(200);
    expect(await isSignedIn(t, a.cookie)).toBe(false);
    expect(await isSignedIn(t, b.cookie)).toBe(false);
    expect(await isSignedIn(t, bob.cookie)).toBe(true);
  });

  it("a token with another user's sid and this user's sub ends neither user's session", async () => {
    const alice = await ssoSession(t, idp, CORP, 'alice-sub');
    const bob = await ssoSession(t, idp, CORP, 'bob-sub');
    const res = await postLogoutToken(t, await asIdp(logoutClaims(idp, now(), { sub: 'alice-sub', sid: bob.idpSessionId })));
    expect(res.status).toBe(200);
    expect(await isSignedIn(t, bob.cookie)).toBe(true);
    expect(await isSignedIn(t, alice.cookie)).toBe(true);
  });

  it("a token with a session's sid and a sub Gatehouse does not know ends nothing of that session", async () => {
    const alice = await ssoSession(t, idp, CORP, 'alice-sub');
    expect((await postLogoutToken(t, await asIdp(logoutClaims(idp, now(), { sub: 'nobody-sub', sid: alice.idpSessionId })))).status).toBe(200);
    expect(await isSignedIn(t, alice.cookie)).toBe(true);
  });

  it('a sub Gatehouse does not know ends nothing (200)', async () => {
    const alice = await ssoSession(t, idp, CORP, 'alice-sub');
    expect((await postLogoutToken(t, await asIdp(logoutClaims(idp, now(), { sub: 'nobody-sub' })))).status).toBe(200);
    expect(await isSignedIn(t, alice.cookie)).toBe(true);
  });
});

describe('refused logout tokens (OpenID conformance RP back-channel logout tests): 400 invalid_request, nothing ends', () => {
  let victim: Awaited<ReturnType<typeof ssoSession>>;
  beforeAll(async () => {
    victim = await ssoSession(t, idp, CORP, 'alice-sub');
  });
  afterAll(async () => {
    // Every refusal above left the victim signed in.
    expect(await isSignedIn(t, victim.cookie)).toBe(true);
  });
  const valid = (extra: Record<string, unknown> = {}) => logoutClaims(idp, now(), { sub: 'alice-sub', sid: victim.idpSessionId, ...extra });

  it('rejects a request without logout_token', async () => {
    const res = await postLogoutToken(t, null);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
  });

  it('rejects a logout token with alg none', async () => {
    await expectRefused(unsigned({ alg: 'none', typ: 'logout+jwt' }, valid()), /"none"/);
  });

  it('rejects a logout token signed with HS256 using the client secret as the key', async () => {
    const token = await new SignJWT(valid()).setProtectedHeader({ alg: 'HS256', typ: 'logout+jwt' }).sign(new TextEncoder().encode(idp.clientSecret));
    await expectRefused(token, /"HS256"/);
  });

  it('rejects a logout token without events', async () => {
    const { events: _events, ...claims } = valid();
    await expectRefused(await asIdp(claims), /events/);
  });

  it('rejects a logout token whose events has the wrong member', async () => {
    await expectRefused(await asIdp(valid({ events: { 'http://schemas.openid.net/event/backchannel-logout/other': {} } })), /backchannel-logout/);
  });

  it('rejects a logout token whose back-channel logout event is not an object', async () => {
    await expectRefused(await asIdp(valid({ events: { [BCL_EVENT]: 'yes' } })), /backchannel-logout/);
  });

  it('rejects a logout token with a nonce (an ID token passed off as a logout token)', async () => {
    await expectRefused(await asIdp(valid({ nonce: 'n-0S6_WzA2Mj' })), /nonce/);
  });

  it('rejects a logout token with the wrong aud', async () => {
    await expectRefused(await asIdp(valid({ aud: 'some-other-client' })), /No enabled OIDC connection/);
  });

  it('rejects a logout token with the wrong iss', async () => {
    await expectRefused(await asIdp(valid({ iss: 'http://127.0.0.1:1' })), /No enabled OIDC connection/);
  });

  it('rejects a logout token whose iss differs from the issuer only by a trailing slash', async () => {
    await expectRefused(await asIdp(valid({ iss: `${idp.issuer}/` })), /No enabled OIDC connection/);
  });

  it('rejects a logout token with neither sub nor sid', async () => {
    const { sub: _sub, sid: _sid, ...claims } = valid();
    await expectRefused(await asIdp(claims), /neither/);
  });

  it('rejects a logout token without jti', async () => {
    const { jti: _jti, ...claims } = valid();
    await expectRefused(await asIdp(claims), /jti/);
  });

  it('rejects a logout token without iat', async () => {
    const { iat: _iat, ...claims } = valid();
    await expectRefused(await asIdp(claims), /iat/);
  });

  it('rejects an expired logout token', async () => {
    const iat = Math.floor(now().getTime() / 1000) - 600;
    await expectRefused(await asIdp(valid({ iat, exp: iat + 120 })), /expired/);
  });

  it('rejects a logout token without exp', async () => {
    const { exp: _exp, ...claims } = valid();
    await expectRefused(await asIdp(claims), /expiry/);
  });

  it('rejects a logout token issued in the future', async () => {
    const iat = Math.floor(now().getTime() / 1000) + 600;
    await expectRefused(await asIdp(valid({ iat, exp: iat + 120 })), /future/);
  });

  it('rejects a logout token typed as something else (typ JWT-typed access token)', async () => {
    await expectRefused(await asIdp(valid(), { typ: 'at+jwt' }), /typ/);
  });

  it('rejects a logout token signed by a foreign key that claims the IdP’s kid', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const foreign = { ...(privateKey.export({ format: 'jwk' }) as JWK), kid: idp.signingKey.kid, alg: 'RS256' };
    await expectRefused(await signLogoutToken(foreign, valid()), /signature/);
  });

  it('rejects a logout token signed by a foreign key with a kid the IdP does not publish', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const foreign = { ...(privateKey.export({ format: 'jwk' }) as JWK), kid: 'attacker-key', alg: 'RS256' };
    await expectRefused(await signLogoutToken(foreign, valid()), /attacker-key/);
  });

  it('rejects a logout token whose signature was tampered with (claims changed after signing)', async () => {
    const [h, , s] = (await asIdp(valid())).split('.');
    const forged = Buffer.from(JSON.stringify(valid({ sub: 'bob-sub' }))).toString('base64url');
    await expectRefused(`${h}.${forged}.${s}`, /signature/);
  });

  it('rejects a replayed logout token (same jti) the second time', async () => {
    const other = await ssoSession(t, idp, CORP, 'bob-sub');
    const token = await asIdp(logoutClaims(idp, now(), { sid: 'never-seen', jti: `replay-${other.sessionId}` }));
    expect((await postLogoutToken(t, token)).status).toBe(200);
    await expectRefused(token, /already accepted/);
    // A new token with the same jti is a replay too, whatever else it says.
    await expectRefused(await asIdp(logoutClaims(idp, now(), { sid: other.idpSessionId, jti: `replay-${other.sessionId}` })), /already accepted/);
    expect(await isSignedIn(t, other.cookie)).toBe(true);
  });

  it("rejects the IdP's own ID token posted as a logout token", async () => {
    const row = await t.deps.db.selectFrom('sessions').selectAll().where('id', '=', victim.sessionId).executeTakeFirstOrThrow();
    const hint = openIdpLogoutHint(t.deps.keyring, row);
    if (hint?.protocol !== 'oidc') throw new Error('no ID token recorded');
    const res = await postLogoutToken(t, hint.idToken);
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
  });

  it('rejects two logout_token fields (which one would count?)', async () => {
    const token = await asIdp(valid());
    const res = await t.request('POST', '/api/auth/sso/backchannel-logout', {
      rawBody: new URLSearchParams([['logout_token', token], ['logout_token', token]]).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      origin: null,
    });
    expect(res.status).toBe(400);
    expect(res.body.error_description).toMatch(/no logout_token/);
  });

  it('rejects a JSON body (the token must be posted as a form)', async () => {
    const res = await t.request('POST', '/api/auth/sso/backchannel-logout', { body: { logout_token: await asIdp(valid()) }, origin: null });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
  });
});

describe('tenant isolation: another organization cannot end Corp’s sessions', () => {
  let evilOwner: TestUser;
  let evilOrgId: string;
  beforeAll(async () => {
    evilOwner = await t.signUp('mallory@evil.test');
    evilOrgId = await createOrg(t, evilOwner, 'Evil', 'evil-bcl');
  });

  it("Evil's connection at Corp's IdP (its own client id): a logout token for Evil's client naming Corp's sid and sub ends nothing of Corp", async () => {
    // The worst an attacker who owns Evil can get: a token the shared IdP itself signed, for
    // Evil's own client (aud), naming a Corp user's sid and sub.
    await configureOidc(t, evilOwner, evilOrgId, { issuer: idp.issuer, clientId: 'evil-client', clientSecret: 'evil-secret' });
    const victim = await ssoSession(t, idp, CORP, 'alice-sub');
    const res = await postLogoutToken(t, await asIdp(logoutClaims(idp, now(), { aud: 'evil-client', sub: 'alice-sub', sid: victim.idpSessionId })));
    expect(res.status).toBe(200); // a valid token for Evil's connection, which has no such session
    expect(await isSignedIn(t, victim.cookie)).toBe(true);
    const audit = await t.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'sso.backchannel_logout').where('organization_id', '=', evilOrgId).execute();
    // Nothing of Evil's connection matched: nothing is written in Evil's audit log either.
    expect(audit).toEqual([]);
  });

  it("Evil's own IdP key cannot sign for Corp's issuer and client id", async () => {
    const evilIdp = await startRealIdp({ redirectUris: [] });
    try {
      const victim = await ssoSession(t, idp, CORP, 'alice-sub');
      await expectRefused(await signLogoutToken(evilIdp.signingKey, logoutClaims(idp, now(), { sub: 'alice-sub', sid: victim.idpSessionId })), /attacker|does not publish|signature/);
      expect(await isSignedIn(t, victim.cookie)).toBe(true);
    } finally {
      await evilIdp.close();
    }
  });

  it("Evil copying Corp's issuer and client id neither silences Corp's logout tokens nor gains anything from them", async () => {
    await configureOidc(t, evilOwner, evilOrgId, { issuer: idp.issuer, clientId: idp.clientId, clientSecret: 'not-the-secret' });
    const victim = await ssoSession(t, idp, CORP, 'alice-sub');
    const bystander = await ssoSession(t, idp, CORP, 'bob-sub');
    const res = await postLogoutToken(t, await asIdp(logoutClaims(idp, now(), { sub: 'alice-sub', sid: victim.idpSessionId })));
    expect(res.status).toBe(200);
    expect(await isSignedIn(t, victim.cookie)).toBe(false);
    expect(await isSignedIn(t, bystander.cookie)).toBe(true);
    // Corp's logouts do not show in Evil's audit log (no timing or volume of Corp's sign-outs leaks to the copy).
    const evilAudit = await t.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'sso.backchannel_logout').where('organization_id', '=', evilOrgId).execute();
    expect(evilAudit).toEqual([]);
  });

  it('a disabled connection is not found: its logout tokens are refused', async () => {
    const orgId = await createOrg(t, owner, 'Paused', 'paused-bcl');
    await configureOidc(t, owner, orgId, { issuer: idp.issuer, clientId: 'paused-client', clientSecret: 'x' }, { enabled: false });
    await expectRefused(await asIdp(logoutClaims(idp, now(), { aud: 'paused-client', sub: 'alice-sub' })), /No enabled OIDC connection/);
  });
});
