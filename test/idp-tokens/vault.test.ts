import { mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createKeyRing, parseKeySpec } from '../../src/crypto/keyring.js';
import { resealAll } from '../../src/crypto/sealed-columns.js';
import { createApiKey, createOrg, createTestGatehouse, dropSchema, ENGINE, TEST_DATABASE_URL, testKeySpec, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { configureOidc, ssoLogin } from '../helpers/sso.js';

/**
 * The IdP token vault (SPEC §9) against a real OpenID Provider (oidc-provider) that issues
 * refresh tokens and 30-second access tokens. Two Gatehouse instances share one database
 * (PostgreSQL in the PostgreSQL pass, a SQLite file otherwise) and one key ring; every log line
 * of both is kept, to prove no token is ever written there.
 */
const logLines: string[] = [];
const sink = new Writable({ write(chunk, _enc, cb) { logLines.push(String(chunk)); cb(); } });
const keys = testKeySpec('vault1');
const schema = TEST_DATABASE_URL ? `vault_${randomBytes(4).toString('hex')}` : undefined;
let a: TestGatehouse;
let b: TestGatehouse;
let idp: RealIdp;
let rotating: RealIdp;
let owner: TestUser;
let orgId: string;
const slug = `vault-${randomBytes(3).toString('hex')}`;
const seenTokens = new Set<string>();

const users = Array.from({ length: 6 }, (_, i) => ({ sub: `vault-user-${i}`, email: `user${i}@vault.test`, email_verified: true, name: `User ${i}` }));

beforeAll(async () => {
  idp = await startRealIdp({ redirectUris: [], users, refreshTokens: {}, accessTokenTtl: 30 });
  rotating = await startRealIdp({ redirectUris: [], users, refreshTokens: { rotate: true }, accessTokenTtl: 30 });
  const databaseUrl = TEST_DATABASE_URL ?? `sqlite:${mkdtempSync(join(tmpdir(), 'gh-vault-'))}/shared.db`;
  const env = { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true', GATEHOUSE_SECRET_KEYS: keys };
  const logger = pino({ level: 'debug' }, sink);
  a = await createTestGatehouse({ databaseUrl, env, logger, ...(schema ? { schema } : {}) });
  b = await createTestGatehouse({ databaseUrl, env, logger, clock: a.clock, ...(schema ? { schema } : {}) });
  owner = await a.signUp('owner@vault.test');
  orgId = await createOrg(a, owner, 'Vault', slug);
  await configureOidc(a, owner, orgId, idp, { storeIdpTokens: true, scopes: 'openid profile email' });
});
afterAll(async () => {
  await a.destroy();
  await b.destroy();
  await idp.close();
  await rotating.close();
  if (schema) await dropSchema(schema);
});

async function signIn(sub: string, t: TestGatehouse = a, s = slug, op: RealIdp = idp) {
  const run = await ssoLogin(t, `/api/auth/sso/${s}/login`, (u) => op.login(u, sub), { accept: 'application/json' });
  expect(run.callback?.status, run.callback?.text).toBe(302);
  return run;
}
async function identityOf(sub: string, org = orgId) {
  const res = await a.request('GET', `/api/user/organizations/${org}/sso/identities?limit=100`, { as: owner });
  expect(res.status, res.text).toBe(200);
  return res.body.data.items.find((i: { subject: string }) => i.subject === sub) as { id: string; idpTokens: Record<string, unknown> | null };
}
const row = (id: string) => a.deps.db.selectFrom('sso_idp_tokens').selectAll().where('id', '=', id).executeTakeFirst();
const refreshesOf = (op: RealIdp, sub: string) => op.grants.filter((g) => g.grantType === 'refresh_token' && g.ok && g.accountId === sub).length;
async function getToken(identityId: string, t: TestGatehouse = a, as: TestUser = owner, org = orgId) {
  const res = await t.request('GET', `/api/user/organizations/${org}/sso/identities/${identityId}/idp-token`, { as });
  if (res.status === 200) seenTokens.add(res.body.data.accessToken);
  return res;
}
async function userinfoWith(op: RealIdp, accessToken: string) {
  return (await fetch(`${op.issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } })).status;
}

describe(`IdP token vault on ${ENGINE}`, () => {
  it('asks the IdP for offline access (offline_access with prompt=consent for provider oidc) and echoes storeIdpTokens', async () => {
    await signIn(users[0]!.sub);
    const params = idp.lastAuthorizationParams()!;
    expect(params.get('scope')!.split(' ')).toEqual(expect.arrayContaining(['openid', 'profile', 'email', 'offline_access']));
    expect(params.get('prompt')).toBe('consent');
    const settings = await a.request('GET', `/api/user/organizations/${orgId}/settings/sso`, { as: owner });
    expect(settings.body.data.storeIdpTokens).toBe(true);
  });

  it('a login stores the tokens sealed; the identity shows their status, never a token; the app gets a working access token', async () => {
    const identity = await identityOf(users[0]!.sub);
    expect(identity.idpTokens).toMatchObject({ status: 'valid', lastRefreshError: null });
    expect(identity.idpTokens!.scopes).toEqual(expect.arrayContaining(['openid', 'offline_access']));
    const stored = (await row(identity.id))!;
    expect(stored.refresh_token_enc).toBeTruthy();
    const res = await getToken(identity.id);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(stored.access_token_enc).not.toContain(res.body.data.accessToken);
    expect(Date.parse(res.body.data.expiresAt)).toBe(a.clock.now().getTime() + 30_000);
    expect(await userinfoWith(idp, res.body.data.accessToken)).toBe(200);
    const audit = await a.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'sso.idp_token_read').execute();
    expect(audit).toHaveLength(1);
    expect(JSON.parse(audit[0]!.metadata!)).toMatchObject({ refreshed: false, userId: stored.user_id });
  });

  it('the sweep refreshes tokens expiring within 5 minutes (the IdP sees the refresh_token grant); tokens far from expiry are left alone', async () => {
    const identity = await identityOf(users[0]!.sub);
    const before = (await row(identity.id))!;
    const result = await a.services.idpTokenRefresher.sweepOnce();
    expect(result).toMatchObject({ swept: true, refreshed: 1, refused: 0, failed: 0 });
    expect(refreshesOf(idp, users[0]!.sub)).toBe(1);
    const after = (await row(identity.id))!;
    expect(after.access_token_enc).not.toBe(before.access_token_enc);
    expect(after.generation).toBe(before.generation + 1);
    const token = await getToken(identity.id);
    expect(await userinfoWith(idp, token.body.data.accessToken)).toBe(200);
    // Made to expire in an hour: not due.
    await a.deps.db.updateTable('sso_idp_tokens').set({ access_token_expires_at: new Date(a.clock.now().getTime() + 3600_000).toISOString() }).where('id', '=', identity.id).execute();
    expect(await a.services.idpTokenRefresher.sweepOnce()).toMatchObject({ refreshed: 0 });
    expect(refreshesOf(idp, users[0]!.sub)).toBe(1);
  });

  it('refresh on use: an access token expiring within a minute is refreshed before it is handed out, and many callers at once make one refresh', async () => {
    const identity = await identityOf(users[0]!.sub);
    await a.deps.db.updateTable('sso_idp_tokens').set({ access_token_expires_at: new Date(a.clock.now().getTime() - 1000).toISOString() }).where('id', '=', identity.id).execute();
    expect((await identityOf(users[0]!.sub)).idpTokens!.status).toBe('expired');
    const before = refreshesOf(idp, users[0]!.sub);
    const answers = await Promise.all(Array.from({ length: 5 }, () => getToken(identity.id)));
    for (const r of answers) expect(r.status, r.text).toBe(200);
    expect(new Set(answers.map((r) => r.body.data.accessToken)).size).toBe(1);
    expect(refreshesOf(idp, users[0]!.sub)).toBe(before + 1);
    expect(Date.parse(answers[0]!.body.data.expiresAt)).toBeGreaterThan(a.clock.now().getTime());
    expect((await identityOf(users[0]!.sub)).idpTokens!.status).toBe('valid');
  });

  it('two instances sweeping at once make one refresh per identity, and two instances refreshing one identity on use make one request', async () => {
    for (const u of users.slice(1, 4)) await signIn(u.sub, b);
    const counts = () => users.slice(1, 4).map((u) => refreshesOf(idp, u.sub));
    expect(counts()).toEqual([0, 0, 0]);
    const [ra, rb] = await Promise.all([a.services.idpTokenRefresher.sweepOnce(), b.services.idpTokenRefresher.sweepOnce()]);
    expect(ra.refreshed + rb.refreshed).toBeGreaterThanOrEqual(3); // and whatever else is due
    expect([ra.swept, rb.swept].filter(Boolean)).toHaveLength(1); // one instance holds the sweep
    expect(counts()).toEqual([1, 1, 1]);
    // On use, on both instances at once: one request to the IdP, the same token for both.
    const identity = await identityOf(users[1]!.sub);
    await a.deps.db.updateTable('sso_idp_tokens').set({ access_token_expires_at: new Date(a.clock.now().getTime() - 1000).toISOString() }).where('id', '=', identity.id).execute();
    const [ta, tb] = await Promise.all([getToken(identity.id, a), getToken(identity.id, b)]);
    expect(ta.status, ta.text).toBe(200);
    expect(tb.status, tb.text).toBe(200);
    expect(ta.body.data.accessToken).toBe(tb.body.data.accessToken);
    expect(refreshesOf(idp, users[1]!.sub)).toBe(2);
  });

  it('a token endpoint that answers garbage, fails or times out changes nothing; the next sweep retries and succeeds', { timeout: 30_000 }, async () => {
    const identity = await identityOf(users[2]!.sub);
    await a.deps.db.updateTable('sso_idp_tokens').set({ access_token_expires_at: new Date(a.clock.now().getTime() + 60_000).toISOString() }).where('id', '=', identity.id).execute();
    const before = (await row(identity.id))!;
    const holder = a.services.idpTokens.holder;
    onTestFinished(() => {
      idp.tokenEndpointOverride = null;
    });
    for (const answer of [{ status: 200, body: '<html>not json</html>' }, { status: 200, body: '{"token_type":"Bearer"}' }, { status: 503, body: '{"error":"temporarily_unavailable"}' }, 'hang' as const]) {
      idp.tokenEndpointOverride = answer;
      await a.deps.db.updateTable('sso_idp_tokens').set({ next_attempt_at: null }).where('id', '=', identity.id).execute();
      const r = await a.services.idpTokenRefresher.sweepOnce();
      expect(r, JSON.stringify(answer)).toMatchObject({ refreshed: 0, refused: 0 });
      expect(r.failed).toBeGreaterThanOrEqual(1); // every due row
      const now = (await row(identity.id))!;
      expect(now).toMatchObject({ status: 'valid', access_token_enc: before.access_token_enc, refresh_token_enc: before.refresh_token_enc, generation: before.generation, lease_holder: null });
      expect(now.last_error).toBeTruthy();
    }
    expect(holder).toBeTruthy();
    const shown = (await identityOf(users[2]!.sub)).idpTokens!;
    expect(shown.status).toBe('valid');
    expect(shown.lastRefreshError).toMatch(/did not answer within/);
    // A valid token is still handed out while the IdP is away (it expires in a minute: refreshed first, which fails).
    idp.tokenEndpointOverride = { status: 500, body: 'oops' };
    await a.deps.db.updateTable('sso_idp_tokens').set({ access_token_expires_at: new Date(a.clock.now().getTime() + 30_000).toISOString() }).where('id', '=', identity.id).execute();
    expect((await getToken(identity.id)).status).toBe(200);
    // Expired and the IdP away: 502, nothing changed.
    await a.deps.db.updateTable('sso_idp_tokens').set({ access_token_expires_at: new Date(a.clock.now().getTime() - 1000).toISOString(), next_attempt_at: null }).where('id', '=', identity.id).execute();
    const away = await getToken(identity.id);
    expect(away.status, away.text).toBe(502);
    expect(away.body.code).toBe('IDP_UNAVAILABLE');
    idp.tokenEndpointOverride = null;
    a.clock.advance(31 * 60_000); // past the longest backoff
    try {
      expect((await a.services.idpTokenRefresher.sweepOnce()).refreshed).toBeGreaterThanOrEqual(1);
      expect(await row(identity.id)).toMatchObject({ failures: 0, last_error: null, status: 'valid' });
    } finally {
      a.clock.advance(-31 * 60_000);
    }
  });

  it('a refresh token the IdP revoked gives refresh_failed: tokens erased, audited, and the app is told to have the user sign in again', async () => {
    const sub = users[3]!.sub;
    const identity = await identityOf(sub);
    expect(idp.revokeRefreshTokens(sub)).toBeGreaterThan(0);
    await a.deps.db.updateTable('sso_idp_tokens').set({ access_token_expires_at: new Date(a.clock.now().getTime() - 1000).toISOString() }).where('id', '=', identity.id).execute();
    expect(await a.services.idpTokenRefresher.sweepOnce()).toMatchObject({ refused: 1 });
    expect(await row(identity.id)).toMatchObject({ status: 'refresh_failed', access_token_enc: null, refresh_token_enc: null });
    expect((await identityOf(sub)).idpTokens).toMatchObject({ status: 'refresh_failed', lastRefreshError: expect.stringContaining('invalid_grant') });
    const res = await getToken(identity.id);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'IDP_TOKEN_UNAVAILABLE', details: { status: 'refresh_failed' } });
    const audit = await a.deps.db.selectFrom('audit_events').selectAll().where('action', '=', 'sso.idp_token_refresh_failed').execute();
    expect(audit.map((e) => e.target_id)).toContain(identity.id);
    // Signing in again brings fresh tokens.
    await signIn(sub);
    expect((await identityOf(sub)).idpTokens!.status).toBe('valid');
    expect((await getToken(identity.id)).status).toBe(200);
  });

  it('a refresh token the IdP rotates replaces the old one (a second refresh with the old one would be refused and revoke the grant)', async () => {
    const owner2 = await a.signUp('owner2@vault.test');
    const slug2 = `rot-${randomBytes(3).toString('hex')}`;
    const org2 = await createOrg(a, owner2, 'Rotating', slug2);
    await configureOidc(a, owner2, org2, rotating, { storeIdpTokens: true });
    await signIn(users[4]!.sub, a, slug2, rotating);
    const res = await a.request('GET', `/api/user/organizations/${org2}/sso/identities`, { as: owner2 });
    const identityId = res.body.data.items[0].id as string;
    const sealed: string[] = [];
    for (let i = 0; i < 3; i++) {
      sealed.push((await row(identityId))!.refresh_token_enc!);
      const r = await a.services.idpTokens.refresh(identityId);
      expect(r.outcome).toBe('refreshed');
    }
    expect(refreshesOf(rotating, users[4]!.sub)).toBe(3);
    const plain = sealed.map((s) => a.deps.keyring.decrypt(s, `sso_idp_tokens.refresh_token_enc:${identityId}`));
    expect(new Set(plain).size).toBe(3);
    expect(rotating.grants.filter((g) => g.grantType === 'refresh_token' && !g.ok)).toHaveLength(0);
    for (const p of plain) seenTokens.add(p);
  });

  it('GET idp-token: owner and admin only; an API key needs the scope sso:idp-tokens, which a full-access key neither has nor can mint', async () => {
    const identity = await identityOf(users[0]!.sub);
    const path = `/api/user/organizations/${orgId}/sso/identities/${identity.id}/idp-token`;
    const full = await createApiKey(a, owner, { name: 'full' });
    const noScope = await a.request('GET', path, { apiKey: full.key });
    expect(noScope.status).toBe(403);
    expect(noScope.body.details).toMatchObject({ requiredScope: 'sso:idp-tokens' });
    const minted = await a.request('POST', '/api/user/api-keys', { apiKey: full.key, body: { name: 'escalate', scopes: ['sso:idp-tokens'] }, origin: null });
    expect(minted.status, minted.text).toBe(403);
    const other = await createApiKey(a, owner, { name: 'read', scopes: ['organizations:read'] });
    expect((await a.request('GET', path, { apiKey: other.key })).status).toBe(403);
    const scoped = await createApiKey(a, owner, { name: 'vault', scopes: ['sso:idp-tokens'], organizationId: orgId });
    const ok = await a.request('GET', path, { apiKey: scoped.key });
    expect(ok.status, ok.text).toBe(200);
    seenTokens.add(ok.body.data.accessToken);
    // A member is refused.
    const member = await a.signUp('member@vault.test');
    await a.deps.db.insertInto('members').values({ organization_id: orgId, user_id: member.id, role: 'member', created_at: '2026-01-01T00:00:00.000Z', updated_at: '2026-01-01T00:00:00.000Z' }).execute();
    expect((await getToken(identity.id, a, member)).status).toBe(403);
  });

  it("tenant isolation: the owner of another organization gets 404 for this organization's identity, by either path", async () => {
    const identity = await identityOf(users[0]!.sub);
    const attacker = await a.signUp('attacker@evil.test');
    const evilOrg = await createOrg(a, attacker, 'Evil', `evil-${randomBytes(3).toString('hex')}`);
    const viaOwn = await getToken(identity.id, a, attacker, evilOrg);
    expect(viaOwn.status).toBe(404);
    const viaTheirs = await getToken(identity.id, a, attacker, orgId);
    expect(viaTheirs.status).toBe(404);
    const key = await createApiKey(a, attacker, { name: 'evil', scopes: ['sso:idp-tokens'], organizationId: evilOrg });
    expect((await a.request('GET', `/api/user/organizations/${orgId}/sso/identities/${identity.id}/idp-token`, { apiKey: key.key })).status).toBe(403);
  });

  it('the sealed token columns are rotated by the key rotation (gatehouse secrets rotate reseals them)', async () => {
    const identity = await identityOf(users[0]!.sub);
    const before = await getToken(identity.id);
    const newKey = `vault2:${randomBytes(32).toString('base64')}`;
    const rotated = createKeyRing(parseKeySpec(`${newKey},${keys}`));
    const res = await resealAll(a.deps.db, rotated);
    expect(res.rewritten).toBeGreaterThan(0);
    const r = (await row(identity.id))!;
    expect(rotated.kidOf(r.access_token_enc!)).toBe('vault2');
    expect(rotated.kidOf(r.refresh_token_enc!)).toBe('vault2');
    expect(rotated.decrypt(r.access_token_enc!, `sso_idp_tokens.access_token_enc:${identity.id}`)).toBe(before.body.data.accessToken);
    // Back under the instances' key (they were not restarted with the new one).
    await resealAll(a.deps.db, createKeyRing(parseKeySpec(`${keys},${newKey}`)));
    expect((await getToken(identity.id)).status).toBe(200);
  });

  it('unlinking erases the tokens; turning storeIdpTokens off erases the connection\'s; a connection replaced by another IdP takes its tokens with it', async () => {
    const unlinked = await identityOf(users[1]!.sub);
    expect((await a.request('DELETE', `/api/user/organizations/${orgId}/sso/identities/${unlinked.id}`, { as: owner })).status).toBe(200);
    expect(await row(unlinked.id)).toBeUndefined();
    const kept = await identityOf(users[0]!.sub);
    await configureOidc(a, owner, orgId, idp, { storeIdpTokens: false });
    expect(await row(kept.id)).toBeUndefined();
    expect((await identityOf(users[0]!.sub)).idpTokens).toBeNull();
    expect((await getToken(kept.id)).body).toMatchObject({ code: 'IDP_TOKEN_UNAVAILABLE', details: { status: 'none' } });
    // Stored again, then the organization moves to another IdP.
    await configureOidc(a, owner, orgId, idp, { storeIdpTokens: true });
    await signIn(users[0]!.sub);
    expect(await row(kept.id)).toBeTruthy();
    await configureOidc(a, owner, orgId, rotating, { storeIdpTokens: true });
    expect(await row(kept.id)).toBeUndefined();
    const left = await a.deps.db.selectFrom('sso_idp_tokens').select('id').where('organization_id', '=', orgId).execute();
    expect(left).toHaveLength(0);
  });

  it('no token appears in any API answer but idp-token, in any log line or in any audit entry', async () => {
    // Every access token handed out, and the refresh tokens the vault holds, in plain text.
    const rows = await a.deps.db.selectFrom('sso_idp_tokens').selectAll().execute();
    for (const r of rows) {
      if (r.refresh_token_enc) seenTokens.add(a.deps.keyring.decrypt(r.refresh_token_enc, `sso_idp_tokens.refresh_token_enc:${r.id}`));
      if (r.access_token_enc) seenTokens.add(a.deps.keyring.decrypt(r.access_token_enc, `sso_idp_tokens.access_token_enc:${r.id}`));
    }
    expect(seenTokens.size).toBeGreaterThan(5);
    const answers = [
      (await a.request('GET', `/api/user/organizations/${orgId}/sso/identities?limit=100`, { as: owner })).text,
      (await a.request('GET', `/api/user/organizations/${orgId}/settings/sso`, { as: owner })).text,
      (await a.request('GET', `/api/user/organizations/${orgId}/audit-log?limit=100`, { as: owner })).text,
    ];
    const audit = JSON.stringify(await a.deps.db.selectFrom('audit_events').selectAll().execute());
    const logs = logLines.join('');
    expect(logs).toContain('IdP tokens refreshed'); // the log did see the refreshes
    for (const token of seenTokens) {
      for (const text of answers) expect(text.includes(token)).toBe(false);
      expect(audit.includes(token)).toBe(false);
      expect(logs.includes(token)).toBe(false);
    }
  });
});
