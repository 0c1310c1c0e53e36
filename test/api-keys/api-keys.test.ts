import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';

let t: TestGatehouse;
let user: TestUser;
beforeAll(async () => {
  t = await createTestGatehouse();
  user = await t.signUp('keys@example.com');
});
afterAll(async () => {
  await t.destroy();
});

describe('API keys', () => {
  it('shows the key once with the gk_ prefix and ≥128 bits, stores only its SHA-256', async () => {
    const res = await t.request('POST', '/api/user/api-keys', { as: user, body: { name: 'CI' } });
    expect(res.status).toBe(201);
    const key: string = res.body.data.key;
    expect(key).toMatch(/^gk_[A-Za-z0-9_-]{32}$/); // 24 random bytes = 192 bits
    expect(res.body.data.apiKey).toMatchObject({ name: 'CI', prefix: key.slice(0, 10), scopes: null, organizationId: null, expiresAt: null, lastUsedAt: null });
    const row = await t.deps.db.selectFrom('api_keys').selectAll().where('id', '=', res.body.data.apiKey.id).executeTakeFirstOrThrow();
    expect(row.key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(row)).not.toContain(key);
    const list = await t.request('GET', '/api/user/api-keys', { as: user });
    expect(list.text).not.toContain(key);
    expect(list.body.data.items.map((k: { id: string }) => k.id)).toContain(res.body.data.apiKey.id);
  });

  it('records lastUsedAt when the key is used', async () => {
    const { key, id } = await createApiKey(t, user, { name: 'used' });
    await t.request('GET', '/api/user/me', { apiKey: key });
    const list = await t.request('GET', '/api/user/api-keys', { as: user });
    expect(list.body.data.items.find((k: { id: string }) => k.id === id).lastUsedAt).toBe(t.clock.now().toISOString());
  });

  it('a revoked key answers 401 and disappears from the list', async () => {
    const { key, id } = await createApiKey(t, user, { name: 'revoke me' });
    expect((await t.request('DELETE', `/api/user/api-keys/${id}`, { as: user })).status).toBe(200);
    const res = await t.request('GET', '/api/user/me', { apiKey: key });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('UNAUTHENTICATED');
    expect((await t.request('DELETE', `/api/user/api-keys/${id}`, { as: user })).status).toBe(404);
  });

  it('an expired key answers 401; an expiry in the past is refused at creation', async () => {
    const expiresAt = new Date(t.clock.now().getTime() + 3600_000).toISOString();
    const { key } = await createApiKey(t, user, { name: 'short', expiresAt });
    expect((await t.request('GET', '/api/user/me', { apiKey: key })).status).toBe(200);
    t.clock.advance(3600_000 + 1);
    expect((await t.request('GET', '/api/user/me', { apiKey: key })).status).toBe(401);
    t.clock.advance(-(3600_000 + 1));
    const past = await t.request('POST', '/api/user/api-keys', { as: user, body: { name: 'past', expiresAt: '2000-01-01T00:00:00Z' } });
    expect(past.status).toBe(400);
  });

  it("another user cannot revoke or list my keys", async () => {
    const { key, id } = await createApiKey(t, user, { name: 'mine' });
    const eve = await t.signUp('eve@example.com');
    expect((await t.request('DELETE', `/api/user/api-keys/${id}`, { as: eve })).status).toBe(404);
    expect((await t.request('GET', '/api/user/api-keys', { as: eve })).text).not.toContain(id);
    expect((await t.request('GET', '/api/user/me', { apiKey: key })).status).toBe(200);
  });

  it('scopes narrow what a key may do; write implies read', async () => {
    const { key: readOnly } = await createApiKey(t, user, { name: 'ro', scopes: ['organizations:read'] });
    const { key: orgWrite } = await createApiKey(t, user, { name: 'rw', scopes: ['organizations:write'] });
    expect((await t.request('GET', '/api/user/organizations', { apiKey: readOnly })).status).toBe(200);
    const denied = await t.request('POST', '/api/user/organizations', { apiKey: readOnly, body: { name: 'No' } });
    expect(denied.status).toBe(403);
    expect(denied.body.details.requiredScope).toBe('organizations:write');
    expect((await t.request('GET', '/api/user/me', { apiKey: readOnly })).status).toBe(403);
    expect((await t.request('POST', '/api/user/organizations', { apiKey: orgWrite, body: { name: 'Yes' } })).status).toBe(201);
    expect((await t.request('GET', '/api/user/organizations', { apiKey: orgWrite })).status).toBe(200);
    const bad = await t.request('POST', '/api/user/api-keys', { as: user, body: { name: 'x', scopes: ['everything'] } });
    expect(bad.status).toBe(400);
  });

  it('a pinned key cannot create organizations', async () => {
    const org = await createOrg(t, user, 'Pin Home');
    const { key } = await createApiKey(t, user, { name: 'pinned', organizationId: org });
    expect((await t.request('POST', '/api/user/organizations', { apiKey: key, body: { name: 'Escape' } })).status).toBe(403);
  });

  it('API key requests are not subject to CSRF and need no session', async () => {
    const { key } = await createApiKey(t, user, { name: 'server' });
    const res = await t.request('PATCH', '/api/user/me', { apiKey: key, body: { name: 'From API' }, origin: 'https://elsewhere.example' });
    expect(res.status).toBe(200);
  });
});
