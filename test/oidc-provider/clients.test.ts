import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type ClientMetadata } from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/crypto/tokens.js';
import { CLIENT_ID_PATTERN, verifyClientSecret } from '../../src/oidc-provider/clients/service.js';
import { addMember, createApiKey, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';

/**
 * SPEC §8 "Clients:": the OpenID Provider's clients, registered by platform superadmins only. A
 * client decides where users' codes and tokens are delivered, so anyone else who could register
 * (or repoint) one could harvest every user's tokens. Secrets are shown once and stored as SHA-256.
 */
const BASE = '/api/admin/clients';
const FAKE_CLIENT = 'gh_client_01HZ3K5R4X9Y2V6QF8TJ7W0CDN';

let t: TestGatehouse;
let root: TestUser;
let owner: TestUser;
let member: TestUser;
let stranger: TestUser;
let orgId: string;
let ecPublic: Record<string, unknown>;
let ecPrivate: Record<string, unknown>;

beforeAll(async () => {
  t = await createTestGatehouse();
  const { user } = await t.services.accounts.createSuperadmin({ email: 'root@clients.test', password: 'root password long' });
  const login = await t.request('POST', '/api/auth/sign-in/email', { body: { email: 'root@clients.test', password: 'root password long' } });
  root = { cookie: login.cookie!, id: user.id, email: user.email, password: 'root password long' };
  owner = await t.signUp('owner@clients.test');
  member = await t.signUp('member@clients.test');
  stranger = await t.signUp('stranger@clients.test');
  orgId = await createOrg(t, owner, 'Clients Co');
  await addMember(t, owner, orgId, member, 'member');
  const pair = await generateKeyPair('ES256', { extractable: true });
  ecPublic = { ...(await exportJWK(pair.publicKey)), kid: 'rp-key-1', alg: 'ES256', use: 'sig' };
  ecPrivate = { ...(await exportJWK(pair.privateKey)), kid: 'rp-key-1' };
});
afterAll(async () => {
  await t.destroy();
});

const create = (body: unknown, as: TestUser = root) => t.request('POST', BASE, { as, body });
const counts = async () => ({
  clients: (await t.deps.db.selectFrom('oauth_clients').select('id').execute()).length,
  events: (await t.deps.db.selectFrom('audit_events').select('id').where('action', 'like', 'oauth_client.%').execute()).length,
});
const row = (id: string) => t.deps.db.selectFrom('oauth_clients').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
const events = (id: string) => t.deps.db.selectFrom('audit_events').selectAll().where('target_id', '=', id).orderBy('id').execute();
const valid = { name: 'Billing app', redirectUris: ['https://billing.example.com/callback'] };

describe('registering a client (superadmin)', () => {
  it('creates a confidential client with the defaults; the secret is shown once and only its SHA-256 is stored', async () => {
    const res = await create(valid);
    expect(res.status, res.text).toBe(201);
    const d = res.body.data;
    expect(d.clientId).toMatch(CLIENT_ID_PATTERN);
    expect(d.clientSecret).toMatch(/^gcs_[A-Za-z0-9_-]{43}$/); // 32 random bytes = 256 bits
    expect(d).toMatchObject({
      name: 'Billing app',
      tokenEndpointAuthMethod: 'client_secret_basic',
      redirectUris: ['https://billing.example.com/callback'],
      postLogoutRedirectUris: [],
      backchannelLogoutUri: null,
      grantTypes: ['authorization_code', 'refresh_token'],
      jwksUri: null,
      jwks: null,
      firstParty: false,
      hasSecret: true,
    });

    const stored = await row(d.clientId);
    expect(stored.secret_hash).toBe(sha256(d.clientSecret));
    for (const value of Object.values(stored)) expect(String(value)).not.toContain(d.clientSecret);

    // Never again: not in the read, the list, nor the audit log.
    const read = await t.request('GET', `${BASE}/${d.clientId}`, { as: root });
    expect(read.status).toBe(200);
    expect(read.body.data).not.toHaveProperty('clientSecret');
    expect(read.text).not.toContain(d.clientSecret);
    expect(read.text).not.toContain(stored.secret_hash!);
    const list = await t.request('GET', `${BASE}?limit=100`, { as: root });
    expect(list.body.data.items.map((c: { clientId: string }) => c.clientId)).toContain(d.clientId);
    expect(list.text).not.toContain(d.clientSecret);
    expect(list.text).not.toContain(stored.secret_hash!);

    const audit = await events(d.clientId);
    expect(audit.map((e) => e.action)).toEqual(['oauth_client.created']);
    expect(audit[0]).toMatchObject({ actor_type: 'user', actor_user_id: root.id, organization_id: null, target_type: 'oauth_client' });
    expect(JSON.parse(audit[0]!.metadata!)).toMatchObject({ name: 'Billing app', authMethod: 'client_secret_basic', redirectUris: valid.redirectUris });
    expect(audit[0]!.metadata).not.toContain(d.clientSecret);
    expect(audit[0]!.metadata).not.toContain(stored.secret_hash!);
  });

  it('creates a public client (none): no secret issued or stored', async () => {
    const res = await create({ name: 'SPA', redirectUris: ['http://localhost:5173/callback'], tokenEndpointAuthMethod: 'none', firstParty: true, grantTypes: ['authorization_code'] });
    expect(res.status, res.text).toBe(201);
    expect(res.body.data).not.toHaveProperty('clientSecret');
    expect(res.body.data).toMatchObject({ tokenEndpointAuthMethod: 'none', hasSecret: false, firstParty: true, grantTypes: ['authorization_code'] });
    expect((await row(res.body.data.clientId)).secret_hash).toBeNull();
  });

  it('creates private_key_jwt clients with a public JWKS or a jwksUri, without a secret', async () => {
    const withJwks = await create({ name: 'Batch', redirectUris: ['https://batch.example.com/cb'], tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [ecPublic] } });
    expect(withJwks.status, withJwks.text).toBe(201);
    expect(withJwks.body.data).not.toHaveProperty('clientSecret');
    expect(withJwks.body.data.jwks).toEqual({ keys: [ecPublic] });
    expect((await row(withJwks.body.data.clientId)).secret_hash).toBeNull();
    const withUri = await create({ name: 'Batch 2', redirectUris: ['https://batch.example.com/cb'], tokenEndpointAuthMethod: 'private_key_jwt', jwksUri: 'https://batch.example.com/.well-known/jwks.json' });
    expect(withUri.status, withUri.text).toBe(201);
    expect(withUri.body.data.jwksUri).toBe('https://batch.example.com/.well-known/jwks.json');
  });

  it('accepts http redirect URIs on the loopback hosts of RFC 8252, with any port, and every optional field', async () => {
    const res = await create({
      name: 'Desktop',
      redirectUris: ['http://localhost:8080/cb', 'http://127.0.0.1/cb', 'http://[::1]:3000/cb', 'https://desktop.example.com/cb?x=1'],
      postLogoutRedirectUris: ['https://desktop.example.com/bye', 'http://localhost:8080/bye'],
      backchannelLogoutUri: 'https://desktop.example.com/backchannel',
      tokenEndpointAuthMethod: 'client_secret_post',
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.data.redirectUris).toHaveLength(4);
    expect(res.body.data.backchannelLogoutUri).toBe('https://desktop.example.com/backchannel');
    expect(res.body.data.clientSecret).toBeTruthy();
  });

  it('accepts exactly 20 redirect URIs and a 100-character name', async () => {
    const uris = Array.from({ length: 20 }, (_, i) => `https://many.example.com/cb/${i}`);
    const res = await create({ name: 'n'.repeat(100), redirectUris: uris });
    expect(res.status, res.text).toBe(201);
  });
});

describe('validation: every refusal is 400 VALIDATION_FAILED with details.issues, and writes nothing', () => {
  const cases: Array<[string, () => unknown, string]> = [
    ['no name', () => ({ redirectUris: valid.redirectUris }), 'name'],
    ['a blank name', () => ({ ...valid, name: '   ' }), 'name'],
    ['a 101-character name', () => ({ ...valid, name: 'n'.repeat(101) }), 'name'],
    ['no redirect URI field', () => ({ name: 'x' }), 'redirectUris'],
    ['an empty redirect URI list', () => ({ ...valid, redirectUris: [] }), 'redirectUris'],
    ['21 redirect URIs', () => ({ ...valid, redirectUris: Array.from({ length: 21 }, (_, i) => `https://a.example.com/${i}`) }), 'redirectUris'],
    ['a duplicate redirect URI', () => ({ ...valid, redirectUris: ['https://a.example.com/cb', 'https://a.example.com/cb'] }), 'redirectUris.1'],
    ['a relative redirect URI', () => ({ ...valid, redirectUris: ['/callback'] }), 'redirectUris.0'],
    ['http on a public host (code interception on the network)', () => ({ ...valid, redirectUris: ['http://app.example.com/cb'] }), 'redirectUris.0'],
    ['http on a host that only starts with localhost', () => ({ ...valid, redirectUris: ['http://localhost.evil.test/cb'] }), 'redirectUris.0'],
    ['a custom scheme (another app can claim it)', () => ({ ...valid, redirectUris: ['com.example.app:/oauth2redirect'] }), 'redirectUris.0'],
    ['a javascript: URI', () => ({ ...valid, redirectUris: ['javascript:alert(1)'] }), 'redirectUris.0'],
    ['a fragment', () => ({ ...valid, redirectUris: ['https://app.example.com/cb#x'] }), 'redirectUris.0'],
    ['an empty fragment', () => ({ ...valid, redirectUris: ['https://app.example.com/cb#'] }), 'redirectUris.0'],
    ['user credentials in the URI', () => ({ ...valid, redirectUris: ['https://user:pw@app.example.com/cb'] }), 'redirectUris.0'],
    ['a wildcard host', () => ({ ...valid, redirectUris: ['https://*.example.com/cb'] }), 'redirectUris.0'],
    ['whitespace inside the URI', () => ({ ...valid, redirectUris: ['https://app.example.com/c b'] }), 'redirectUris.0'],
    ['a redirect URI that is not a string', () => ({ ...valid, redirectUris: [42] }), 'redirectUris.0'],
    ['a post-logout URI on plain http', () => ({ ...valid, postLogoutRedirectUris: ['http://app.example.com/bye'] }), 'postLogoutRedirectUris.0'],
    ['a duplicate post-logout URI', () => ({ ...valid, postLogoutRedirectUris: ['https://a.example.com/bye', 'https://a.example.com/bye'] }), 'postLogoutRedirectUris.1'],
    ['21 post-logout URIs', () => ({ ...valid, postLogoutRedirectUris: Array.from({ length: 21 }, (_, i) => `https://a.example.com/bye/${i}`) }), 'postLogoutRedirectUris'],
    ['a back-channel logout URI on plain http', () => ({ ...valid, backchannelLogoutUri: 'http://rp.example.com/bc' }), 'backchannelLogoutUri'],
    ['a back-channel logout URI with a fragment', () => ({ ...valid, backchannelLogoutUri: 'https://rp.example.com/bc#f' }), 'backchannelLogoutUri'],
    ['an unsupported auth method', () => ({ ...valid, tokenEndpointAuthMethod: 'client_secret_jwt' }), 'tokenEndpointAuthMethod'],
    ['private_key_jwt without keys', () => ({ ...valid, tokenEndpointAuthMethod: 'private_key_jwt' }), 'jwks'],
    ['a JWKS holding the private EC key (d)', () => ({ ...valid, tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [ecPrivate] } }), 'jwks.keys.0.d'],
    ['a JWKS holding a symmetric key (k)', () => ({ ...valid, tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }), 'jwks.keys.0.kty'],
    ['an RSA key with private members (p, q, dp, dq, qi)', () => ({ ...valid, tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB', p: 'x', q: 'x', dp: 'x', dq: 'x', qi: 'x' }] } }), 'jwks.keys.0.p'],
    ['an EC key that is not on its curve', () => ({ ...valid, tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [{ ...ecPublic, x: 'AAAA', y: 'AAAA' }] } }), 'jwks.keys.0'],
    ['an EC key without coordinates', () => ({ ...valid, tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [{ kty: 'EC', crv: 'P-256' }] } }), 'jwks.keys.0.x'],
    ['an empty JWKS', () => ({ ...valid, tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [] } }), 'jwks.keys'],
    ['both jwks and jwksUri', () => ({ ...valid, tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [ecPublic] }, jwksUri: 'https://a.example.com/jwks' }), 'jwks'],
    ['keys on a client that authenticates with a secret', () => ({ ...valid, jwks: { keys: [ecPublic] } }), 'jwks'],
    ['a jwksUri on plain http', () => ({ ...valid, tokenEndpointAuthMethod: 'private_key_jwt', jwksUri: 'http://a.example.com/jwks' }), 'jwksUri'],
    ['an unknown grant type (implicit)', () => ({ ...valid, grantTypes: ['implicit'] }), 'grantTypes.0'],
    ['refresh_token without authorization_code', () => ({ ...valid, grantTypes: ['refresh_token'] }), 'grantTypes'],
    ['an empty grant type list', () => ({ ...valid, grantTypes: [] }), 'grantTypes'],
    ['a duplicate grant type', () => ({ ...valid, grantTypes: ['authorization_code', 'authorization_code'] }), 'grantTypes.1'],
    ['firstParty that is not a boolean', () => ({ ...valid, firstParty: 'yes' }), 'firstParty'],
    ['a chosen clientSecret (unknown field)', () => ({ ...valid, clientSecret: 'my-weak-secret' }), 'clientSecret'],
    ['a chosen clientId (unknown field)', () => ({ ...valid, clientId: 'gh_client_01HZ3K5R4X9Y2V6QF8TJ7W0CDN' }), 'clientId'],
    ['snake_case metadata smuggled in (unknown field)', () => ({ ...valid, response_types: ['token'] }), 'response_types'],
  ];
  for (const [what, body, path] of cases) {
    it(`refuses ${what}`, async () => {
      const before = await counts();
      const res = await create(body());
      expect(res.status, res.text).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
      expect(res.body.details.issues.map((i: { path: string }) => i.path), res.text).toContain(path);
      expect(await counts()).toEqual(before);
    });
  }

  it('refuses a body that is not JSON, and an empty body', async () => {
    const before = await counts();
    expect((await t.request('POST', BASE, { as: root, rawBody: '{nope', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect((await t.request('POST', BASE, { as: root, body: {} })).status).toBe(400);
    expect(await counts()).toEqual(before);
  });

  it('the service refuses the same input when called without HTTP (the CLI path)', async () => {
    await expect(t.services.clients.create({ principal: null, ip: null, userAgent: null, requestId: null }, { name: 'x', redirectUris: ['http://evil.example.com/cb'] }))
      .rejects.toMatchObject({ code: 'VALIDATION_FAILED', details: { issues: [expect.objectContaining({ path: 'redirectUris.0' })] } });
  });
});

describe('reading, changing and deleting', () => {
  it('reads one client; an unknown id is 404 and a malformed one 400', async () => {
    const { clientId } = (await create({ ...valid, name: 'Readable' })).body.data;
    const res = await t.request('GET', `${BASE}/${clientId}`, { as: root });
    expect(res.body.data).toMatchObject({ clientId, name: 'Readable' });
    expect((await t.request('GET', `${BASE}/${FAKE_CLIENT}`, { as: root })).status).toBe(404);
    const bad = await t.request('GET', `${BASE}/not-a-client`, { as: root });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('VALIDATION_FAILED');
  });

  it('changes fields in place and audits before and after; the secret is kept', async () => {
    const created = (await create({ ...valid, name: 'Patchable' })).body.data;
    const hash = (await row(created.clientId)).secret_hash;
    t.clock.advance(1000);
    const res = await t.request('PATCH', `${BASE}/${created.clientId}`, {
      as: root,
      body: { name: 'Patched', redirectUris: ['https://new.example.com/cb'], firstParty: true, backchannelLogoutUri: 'https://new.example.com/bc', tokenEndpointAuthMethod: 'client_secret_post' },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).not.toHaveProperty('clientSecret');
    expect(res.body.data).toMatchObject({ clientId: created.clientId, name: 'Patched', redirectUris: ['https://new.example.com/cb'], firstParty: true, tokenEndpointAuthMethod: 'client_secret_post', hasSecret: true });
    expect(res.body.data.updatedAt > created.updatedAt).toBe(true);
    expect((await row(created.clientId)).secret_hash).toBe(hash);
    expect(verifyClientSecret(hash, created.clientSecret)).toBe(true);

    const audit = (await events(created.clientId)).filter((e) => e.action === 'oauth_client.updated');
    expect(audit).toHaveLength(1);
    const meta = JSON.parse(audit[0]!.metadata!);
    expect(meta.changed.sort()).toEqual(['authMethod', 'backchannelLogoutUri', 'firstParty', 'name', 'redirectUris']);
    expect(meta.before).toMatchObject({ name: 'Patchable', firstParty: false, backchannelLogoutUri: null, authMethod: 'client_secret_basic' });
    expect(meta.after).toMatchObject({ name: 'Patched', firstParty: true, backchannelLogoutUri: 'https://new.example.com/bc', authMethod: 'client_secret_post' });

    // null removes an optional field.
    const cleared = await t.request('PATCH', `${BASE}/${created.clientId}`, { as: root, body: { backchannelLogoutUri: null } });
    expect(cleared.body.data.backchannelLogoutUri).toBeNull();
  });

  it('rotateSecret issues a new secret once; the old one stops verifying; the audit log holds neither', async () => {
    const created = (await create({ ...valid, name: 'Rotating' })).body.data;
    const res = await t.request('PATCH', `${BASE}/${created.clientId}`, { as: root, body: { rotateSecret: true } });
    expect(res.status, res.text).toBe(200);
    const fresh = res.body.data.clientSecret as string;
    expect(fresh).toMatch(/^gcs_[A-Za-z0-9_-]{43}$/);
    expect(fresh).not.toBe(created.clientSecret);
    const stored = (await row(created.clientId)).secret_hash!;
    expect(stored).toBe(sha256(fresh));
    expect(verifyClientSecret(stored, fresh)).toBe(true);
    expect(verifyClientSecret(stored, created.clientSecret)).toBe(false);
    expect((await t.request('GET', `${BASE}/${created.clientId}`, { as: root })).text).not.toContain(fresh);

    const audit = await events(created.clientId);
    expect(audit.map((e) => e.action)).toEqual(['oauth_client.created', 'oauth_client.secret_rotated']);
    expect(JSON.parse(audit[1]!.metadata!)).toEqual({ name: 'Rotating', reason: 'rotate_requested' });
    for (const e of audit) {
      expect(JSON.stringify(e)).not.toContain(fresh);
      expect(JSON.stringify(e)).not.toContain(created.clientSecret);
      expect(JSON.stringify(e)).not.toContain(stored);
    }
  });

  it('a switch to none drops the secret; a switch back to a secret method issues a new one', async () => {
    const created = (await create({ ...valid, name: 'Switching' })).body.data;
    const toPublic = await t.request('PATCH', `${BASE}/${created.clientId}`, { as: root, body: { tokenEndpointAuthMethod: 'none' } });
    expect(toPublic.status, toPublic.text).toBe(200);
    expect(toPublic.body.data).toMatchObject({ tokenEndpointAuthMethod: 'none', hasSecret: false });
    expect((await row(created.clientId)).secret_hash).toBeNull();
    expect(await t.services.clients.findProviderClient(created.clientId)).not.toHaveProperty('client_secret');

    const rotatePublic = await t.request('PATCH', `${BASE}/${created.clientId}`, { as: root, body: { rotateSecret: true } });
    expect(rotatePublic.status).toBe(400);
    expect(rotatePublic.body.details.issues[0].path).toBe('rotateSecret');

    const back = await t.request('PATCH', `${BASE}/${created.clientId}`, { as: root, body: { tokenEndpointAuthMethod: 'client_secret_basic' } });
    expect(back.status, back.text).toBe(200);
    expect(back.body.data.clientSecret).toMatch(/^gcs_/);
    expect(back.body.data.clientSecret).not.toBe(created.clientSecret);
    expect((await row(created.clientId)).secret_hash).toBe(sha256(back.body.data.clientSecret));
    const actions = (await events(created.clientId)).map((e) => e.action);
    expect(actions).toEqual(['oauth_client.created', 'oauth_client.updated', 'oauth_client.updated', 'oauth_client.secret_rotated']);
  });

  it('checks the client as a whole after a change: private_key_jwt without keys is refused and nothing changes', async () => {
    const created = (await create({ ...valid, name: 'Whole' })).body.data;
    const before = await row(created.clientId);
    for (const body of [
      { tokenEndpointAuthMethod: 'private_key_jwt' },
      { jwks: { keys: [ecPublic] } },
      { redirectUris: ['http://evil.example.com/cb'] },
      { redirectUris: [] },
      { name: 'x', clientId: FAKE_CLIENT },
      { secretHash: 'aa' },
      {},
    ]) {
      const res = await t.request('PATCH', `${BASE}/${created.clientId}`, { as: root, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.code).toBe('VALIDATION_FAILED');
    }
    expect(await row(created.clientId)).toEqual(before);
    const ok = await t.request('PATCH', `${BASE}/${created.clientId}`, { as: root, body: { tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [ecPublic] } } });
    expect(ok.status, ok.text).toBe(200);
    expect((await row(created.clientId)).secret_hash).toBeNull();
    // Leaving private_key_jwt needs the keys removed explicitly.
    expect((await t.request('PATCH', `${BASE}/${created.clientId}`, { as: root, body: { tokenEndpointAuthMethod: 'none' } })).status).toBe(400);
    expect((await t.request('PATCH', `${BASE}/${created.clientId}`, { as: root, body: { tokenEndpointAuthMethod: 'none', jwks: null } })).status).toBe(200);
  });

  it('a PATCH that changes nothing writes nothing', async () => {
    const created = (await create({ ...valid, name: 'Same' })).body.data;
    const res = await t.request('PATCH', `${BASE}/${created.clientId}`, { as: root, body: { name: 'Same', rotateSecret: false } });
    expect(res.status).toBe(200);
    expect(res.body.data.updatedAt).toBe(created.updatedAt);
    expect((await events(created.clientId)).map((e) => e.action)).toEqual(['oauth_client.created']);
  });

  it('PATCH and DELETE of an unknown client are 404', async () => {
    expect((await t.request('PATCH', `${BASE}/${FAKE_CLIENT}`, { as: root, body: { name: 'x' } })).status).toBe(404);
    expect((await t.request('DELETE', `${BASE}/${FAKE_CLIENT}`, { as: root })).status).toBe(404);
  });

  it('deletes a client (200, data null): it is gone for the API and for the provider, and audited', async () => {
    const created = (await create({ ...valid, name: 'Doomed' })).body.data;
    const res = await t.request('DELETE', `${BASE}/${created.clientId}`, { as: root });
    expect(res.status).toBe(200);
    expect(res.body.data).toBeNull();
    expect((await t.request('GET', `${BASE}/${created.clientId}`, { as: root })).status).toBe(404);
    expect((await t.request('DELETE', `${BASE}/${created.clientId}`, { as: root })).status).toBe(404);
    expect(await t.services.clients.findProviderClient(created.clientId)).toBeUndefined();
    const audit = await events(created.clientId);
    expect(audit.map((e) => e.action)).toEqual(['oauth_client.created', 'oauth_client.deleted']);
    expect(JSON.parse(audit[1]!.metadata!)).toEqual({ name: 'Doomed' });
  });
});

describe('only platform superadmins manage clients (a client decides where users\' tokens go)', () => {
  let victim: string;
  let endpoints: Array<{ method: string; path: string; body?: unknown }>;
  beforeAll(async () => {
    victim = (await create({ ...valid, name: 'Victim app' })).body.data.clientId;
    endpoints = [
      { method: 'POST', path: BASE, body: { name: 'Token harvester', redirectUris: ['https://harvest.evil.test/cb'], firstParty: true } },
      { method: 'GET', path: BASE },
      { method: 'GET', path: `${BASE}/${victim}` },
      { method: 'PATCH', path: `${BASE}/${victim}`, body: { redirectUris: ['https://harvest.evil.test/cb'] } },
      { method: 'PATCH', path: `${BASE}/${victim}`, body: { rotateSecret: true } },
      { method: 'DELETE', path: `${BASE}/${victim}` },
    ];
  });

  async function expectRefusedEverywhere(who: { as?: TestUser; apiKey?: string }, status = 403, code = 'FORBIDDEN') {
    const before = await counts();
    const hash = (await row(victim)).secret_hash;
    for (const e of endpoints) {
      const res = await t.request(e.method, e.path, { ...who, ...(e.body ? { body: e.body } : {}) });
      expect(res.status, `${e.method} ${e.path}: ${res.text}`).toBe(status);
      expect(res.body.code).toBe(code);
      expect(res.text).not.toContain('Victim app');
    }
    expect(await counts()).toEqual(before);
    expect((await row(victim)).secret_hash).toBe(hash);
    expect((await row(victim)).redirect_uris).toBe(JSON.stringify(valid.redirectUris));
  }

  it('an organization owner cannot register a client to harvest users\' tokens, nor repoint, rotate, read or delete one', async () => {
    await expectRefusedEverywhere({ as: owner });
  });

  it('an ordinary member of an organization gets 403 on every clients endpoint', async () => {
    await expectRefusedEverywhere({ as: member });
  });

  it('a signed-in user with no organization gets 403 on every clients endpoint', async () => {
    await expectRefusedEverywhere({ as: stranger });
  });

  it("a non-superadmin's full-access API key cannot reach the clients API", async () => {
    const { key } = await createApiKey(t, owner, { name: 'owner full access' });
    await expectRefusedEverywhere({ apiKey: key });
    const { key: adminScoped } = await createApiKey(t, owner, { name: 'owner admin scope', scopes: ['admin:write'] });
    await expectRefusedEverywhere({ apiKey: adminScoped });
  });

  it("a superadmin's API key pinned to one organization cannot manage platform-wide clients", async () => {
    const rootOrg = await createOrg(t, root, 'Root Org For Clients');
    const { key } = await createApiKey(t, root, { name: 'root pinned', organizationId: rootOrg });
    await expectRefusedEverywhere({ apiKey: key });
  });

  it("a superadmin's key without the admin scope cannot reach the clients API; admin:read reads but cannot write", async () => {
    const { key: userOnly } = await createApiKey(t, root, { name: 'root user scope', scopes: ['user:write'] });
    await expectRefusedEverywhere({ apiKey: userOnly });
    const { key: readOnly } = await createApiKey(t, root, { name: 'root admin read', scopes: ['admin:read'] });
    expect((await t.request('GET', BASE, { apiKey: readOnly })).status).toBe(200);
    expect((await t.request('GET', `${BASE}/${victim}`, { apiKey: readOnly })).status).toBe(200);
    const before = await counts();
    for (const e of endpoints.filter((x) => x.method !== 'GET')) {
      const res = await t.request(e.method, e.path, { apiKey: readOnly, ...(e.body ? { body: e.body } : {}) });
      expect(res.status, `${e.method} ${e.path}`).toBe(403);
      expect(res.body.details.requiredScope).toBe('admin:write');
    }
    expect(await counts()).toEqual(before);
  });

  it("a superadmin's unpinned admin:write key manages clients; the audit names the key", async () => {
    const { key, id } = await createApiKey(t, root, { name: 'root admin write', scopes: ['admin:write'] });
    const res = await t.request('POST', BASE, { apiKey: key, body: { ...valid, name: 'Via key' } });
    expect(res.status, res.text).toBe(201);
    const [event] = await events(res.body.data.clientId);
    expect(event).toMatchObject({ actor_type: 'api_key', actor_api_key_id: id, actor_user_id: root.id });
  });

  it('a non-superadmin gets 403, not 400, for an invalid body: validation is not an oracle for outsiders', async () => {
    const res = await create({ name: '', redirectUris: ['myapp:/x'], bogus: 1 }, owner);
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('FORBIDDEN');
  });

  it('no credentials: 401 on every clients endpoint', async () => {
    await expectRefusedEverywhere({}, 401, 'UNAUTHENTICATED');
  });

  it("a cross-site write with the superadmin's cookie is refused (403 CSRF_REJECTED) and writes nothing", async () => {
    const before = await counts();
    const res = await t.request('POST', BASE, { as: root, body: { ...valid, name: 'CSRF' }, origin: 'https://evil.test' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('CSRF_REJECTED');
    const del = await t.request('DELETE', `${BASE}/${victim}`, { as: root, origin: null });
    expect(del.body.code).toBe('CSRF_REJECTED');
    expect(await counts()).toEqual(before);
  });
});

describe('the OpenAPI document', () => {
  it('describes every clients endpoint, with closed request bodies', async () => {
    const doc = (await t.request('GET', '/api/openapi.json')).body;
    expect(Object.keys(doc.paths[BASE]).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths[`${BASE}/{clientId}`]).sort()).toEqual(['delete', 'get', 'patch']);
    for (const op of [doc.paths[BASE].post, doc.paths[`${BASE}/{clientId}`].patch]) {
      const schema = op.requestBody.content['application/json'].schema;
      const resolved = schema.$ref ? doc.components.schemas[schema.$ref.split('/').pop()] : schema;
      expect(resolved.additionalProperties).toBe(false);
      expect(Object.keys(resolved.properties)).toContain('redirectUris');
    }
  });
});

describe('what the OpenID Provider reads', () => {
  it('findProviderClient returns oidc-provider metadata with the hash as client_secret', async () => {
    const created = (await create({
      name: 'Provider view',
      redirectUris: ['https://pv.example.com/cb'],
      postLogoutRedirectUris: ['https://pv.example.com/bye'],
      backchannelLogoutUri: 'https://pv.example.com/bc',
      firstParty: true,
    })).body.data;
    const meta = await t.services.clients.findProviderClient(created.clientId);
    expect(meta).toEqual({
      client_id: created.clientId,
      client_name: 'Provider view',
      client_secret: sha256(created.clientSecret),
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: ['https://pv.example.com/cb'],
      post_logout_redirect_uris: ['https://pv.example.com/bye'],
      backchannel_logout_uri: 'https://pv.example.com/bc',
      backchannel_logout_session_required: true,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: 'ES256',
      'gatehouse:first_party': true,
    });
    expect(JSON.stringify(meta)).not.toContain(created.clientSecret);
  });

  it('a public client has no client_secret; a private_key_jwt client carries its jwks; neither has back-channel members unless registered', async () => {
    const pub = (await create({ name: 'Public PV', redirectUris: ['http://127.0.0.1:9000/cb'], tokenEndpointAuthMethod: 'none' })).body.data;
    expect(await t.services.clients.findProviderClient(pub.clientId)).toEqual({
      client_id: pub.clientId,
      client_name: 'Public PV',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://127.0.0.1:9000/cb'],
      post_logout_redirect_uris: [],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: 'ES256',
      'gatehouse:first_party': false,
    });
    const pkj = (await create({ name: 'PKJ PV', redirectUris: ['https://pkj.example.com/cb'], tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [ecPublic] }, grantTypes: ['authorization_code'] })).body.data;
    const meta = await t.services.clients.findProviderClient(pkj.clientId);
    expect(meta).toMatchObject({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [ecPublic] }, grant_types: ['authorization_code'] });
    expect(meta).not.toHaveProperty('client_secret');
    expect(meta).not.toHaveProperty('jwks_uri');
    const uri = (await create({ name: 'PKJ URI', redirectUris: ['https://pkj.example.com/cb'], tokenEndpointAuthMethod: 'private_key_jwt', jwksUri: 'https://pkj.example.com/jwks' })).body.data;
    expect(await t.services.clients.findProviderClient(uri.clientId)).toMatchObject({ jwks_uri: 'https://pkj.example.com/jwks' });
  });

  it('oidc-provider itself accepts the metadata of every kind of client (confidential, public, private_key_jwt)', async () => {
    const made = [
      (await create({ name: 'OP basic', redirectUris: ['https://op.example.com/cb'], postLogoutRedirectUris: ['https://op.example.com/bye'], backchannelLogoutUri: 'https://op.example.com/bc', firstParty: true })).body.data,
      (await create({ name: 'OP post', redirectUris: ['https://op.example.com/cb'], tokenEndpointAuthMethod: 'client_secret_post', grantTypes: ['authorization_code'] })).body.data,
      (await create({ name: 'OP public', redirectUris: ['http://127.0.0.1:9000/cb', 'http://[::1]:9000/cb'], tokenEndpointAuthMethod: 'none' })).body.data,
      (await create({ name: 'OP pkj', redirectUris: ['https://op.example.com/cb'], tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [ecPublic] } })).body.data,
    ];
    const metas = await Promise.all(made.map((m) => t.services.clients.findProviderClient(m.clientId)));
    // The provider signs with ES256 (as Gatehouse's key ring does), so id_token_signed_response_alg ES256 is accepted.
    const signing = await generateKeyPair('ES256', { extractable: true });
    const provider = new Provider('http://localhost:3000', {
      jwks: { keys: [{ ...(await exportJWK(signing.privateKey)), kid: 'op-1', alg: 'ES256', use: 'sig' }] as never },
      clients: metas as unknown as ClientMetadata[],
      extraClientMetadata: { properties: ['gatehouse:first_party'] },
      features: { backchannelLogout: { enabled: true }, rpInitiatedLogout: { enabled: true } },
      clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    });
    for (const m of made) {
      const client = await provider.Client.find(m.clientId).catch((e: { error_description?: string }) => { throw new Error(`${m.name}: ${e.error_description}`); });
      expect(client, m.name).toBeDefined();
      expect(client!.tokenEndpointAuthMethod).toBe(m.tokenEndpointAuthMethod);
      expect(client!.redirectUris).toEqual(m.redirectUris);
    }
    const basic = await provider.Client.find(made[0].clientId);
    expect(basic!['gatehouse:first_party']).toBe(true);
    expect(basic!.backchannelLogoutUri).toBe('https://op.example.com/bc');
    expect(basic!.postLogoutRedirectUris).toEqual(['https://op.example.com/bye']);
  });

  it('findProviderClient answers undefined for an unknown id and for ids of the wrong shape (never a scan)', async () => {
    expect(await t.services.clients.findProviderClient(FAKE_CLIENT)).toBeUndefined();
    for (const id of ['', 'x', "gh_client_' or 1=1 --", 'gh_client_01hz3k5r4x9y2v6qf8tj7w0cdn', `${FAKE_CLIENT}x`]) {
      expect(await t.services.clients.findProviderClient(id)).toBeUndefined();
    }
  });

  it('verifyClientSecret accepts the secret and refuses a wrong one, the stored hash itself, and empty values', async () => {
    const created = (await create({ ...valid, name: 'Verify' })).body.data;
    const stored = (await row(created.clientId)).secret_hash!;
    expect(verifyClientSecret(stored, created.clientSecret)).toBe(true);
    expect(verifyClientSecret(stored, `${created.clientSecret}x`)).toBe(false);
    expect(verifyClientSecret(stored, created.clientSecret.slice(0, -1))).toBe(false);
    expect(verifyClientSecret(stored, 'gcs_wrong')).toBe(false);
    // Someone who read the provider's metadata or the database holds the hash, not the secret.
    expect(verifyClientSecret(stored, stored)).toBe(false);
    expect(verifyClientSecret(stored, stored.toUpperCase())).toBe(false);
    expect(verifyClientSecret(stored, '')).toBe(false);
    expect(verifyClientSecret(null, created.clientSecret)).toBe(false);
    expect(verifyClientSecret('', '')).toBe(false);
    expect(verifyClientSecret(stored, 'x'.repeat(100_000))).toBe(false);
  });
});
