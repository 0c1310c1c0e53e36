/**
 * The session check's fast path (src/auth/session-check.ts) answers `GET /api/auth/session` with a
 * cookie before the Hono app. These tests hold it to the Hono route's answer — same status, body
 * and headers — and show which requests it must leave to Hono (every other credential, no cookie,
 * a failed lookup), counting the requests that reach the Hono app.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as honoParseCookies } from 'hono/utils/cookie';
import { sessionTokenOf } from '../../src/auth/session-check.js';
import { requestListener, type Gatehouse } from '../../src/server.js';
import { SESSION_TOUCH_INTERVAL_MS } from '../../src/sessions/service.js';
import { createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';

let t: TestGatehouse;
let server: Server;
let base: string;
let honoCalls = 0;
let lookupFails = false;

beforeAll(async () => {
  t = await createTestGatehouse();
  const app = { fetch: (...args: Parameters<TestGatehouse['app']['fetch']>) => (honoCalls++, t.app.fetch(...args)) } as unknown as Gatehouse['app'];
  const realAuthenticate = t.services.sessions.authenticate;
  const sessions = {
    ...t.services.sessions,
    authenticate: (token: string) => (lookupFails ? Promise.reject(Object.assign(new Error('connection terminated'), { code: '57P01' })) : realAuthenticate(token)),
  };
  server = createServer(requestListener({ app, deps: t.deps, services: { ...t.services, sessions } }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await t.destroy();
});

/** Over real HTTP through requestListener; `viaHono` = whether the Hono app saw the request. */
async function overHttp(headers: Record<string, string>) {
  const before = honoCalls;
  const res = await fetch(`${base}/api/auth/session`, { headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, viaHono: honoCalls > before };
}

/** The Hono route's own answer (in process, no fast path). */
async function viaHonoApp(headers: Record<string, string>) {
  const res = await t.app.request('/api/auth/session', { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Headers that are the transport's or differ per request by design. */
const PER_REQUEST = new Set(['date', 'connection', 'keep-alive', 'x-request-id', 'content-length', 'transfer-encoding']);
const stable = (h: Headers) => Object.fromEntries([...h].filter(([k]) => !PER_REQUEST.has(k)).sort(([a], [b]) => a.localeCompare(b)));

async function expectSameAnswer(headers: Record<string, string>, status: number) {
  const fast = await overHttp(headers);
  const hono = await viaHonoApp(headers);
  expect(fast.viaHono, 'answered by the fast path').toBe(false);
  expect(fast.status).toBe(status);
  expect(hono.status).toBe(status);
  expect(JSON.parse(fast.text)).toEqual(JSON.parse(hono.text));
  expect(stable(fast.headers)).toEqual(stable(hono.headers));
  expect(Number(fast.headers.get('content-length'))).toBe(Buffer.byteLength(fast.text));
  expect(fast.headers.get('x-request-id')).toMatch(/^[0-9A-Z]{26}$/);
  return fast;
}

describe('GET /api/auth/session fast path', () => {
  let user: TestUser;
  beforeAll(async () => {
    user = await t.signUp('fast@session-check.example');
    await createOrg(t, user, 'Fast Path Org', 'fast-path');
  });

  it('answers a live session exactly as the Hono route does (body with memberships, security headers)', async () => {
    const fast = await expectSameAnswer({ cookie: `gatehouse_session=${user.cookie}` }, 200);
    const data = JSON.parse(fast.text).data;
    expect(data.user.email).toBe('fast@session-check.example');
    expect(data.memberships).toEqual([expect.objectContaining({ slug: 'fast-path', role: 'owner' })]);
    expect(fast.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(fast.headers.get('strict-transport-security')).toContain('max-age=');
  });

  it('finds the session cookie among other cookies', async () => {
    await expectSameAnswer({ cookie: `theme=dark; gatehouse_session=${user.cookie}; other=1` }, 200);
  });

  it('shadowing cookie: a second gatehouse_session, or one split by spaces, quotes or escapes, is read as the Hono route reads it', async () => {
    const other = await t.signUp('shadow@session-check.example');
    // Hono's parser takes the first valid pair of the name; the fast path must not take another.
    await expectSameAnswer({ cookie: `gatehouse_session=${user.cookie}; gatehouse_session=${other.cookie}` }, 200);
    const first = JSON.parse((await expectSameAnswer({ cookie: `gatehouse_session =${other.cookie}; gatehouse_session=${user.cookie}` }, 200)).text).data;
    expect(first.user.email).toBe('shadow@session-check.example');
    await expectSameAnswer({ cookie: `x_gatehouse_session=${other.cookie}; gatehouse_session="${user.cookie}"` }, 200);
    await expectSameAnswer({ cookie: `gatehouse_session=${encodeURIComponent(user.cookie).replace(/-/g, '%2D')}` }, 200);
  });

  it('reads the session cookie exactly as hono\'s parser does, for any Cookie header (differential fuzz)', () => {
    const pieces = ['gatehouse_session', 'gatehouse_session=', 'x', '=', ';', '; ', ' ', '\t', '"', '%', '%2D', 'gs_abc-DEF_123', 'a=b', 'é', ',', 'gatehouse_sessio'];
    let seed = 7; // mulberry32: the same headers on every run
    const next = (n: number) => {
      seed = (seed + 0x6d2b79f5) | 0;
      let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return ((x ^ (x >>> 14)) >>> 0) % n;
    };
    const headers = ['', 'gatehouse_session=', 'gatehouse_session=gs_a', ' gatehouse_session=gs_a ', 'a=1;gatehouse_session=gs_a', 'a=1;\tgatehouse_session=gs_a;b=2', 'ygatehouse_session=gs_a', 'gatehouse_session=gs_a; gatehouse_session=gs_b', 'gatehouse_session=; gatehouse_session=gs_b', 'gatehouse_session=a b; gatehouse_session=gs_c', 'a=gatehouse_session; gatehouse_session=gs_d', 'gatehouse_session=gs%2Da', 'gatehouse_session="gs_a"', 'gatehouse_session=gs_a\t;'];
    for (let i = 0; i < 20_000; i++) {
      let h = '';
      for (let k = next(8); k >= 0; k--) h += pieces[next(pieces.length)];
      headers.push(h);
    }
    for (const h of headers) expect(sessionTokenOf(h), JSON.stringify(h)).toBe(honoParseCookies(h, 'gatehouse_session')['gatehouse_session']);
  });

  it('forged cookie: refuses it with the route\'s 401 envelope, never a session', async () => {
    const fast = await expectSameAnswer({ cookie: 'gatehouse_session=gs_forged-token-that-was-never-issued' }, 401);
    expect(JSON.parse(fast.text)).toMatchObject({ success: false, code: 'UNAUTHENTICATED' });
  });

  it('a session whose second factor is pending: answered as the route answers it (mfa "pending")', async () => {
    const pending = await t.signUp('pending@session-check.example');
    await t.deps.db.updateTable('sessions').set({ mfa_state: 'pending' }).where('user_id', '=', pending.id).execute();
    t.deps.sessionCache.clear();
    const fast = await expectSameAnswer({ cookie: `gatehouse_session=${pending.cookie}` }, 200);
    expect(JSON.parse(fast.text).data.session.mfa).toBe('pending');
  });

  it('stale answer: a kept answer is made afresh once the user, a membership or the idle expiry changed', async () => {
    const who = await t.signUp('kept@session-check.example');
    const cookie = { cookie: `gatehouse_session=${who.cookie}` };
    const first = JSON.parse((await expectSameAnswer(cookie, 200)).text).data;
    expect(first.user.name).toBeNull();
    expect(first.memberships).toEqual([]);
    // Answered twice from the same cache entry: the kept answer.
    expect(JSON.parse((await expectSameAnswer(cookie, 200)).text).data).toEqual(first);

    const renamed = await fetch(`${base}/api/user/me`, { method: 'PATCH', headers: { ...cookie, origin: 'http://localhost:3000', 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Renée Ünïcødé 名前' }) });
    expect(renamed.status, await renamed.text()).toBe(200);
    expect(JSON.parse((await expectSameAnswer(cookie, 200)).text).data.user.name).toBe('Renée Ünïcødé 名前');

    const orgId = await createOrg(t, who, 'Kept Answer Org', 'kept-answer');
    expect(JSON.parse((await expectSameAnswer(cookie, 200)).text).data.memberships).toEqual([expect.objectContaining({ name: 'Kept Answer Org', role: 'owner' })]);
    // A rename drops the cached membership lists, not the cached session.
    const rename = await fetch(`${base}/api/user/organizations/${orgId}`, { method: 'PATCH', headers: { ...cookie, origin: 'http://localhost:3000', 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Renamed Org' }) });
    expect(rename.status, await rename.text()).toBe(200);
    expect(JSON.parse((await expectSameAnswer(cookie, 200)).text).data.memberships).toEqual([expect.objectContaining({ name: 'Renamed Org' })]);

    // The idle expiry slides in place on a cached entry: read just before the touch interval
    // ends (the entry is at most SESSION_CACHE_MAX_AGE_MS old), then hit just after it.
    const before = JSON.parse((await expectSameAnswer(cookie, 200)).text).data.session.expiresAt;
    t.clock.advance(SESSION_TOUCH_INTERVAL_MS - 2_000);
    expect(JSON.parse((await overHttp(cookie)).text).data.session.expiresAt).toBe(before);
    t.clock.advance(3_000);
    const slid = JSON.parse((await overHttp(cookie)).text).data.session.expiresAt;
    expect(Date.parse(slid) - Date.parse(before)).toBe(SESSION_TOUCH_INTERVAL_MS + 1_000);
  });

  it('signed-out session replayed: refused at once on the fast path', async () => {
    const gone = await t.signUp('gone@session-check.example');
    expect((await overHttp({ cookie: `gatehouse_session=${gone.cookie}` })).status).toBe(200);
    const out = await fetch(`${base}/api/auth/sign-out`, { method: 'POST', headers: { cookie: `gatehouse_session=${gone.cookie}`, origin: 'http://localhost:3000' } });
    expect(out.status, await out.text()).toBe(200);
    const after = await overHttp({ cookie: `gatehouse_session=${gone.cookie}` });
    expect(after.viaHono).toBe(false);
    expect(after.status).toBe(401);
  });

  it('keeps a well-formed X-Request-Id and replaces a malformed one (log injection)', async () => {
    const kept = await overHttp({ cookie: `gatehouse_session=${user.cookie}`, 'x-request-id': 'trace-42.a:b' });
    expect(kept.headers.get('x-request-id')).toBe('trace-42.a:b');
    const replaced = await overHttp({ cookie: `gatehouse_session=${user.cookie}`, 'x-request-id': 'bad id\twith "quotes"' });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9A-Z]{26}$/);
  });

  it('leaves every other credential to Hono: an API key, a bearer token, a setup link beside the cookie', async () => {
    const cookie = `gatehouse_session=${user.cookie}`;
    const apiKey = await overHttp({ cookie, 'x-api-key': 'gk_not-a-real-key' });
    expect(apiKey.viaHono).toBe(true);
    expect(apiKey.status).toBe(401);
    const bearer = await overHttp({ cookie, authorization: 'Bearer gk_not-a-real-key' });
    expect(bearer.viaHono).toBe(true);
    expect(bearer.status).toBe(401);
    const link = await overHttp({ cookie, 'x-setup-link': 'sl_unknown' });
    expect(link.viaHono).toBe(true);
    expect(link.status).toBe(401);
  });

  it('leaves a request without the session cookie, another method or another path to Hono', async () => {
    expect((await overHttp({})).viaHono).toBe(true);
    expect((await overHttp({ cookie: 'theme=dark' })).viaHono).toBe(true);
    const before = honoCalls;
    const head = await fetch(`${base}/api/auth/session`, { method: 'HEAD', headers: { cookie: `gatehouse_session=${user.cookie}` } });
    expect(head.status).toBeLessThan(500);
    const sub = await fetch(`${base}/api/auth/session/extra`, { headers: { cookie: `gatehouse_session=${user.cookie}` } });
    expect(sub.status).toBe(404);
    expect(honoCalls - before).toBe(2);
  });

  it('database away during the lookup: hands the request to Hono, which answers it in its own right', async () => {
    lookupFails = true;
    try {
      const res = await overHttp({ cookie: `gatehouse_session=${user.cookie}` });
      expect(res.viaHono).toBe(true);
      expect(res.status).toBe(200); // the Hono app uses the real service, whose database is up
    } finally {
      lookupFails = false;
    }
  });

  it('while draining, tells the client to close the connection', async () => {
    const drained = await createTestGatehouse();
    const s = createServer(requestListener(drained));
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    try {
      const u = await drained.signUp('drain@session-check.example');
      drained.deps.lifecycle.drain();
      const res = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/api/auth/session`, { headers: { cookie: `gatehouse_session=${u.cookie}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('connection')).toBe('close');
    } finally {
      await new Promise((resolve) => s.close(resolve));
      await drained.destroy();
    }
  });

  it('counts its answers in the request metrics under the route, as the Hono path does', async () => {
    const count = async () => {
      const text = await (await t.app.request('/metrics')).text();
      const line = text.split('\n').find((l) => l.startsWith('gatehouse_http_requests_total{') && l.includes('route="/api/auth/session"') && l.includes('status="200"'));
      return line ? Number(line.split(' ').pop()) : 0;
    };
    const before = await count();
    await overHttp({ cookie: `gatehouse_session=${user.cookie}` });
    await overHttp({ cookie: `gatehouse_session=${user.cookie}` });
    expect(await count()).toBe(before + 2);
  });
});
