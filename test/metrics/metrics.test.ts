import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { ConfigError, loadConfig } from '../../src/config.js';
import { insertOutboxRows } from '../../src/logout/store.js';
import { requestListener } from '../../src/server.js';
import { AppError } from '../../src/http/errors.js';
import { countSsoLoginStartFailures, countSsoSignIns } from '../../src/metrics/sign-ins.js';
import type { SsoCompletion } from '../../src/sso/completion.js';
import { SsoLoginError } from '../../src/sso/errors.js';
import { newId } from '../../src/ids.js';
import { createOrg, createTestGatehouse, ENGINE, type TestGatehouse, type TestOptions } from '../helpers/app.js';
import { postgresAvailable } from '../helpers/postgres.js';

const instances: TestGatehouse[] = [];
async function gatehouse(options: TestOptions = {}): Promise<TestGatehouse> {
  const t = await createTestGatehouse(options);
  instances.push(t);
  return t;
}
afterAll(async () => {
  for (const t of instances) await t.destroy();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (enough of the format for these tests). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample of `name` whose labels include `labels` (undefined when there is none). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  expect(found.length, `${name} ${JSON.stringify(labels)} matches ${found.length} samples`).toBeLessThanOrEqual(1);
  return found[0]?.value;
}

async function scrape(t: TestGatehouse, headers: Record<string, string> = {}) {
  const res = await t.request('GET', '/metrics', { headers });
  expect(res.status, res.text).toBe(200);
  return { res, samples: parse(res.text) };
}

describe('GET /metrics', () => {
  it('answers the Prometheus text format with its registry content type and process metrics of its own registry', async () => {
    const t = await gatehouse();
    const { res, samples } = await scrape(t);
    expect(res.headers.get('content-type')).toBe(new Registry().contentType);
    expect(value(samples, 'process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    expect(value(samples, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });

  it('counts a request under its route pattern and status, with its latency', async () => {
    const t = await gatehouse();
    const owner = await t.signUp('owner@metrics.example');
    const orgId = await createOrg(t, owner, 'Metrics', 'metrics');
    expect((await t.request('GET', `/api/user/organizations/${orgId}/domains`, { as: owner })).status).toBe(200);
    expect((await t.request('GET', `/api/user/organizations/${orgId}/domains`)).status).toBe(401);
    const { res, samples } = await scrape(t);
    const route = '/api/user/organizations/:organizationId/domains';
    expect(value(samples, 'gatehouse_http_requests_total', { method: 'GET', route, status: '200' })).toBe(1);
    expect(value(samples, 'gatehouse_http_requests_total', { method: 'GET', route, status: '401' })).toBe(1);
    expect(value(samples, 'gatehouse_http_request_duration_seconds_count', { method: 'GET', route })).toBe(2);
    expect(res.text).not.toContain(orgId);
  });

  it('counts a request no route matches as unmatched, never by its path', async () => {
    const t = await gatehouse();
    expect((await t.request('GET', '/no/such/page-4711')).status).toBe(404);
    const { res, samples } = await scrape(t);
    expect(value(samples, 'gatehouse_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(res.text).not.toContain('page-4711');
  });

  it('never shows a token that was in a path (setup links, invitations)', async () => {
    const t = await gatehouse();
    const setupToken = 'setupTOKENsecret0123456789abcdefABCDEF';
    const invitationToken = 'invitationTOKENsecret0123456789abcdef';
    await t.request('GET', `/setup/${setupToken}`);
    await t.request('GET', `/invitations/${invitationToken}`);
    await t.request('POST', `/api/user/invitations/${invitationToken}/accept`);
    const { res, samples } = await scrape(t);
    expect(res.text).not.toContain(setupToken);
    expect(res.text).not.toContain(invitationToken);
    expect(res.text).not.toContain('TOKENsecret');
    expect(samples.some((s) => s.name === 'gatehouse_http_requests_total' && s.labels.route === '/invitations/:token')).toBe(true);
    expect(samples.some((s) => s.name === 'gatehouse_http_requests_total' && s.labels.route?.startsWith('/setup/'))).toBe(true);
  });

  it('counts password sign-ins by method and result: a failure and a success', async () => {
    const t = await gatehouse();
    const user = await t.signUp('pw@metrics.example', 'correct horse battery');
    const before = parse((await scrape(t)).res.text);
    expect(value(before, 'gatehouse_sign_ins_total', { method: 'password', result: 'failure' })).toBe(0);
    expect((await t.request('POST', '/api/auth/sign-in/email', { body: { email: user.email, password: 'wrong password' } })).status).toBe(401);
    expect((await t.request('POST', '/api/auth/sign-in/email', { body: { email: user.email, password: user.password } })).status).toBe(200);
    const { samples } = await scrape(t);
    expect(value(samples, 'gatehouse_sign_ins_total', { method: 'password', result: 'failure' })).toBe(1);
    expect(value(samples, 'gatehouse_sign_ins_total', { method: 'password', result: 'success' })).toBe(1);
    expect(value(samples, 'gatehouse_sign_ins_total', { method: 'magic_link', result: 'success' })).toBe(0);
  });

  it('counts a magic-link sign-in, and a spent link as a failure', async () => {
    const t = await gatehouse();
    expect((await t.request('POST', '/api/auth/magic-link', { body: { email: 'link@metrics.example' } })).status).toBe(200);
    await t.services.emailLinks.idle();
    const token = /token=([A-Za-z0-9_-]+)/.exec(t.mails.at(-1)?.text ?? '')?.[1];
    expect(token).toBeTruthy();
    expect((await t.request('POST', '/api/auth/magic-link/verify', { body: { token } })).status).toBe(200);
    expect((await t.request('POST', '/api/auth/magic-link/verify', { body: { token } })).status).toBe(400);
    const { samples } = await scrape(t);
    expect(value(samples, 'gatehouse_sign_ins_total', { method: 'magic_link', result: 'success' })).toBe(1);
    expect(value(samples, 'gatehouse_sign_ins_total', { method: 'magic_link', result: 'failure' })).toBe(1);
  });

  it('counts SSO failures under their stable reason (OIDC callback, SAML ACS)', async () => {
    const t = await gatehouse();
    const json = { accept: 'application/json' };
    const oidc = await t.request('GET', '/api/auth/sso/callback?code=abc', { headers: json });
    expect(oidc.body.details.reason).toBe('state_invalid');
    const saml = await t.request('POST', '/api/auth/sso/nobody/saml/acs', { headers: { ...json, 'content-type': 'application/x-www-form-urlencoded' }, rawBody: 'SAMLResponse=abc', origin: null });
    expect(saml.body.details.reason).toBe('connection_not_found');
    const { samples } = await scrape(t);
    expect(value(samples, 'gatehouse_sso_failures_total', { protocol: 'oidc', reason: 'state_invalid' })).toBe(1);
    expect(value(samples, 'gatehouse_sso_failures_total', { protocol: 'saml', reason: 'connection_not_found' })).toBe(1);
    expect(value(samples, 'gatehouse_sign_ins_total', { method: 'sso_oidc', result: 'failure' })).toBe(1);
    expect(value(samples, 'gatehouse_sign_ins_total', { method: 'sso_saml', result: 'failure' })).toBe(1);
  });

  it('counts refused login starts under their reason, apart from SSO logins (unknown slug: SP- and IdP-initiated)', async () => {
    const t = await gatehouse();
    const json = { accept: 'application/json' };
    const start = await t.request('GET', '/api/auth/sso/nobody/login', { headers: json });
    expect(start.status).toBe(400);
    expect(start.body.details.reason).toBe('sso_not_configured');
    const initiate = await t.request('GET', '/api/auth/sso/nobody/initiate?iss=https%3A%2F%2Fidp.example', { headers: json });
    expect(initiate.status).toBe(400);
    expect(initiate.body.details.reason).toBe('sso_not_configured');
    const { samples } = await scrape(t);
    expect(value(samples, 'gatehouse_sso_login_start_failures_total', { protocol: 'oidc', reason: 'sso_not_configured' })).toBe(2);
    // Not an SSO login yet: neither a sign-in nor a login failure.
    expect(samples.some((s) => s.name === 'gatehouse_sso_failures_total')).toBe(false);
    expect(value(samples, 'gatehouse_sign_ins_total', { method: 'sso_oidc', result: 'failure' })).toBe(0);
  });

  it('counts a login start refusal once, under its protocol; a non-SSO error is not a reason', async () => {
    const counted: string[] = [];
    const login = {
      startLogin: async (slug: string) => {
        if (slug === 'db-away') throw new Error('database away');
        throw new SsoLoginError('connection_disabled', 'The connection is disabled');
      },
      metadata: async () => 'untouched',
    };
    const wrapped = countSsoLoginStartFailures(login, 'saml', ['startLogin'], { ssoLoginStartFailure: (protocol, reason) => counted.push(`${protocol} ${reason}`) });
    await expect(wrapped.startLogin('acme')).rejects.toThrow(SsoLoginError);
    await expect(wrapped.startLogin('db-away')).rejects.toThrow('database away');
    expect(await wrapped.metadata()).toBe('untouched');
    expect(counted).toEqual(['saml connection_disabled']);
  });

  it('counts a rate-limited request as a refusal of its limit', async () => {
    const t = await gatehouse({ rateLimits: { 'sign-in:ip': { points: 1, duration: 600 } } });
    const attempt = () => t.request('POST', '/api/auth/sign-in/email', { body: { email: 'nobody@metrics.example', password: 'whatever it is' }, ip: '10.1.2.3' });
    expect((await attempt()).status).toBe(401);
    expect((await attempt()).status).toBe(429);
    const { samples } = await scrape(t);
    expect(value(samples, 'gatehouse_rate_limit_refusals_total', { limit: 'sign-in:ip' })).toBe(1);
    expect(value(samples, 'gatehouse_rate_limit_refusals_total', { limit: 'sign-up:ip' })).toBe(0);
    expect(value(samples, 'gatehouse_sign_ins_total', { method: 'password', result: 'rate_limited' })).toBe(1);
  });

  it('shows the outbox depth of inserted rows, counted at most once per few seconds', async () => {
    const t = await gatehouse({ env: { GATEHOUSE_LOGOUT_SENDER: 'false' } });
    expect(value((await scrape(t)).samples, 'gatehouse_logout_outbox_deliveries', { status: 'pending' })).toBe(0);
    const now = t.clock.now();
    const row = (status: 'pending' | 'abandoned', createdAt: Date) => ({
      id: newId(), session_id: newId(), user_id: newId(), client_id: 'app', reason: 'signed_out', status, attempts: 0,
      next_attempt_at: now.toISOString(), locked_until: null, last_error: null, created_at: createdAt.toISOString(),
      give_up_at: new Date(now.getTime() + 86_400_000).toISOString(), finished_at: status === 'pending' ? null : now.toISOString(),
    });
    await insertOutboxRows(t.deps.db, [row('pending', new Date(now.getTime() - 90_000)), row('pending', now), row('abandoned', now)]);
    // Within the cache period the earlier count is served.
    expect(value((await scrape(t)).samples, 'gatehouse_logout_outbox_deliveries', { status: 'pending' })).toBe(0);
    t.clock.advance(6_000);
    const { samples } = await scrape(t);
    expect(value(samples, 'gatehouse_logout_outbox_deliveries', { status: 'pending' })).toBe(2);
    expect(value(samples, 'gatehouse_logout_outbox_deliveries', { status: 'abandoned' })).toBe(1);
    expect(value(samples, 'gatehouse_logout_outbox_oldest_pending_age_seconds')).toBe(96);
  });

  it('still answers 200 without the outbox gauges when the database cannot count them', async () => {
    const t = await createTestGatehouse({ env: { GATEHOUSE_LOGOUT_SENDER: 'false' } });
    try {
      await t.deps.database.close();
      const { samples } = await scrape(t);
      expect(value(samples, 'gatehouse_logout_outbox_deliveries', { status: 'pending' })).toBeUndefined();
      expect(value(samples, 'gatehouse_logout_outbox_oldest_pending_age_seconds')).toBeUndefined();
      expect(value(samples, 'gatehouse_sign_ins_total', { method: 'password', result: 'success' })).toBe(0);
    } finally {
      await t.destroy().catch(() => {});
    }
  });

  it.runIf(postgresAvailable('the pool gauges'))('shows the PostgreSQL pool gauges', async () => {
    const t = await gatehouse();
    await t.request('GET', '/readyz');
    const { samples } = await scrape(t);
    expect(value(samples, 'gatehouse_db_pool_connections')).toBeGreaterThanOrEqual(1);
    expect(value(samples, 'gatehouse_db_pool_idle_connections')).toBeGreaterThanOrEqual(0);
    expect(value(samples, 'gatehouse_db_pool_waiting_requests')).toBe(0);
    expect(value(samples, 'gatehouse_db_pool_max_connections')).toBe(10);
  });

  it.runIf(ENGINE === 'sqlite')('shows no pool gauges on SQLite (one connection, no pool)', async () => {
    const t = await gatehouse();
    const { samples } = await scrape(t);
    expect(samples.some((s) => s.name.startsWith('gatehouse_db_pool_'))).toBe(false);
  });

  it('answers 404 in the error envelope when GATEHOUSE_METRICS=false', async () => {
    const t = await gatehouse({ env: { GATEHOUSE_METRICS: 'false' } });
    const res = await t.request('GET', '/metrics');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ success: false, status: 404, code: 'NOT_FOUND' });
  });

  it('with GATEHOUSE_METRICS_TOKEN: 401 without the bearer token or with a wrong one, 200 with it', async () => {
    const token = 'metrics-token-0123456789abcdef';
    const t = await gatehouse({ env: { GATEHOUSE_METRICS_TOKEN: token } });
    const none = await t.request('GET', '/metrics');
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ success: false, status: 401, code: 'UNAUTHENTICATED' });
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await t.request('GET', '/metrics', { bearer: `${token}x` })).status).toBe(401);
    expect((await t.request('GET', '/metrics', { headers: { 'x-api-key': token } })).status).toBe(401);
    const ok = await t.request('GET', '/metrics', { bearer: token });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('gatehouse_http_requests_total');
  });

  it('refuses a weak GATEHOUSE_METRICS_TOKEN at start-up without printing it', () => {
    const load = (env: Record<string, string>) => () => loadConfig({ DATABASE_URL: 'sqlite::memory:', ...env });
    expect(load({ GATEHOUSE_METRICS_TOKEN: 'short-secret' })).toThrow(ConfigError);
    expect(load({ GATEHOUSE_METRICS_TOKEN: 'short-secret' })).not.toThrow(/short-secret/);
    expect(load({ GATEHOUSE_METRICS: 'maybe' })).toThrow(/GATEHOUSE_METRICS: must be true or false/);
    expect(loadConfig({ DATABASE_URL: 'sqlite::memory:' })).toMatchObject({ metrics: true, metricsToken: null });
  });

  it('two instances in one process keep their own counts', async () => {
    const a = await gatehouse();
    const b = await gatehouse();
    for (let i = 0; i < 3; i++) await a.request('GET', '/healthz');
    await b.request('GET', '/healthz');
    const healthz = { method: 'GET', route: '/healthz', status: '200' };
    expect(value((await scrape(a)).samples, 'gatehouse_http_requests_total', healthz)).toBe(3);
    expect(value((await scrape(b)).samples, 'gatehouse_http_requests_total', healthz)).toBe(1);
  });

  it('counts the OpenID Provider requests under fixed route names', async () => {
    const t = await gatehouse();
    const server: Server = createServer(requestListener(t));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      expect((await fetch(`${base}/.well-known/openid-configuration`)).status).toBe(200);
      await (await fetch(`${base}/oidc/no-such-endpoint-4711`)).arrayBuffer();
      const samples = parse(await (await fetch(`${base}/metrics`)).text());
      expect(value(samples, 'gatehouse_http_requests_total', { method: 'GET', route: '/.well-known/openid-configuration', status: '200' })).toBe(1);
      expect(samples.some((s) => s.name === 'gatehouse_http_requests_total' && s.labels.route === '/oidc/*')).toBe(true);
      expect(samples.some((s) => Object.values(s.labels).some((v) => v.includes('4711')))).toBe(false);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('docs/metrics.md describes every Gatehouse metric', async () => {
    const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
    const t = await gatehouse();
    const names = t.deps.metrics.registry.getMetricsAsArray().map((m) => m.name).filter((n) => n.startsWith('gatehouse_'));
    expect(names.length).toBeGreaterThan(5);
    for (const name of names) expect(doc, name).toContain(`\`${name}\``);
  });
});

describe('SSO sign-ins counted at the completion', () => {
  it('counts a failure reported for two organizations (OIDC mix-up) once, also past the sso-failure:ip limit', async () => {
    const counted: string[] = [];
    const completion: SsoCompletion = {
      signIn: async () => {
        throw new Error('not called');
      },
      recordFailure: async () => {
        throw new AppError('RATE_LIMITED', 'Too many attempts. Try again later.', { retryAfter: 60 });
      },
    };
    const wrapped = countSsoSignIns(completion, { signIn: (method, result) => counted.push(`${method} ${result}`), ssoFailure: (protocol, reason) => counted.push(`${protocol} ${reason}`) });
    const meta = { ip: '127.0.0.1', userAgent: null, requestId: null };
    const failure = new SsoLoginError('issuer_mismatch', 'the code went to another IdP');
    await expect(wrapped.recordFailure(meta, 'oidc', failure, { organizationId: 'flow-org' })).rejects.toThrow(AppError);
    await expect(wrapped.recordFailure(meta, 'oidc', failure, { organizationId: 'arrived-org' })).rejects.toThrow(AppError);
    await expect(wrapped.recordFailure(meta, 'saml', new Error('database away'), { organizationId: null })).rejects.toThrow(AppError);
    expect(counted).toEqual(['sso_oidc failure', 'oidc issuer_mismatch', 'sso_saml error']);
  });
});
