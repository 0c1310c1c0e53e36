import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { buildGatehouse } from '../../src/server.js';
import { createApiKey, createOrg, createTestGatehouse, testKeySpec, type TestGatehouse, type TestUser } from '../helpers/app.js';

let t: TestGatehouse;
let user: TestUser;
beforeAll(async () => {
  t = await createTestGatehouse();
  user = await t.signUp('http@example.com');
});
afterAll(async () => {
  await t.destroy();
});

describe('envelope and errors', () => {
  it('answers an unknown route with a 404 envelope', async () => {
    const res = await t.request('GET', '/api/nope');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ success: false, status: 404, code: 'NOT_FOUND', message: 'No route for GET /api/nope' });
    expect(res.headers.get('x-request-id')).toBeTruthy();
  });

  it('refuses a body over 1 MiB with 413 and changes nothing', async () => {
    const res = await t.request('POST', '/api/user/organizations', { as: user, rawBody: JSON.stringify({ name: 'x'.repeat(1024 * 1024 + 10) }), headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await t.deps.db.selectFrom('organizations').select('id').execute()).toHaveLength(0);
  });

  it('answers malformed JSON with 400 VALIDATION_FAILED', async () => {
    const res = await t.request('POST', '/api/auth/sign-in/email', { rawBody: '{"email": ', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
  });

  it('answers a non-JSON body with 415', async () => {
    const res = await t.request('POST', '/api/auth/sign-in/email', { rawBody: 'email=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.status).toBe(415);
    expect(res.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers a crash with 500 INTERNAL, the request id, and no internals; the log has them', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } });
    const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: 'sqlite::memory:', GATEHOUSE_SECRET_KEYS: testKeySpec() });
    const gh = await buildGatehouse(config, { logger: pino({ level: 'info' }, sink) });
    gh.app.get('/api/boom', () => {
      throw new Error('database password is hunter2');
    });
    const res = await gh.app.request('/api/boom', { headers: { 'x-request-id': 'req-123' } });
    expect(res.status).toBe(500);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({ success: false, status: 500, code: 'INTERNAL', message: 'Internal error (request id req-123)' });
    expect(lines.join('')).toContain('hunter2');
    expect(lines.join('')).toContain('req-123');
    await gh.close();
  });

  it('echoes a sane X-Request-Id and replaces an unsafe one', async () => {
    expect((await t.request('GET', '/healthz', { headers: { 'x-request-id': 'abc-1' } })).headers.get('x-request-id')).toBe('abc-1');
    const bad = (await t.request('GET', '/healthz', { headers: { 'x-request-id': 'a b<script>' } })).headers.get('x-request-id');
    expect(bad).toMatch(/^[0-9A-Z]{26}$/);
  });

  it('serves health, readiness, the OpenAPI document and its rendered docs', async () => {
    expect((await t.request('GET', '/healthz')).body.data.status).toBe('up');
    expect((await t.request('GET', '/readyz')).body.data.database).toBe('up');
    const doc = await t.request('GET', '/api/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.0.3');
    expect(Object.keys(doc.body.paths)).toContain('/api/auth/sign-in/email');
    expect(doc.body.info.description).toContain('SSO_REQUIRED');
    const signUp = doc.body.paths['/api/auth/sign-up/email'].post;
    expect(signUp.requestBody.content['application/json'].schema.additionalProperties).toBe(false);
    const docs = await t.request('GET', '/api/docs');
    expect(docs.headers.get('content-type')).toMatch(/text\/html/);
    expect(docs.text).toContain('/api/user/organizations/{organizationId}/members');
    expect(docs.text).toContain('INVALID_CREDENTIALS');
  });

  it('/readyz answers 503 when the database is gone', async () => {
    const t2 = await createTestGatehouse();
    await t2.close();
    const res = await t2.request('GET', '/readyz');
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('SERVICE_UNAVAILABLE');
  });
});

describe('CSRF', () => {
  it('refuses a cookie-authenticated write without Origin', async () => {
    const res = await t.request('POST', '/api/user/organizations', { as: user, body: { name: 'CSRF' }, origin: null });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('CSRF_REJECTED');
  });

  it('refuses a cookie-authenticated write from an untrusted Origin', async () => {
    const res = await t.request('POST', '/api/user/organizations', { as: user, body: { name: 'CSRF' }, origin: 'https://evil.example' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('CSRF_REJECTED');
    expect(await t.deps.db.selectFrom('organizations').select('id').where('name', '=', 'CSRF').execute()).toHaveLength(0);
  });

  it('refuses a sign-in posted from an untrusted Origin (login CSRF)', async () => {
    const res = await t.request('POST', '/api/auth/sign-in/email', { body: { email: user.email, password: user.password }, origin: 'https://evil.example' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('CSRF_REJECTED');
  });

  it('allows the trusted Origin, an extra trusted origin, and API-key writes without Origin', async () => {
    expect((await t.request('POST', '/api/user/organizations', { as: user, body: { name: 'Ok1' } })).status).toBe(201);
    const { key } = await createApiKey(t, user);
    expect((await t.request('POST', '/api/user/organizations', { apiKey: key, body: { name: 'Ok2' }, origin: null })).status).toBe(201);
    const t2 = await createTestGatehouse({ env: { GATEHOUSE_TRUSTED_ORIGINS: 'https://app.example.com' } });
    const u2 = await t2.signUp('csrf2@example.com');
    expect((await t2.request('POST', '/api/user/organizations', { as: u2, body: { name: 'Ok3' }, origin: 'https://app.example.com' })).status).toBe(201);
    await t2.destroy();
  });

  it('does not apply to reads', async () => {
    expect((await t.request('GET', '/api/user/me', { as: user, origin: 'https://evil.example', headers: { origin: 'https://evil.example' } })).status).toBe(200);
  });
});

describe('authentication headers', () => {
  it('accepts X-Api-Key and Authorization: Bearer; rejects a malformed Authorization header', async () => {
    const { key } = await createApiKey(t, user);
    expect((await t.request('GET', '/api/user/me', { apiKey: key })).body.data.email).toBe(user.email);
    expect((await t.request('GET', '/api/user/me', { bearer: key })).body.data.email).toBe(user.email);
    const bad = await t.request('GET', '/api/user/me', { headers: { authorization: 'Basic abc' } });
    expect(bad.status).toBe(401);
    expect((await t.request('GET', '/api/user/me', { apiKey: 'gk_nope' })).status).toBe(401);
  });

  it('marks the cookie Secure when the base URL is https', async () => {
    const t2 = await createTestGatehouse({ env: { GATEHOUSE_BASE_URL: 'https://auth.example.com' } });
    const res = await t2.request('POST', '/api/auth/sign-up/email', { body: { email: 's@example.com', password: 'long enough pw' }, origin: 'https://auth.example.com' });
    expect(res.headers.get('set-cookie')).toMatch(/; Secure/);
    await t2.destroy();
  });
});

describe('logs', () => {
  it('never contain passwords, session tokens or API keys', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } });
    const config = loadConfig({ NODE_ENV: 'test', DATABASE_URL: 'sqlite::memory:', GATEHOUSE_SECRET_KEYS: testKeySpec(), GATEHOUSE_LOG_LEVEL: 'trace' });
    const gh = await buildGatehouse(config, { logger: pino({ level: 'trace' }, sink) });
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      gh.app.request(path, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'http://localhost:3000', ...headers }, body: JSON.stringify(body) });
    const password = 'Pa55word-secret-value';
    const signUp = await post('/api/auth/sign-up/email', { email: 'log@example.com', password });
    const cookie = /gatehouse_session=([^;]+)/.exec(signUp.headers.get('set-cookie')!)![1]!;
    await post('/api/auth/sign-in/email', { email: 'log@example.com', password: 'wrong-' + password });
    const keyRes = await post('/api/user/api-keys', { name: 'k' }, { cookie: `gatehouse_session=${cookie}` });
    const key = ((await keyRes.json()) as { data: { key: string } }).data.key;
    await gh.app.request('/api/user/me', { headers: { 'x-api-key': key } });
    await gh.app.request('/api/user/me?token=' + key, { headers: { authorization: `Bearer ${key}` } });
    const all = lines.join('');
    expect(all).toContain('"path":"/api/user/me"');
    expect(all).not.toContain(password);
    expect(all).not.toContain(cookie);
    expect(all).not.toContain(key);
    await gh.close();
  });
});

describe('organization id in other routes', () => {
  it('pinning a key to an organization the caller cannot see answers 404', async () => {
    const other = await t.signUp('other@example.com');
    const org = await createOrg(t, other, 'Hidden');
    const res = await t.request('POST', '/api/user/api-keys', { as: user, body: { name: 'x', organizationId: org } });
    expect(res.status).toBe(404);
  });
});
