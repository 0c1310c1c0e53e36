import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { fixedClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { createPasswordHasher } from '../../src/crypto/passwords.js';
import type { Mail, Mailer } from '../../src/email/mailer.js';
import type { LimitSettings } from '../../src/http/rate-limit.js';
import type { Logger } from '../../src/logger.js';
import { buildGatehouse, type Gatehouse } from '../../src/server.js';
import type { OutboundFetch } from '../../src/sso/outbound.js';
import type { IdpTokenSweepOptions } from '../../src/sso/idp-tokens/refresher.js';
import type { HousekeepingOptions } from '../../src/jobs/housekeeping.js';

export const BASE_URL = 'http://localhost:3000';
export const ORIGIN = BASE_URL;
/** Where the suite runs: SQLite in memory, or PostgreSQL when TEST_DATABASE_URL is set. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || null;
export const ENGINE = TEST_DATABASE_URL ? 'postgres' : 'sqlite';

export function testKeySpec(kid = 'test1') {
  return `${kid}:${randomBytes(32).toString('base64')}`;
}

export interface TestOptions {
  env?: Record<string, string>;
  rateLimits?: Partial<LimitSettings>;
  clock?: ReturnType<typeof fixedClock>;
  /** Share one database between several instances (multi-instance tests). */
  databaseUrl?: string;
  schema?: string;
  /** Replace the SSRF-guarded client (e.g. one with a fake resolver). */
  outbound?: OutboundFetch;
  /** Send mail through the real mailer (nodemailer over SMTP_URL) instead of the in-memory list. */
  realMailer?: boolean;
  /** The instance's logger (silent unless given; see logCapture in test/helpers/logs.ts). */
  logger?: Logger;
  /** The IdP token sweep's timing (with env GATEHOUSE_IDP_TOKEN_REFRESHER=true). */
  idpTokenSweep?: IdpTokenSweepOptions;
  /** The housekeeping purge's batch sizes. */
  housekeeping?: HousekeepingOptions;
}

export interface TestGatehouse extends Gatehouse {
  mails: Mail[];
  clock: ReturnType<typeof fixedClock>;
  schema: string | null;
  request(method: string, path: string, opts?: RequestOptions): Promise<TestResponse>;
  signUp(email: string, password?: string, name?: string): Promise<TestUser>;
  destroy(): Promise<void>;
}

export interface TestUser {
  id: string;
  email: string;
  cookie: string;
  password: string;
}

export interface RequestOptions {
  body?: unknown;
  rawBody?: string;
  as?: TestUser | { cookie: string } | null;
  apiKey?: string;
  bearer?: string;
  origin?: string | null;
  headers?: Record<string, string>;
  ip?: string;
  /** Extra cookies to send (e.g. the SSO browser cookie). */
  cookies?: Record<string, string>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test convenience: envelope JSON
  text: string;
  cookie: string | null;
  /** Every cookie the response set, by name. */
  cookies: Record<string, string>;
}

/** A fresh Gatehouse on its own database (SQLite in memory, or a fresh PostgreSQL schema). */
export async function createTestGatehouse(options: TestOptions = {}): Promise<TestGatehouse> {
  const schema = TEST_DATABASE_URL ? (options.schema ?? `t_${process.pid}_${randomBytes(4).toString('hex')}`) : null;
  const config = loadConfig({
    NODE_ENV: 'test',
    GATEHOUSE_BASE_URL: BASE_URL,
    DATABASE_URL: options.databaseUrl ?? TEST_DATABASE_URL ?? 'sqlite::memory:',
    GATEHOUSE_SECRET_KEYS: testKeySpec(),
    GATEHOUSE_LOG_LEVEL: 'silent',
    // Never the system resolver: a test that verifies a domain must start its own DNS server
    // (test/helpers/dns-server.ts); this default points at a closed loopback port.
    GATEHOUSE_DNS_SERVERS: '127.0.0.1:9',
    // Tests sweep the IdP token vault by hand (services.idpTokenRefresher.sweepOnce), or turn the timer on.
    GATEHOUSE_IDP_TOKEN_REFRESHER: 'false',
    // Tests purge by hand (services.housekeeping.runOnce), or turn the timer on.
    GATEHOUSE_HOUSEKEEPING: 'false',
    ...options.env,
  });
  const mails: Mail[] = [];
  const mailer: Mailer = { send: async (m) => void mails.push(m) };
  const clock = options.clock ?? fixedClock(new Date());
  // Cheaper argon2 parameters keep the suite fast; the production parameters have their own test.
  const passwords = createPasswordHasher({ memoryCost: 1024, timeCost: 1 });
  const gh = await buildGatehouse(config, {
    logger: options.logger ?? pino({ level: 'silent' }),
    clock,
    ...(options.realMailer ? {} : { mailer }),
    passwords,
    ...(options.rateLimits ? { rateLimits: options.rateLimits } : {}),
    ...(options.outbound ? { outbound: options.outbound } : {}),
    ...(options.idpTokenSweep ? { idpTokenSweep: options.idpTokenSweep } : {}),
    ...(options.housekeeping ? { housekeeping: options.housekeeping } : {}),
    ...(schema ? { schema } : {}),
  });

  async function request(method: string, path: string, opts: RequestOptions = {}): Promise<TestResponse> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body !== undefined) headers['content-type'] ??= 'application/json';
    const jar = { ...opts.cookies, ...(opts.as ? { gatehouse_session: opts.as.cookie } : {}) };
    if (Object.keys(jar).length) headers.cookie = Object.entries(jar).map(([k, v]) => `${k}=${v}`).join('; ');
    if (opts.apiKey) headers['x-api-key'] = opts.apiKey;
    if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
    const origin = opts.origin === undefined ? ORIGIN : opts.origin;
    if (origin && method !== 'GET') headers.origin = origin;
    const init: RequestInit = { method, headers };
    if (opts.rawBody !== undefined) init.body = opts.rawBody;
    else if (opts.body !== undefined) init.body = JSON.stringify(opts.body);
    const env = { incoming: { socket: { remoteAddress: opts.ip ?? '127.0.0.1', remotePort: 1, remoteFamily: 'IPv4' } } };
    const res = await gh.app.request(path, init, env);
    const text = await res.text();
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    const cookies: Record<string, string> = {};
    for (const line of res.headers.getSetCookie()) {
      const m = /^([^=]+)=([^;]*)/.exec(line);
      if (m) cookies[m[1]!] = m[2]!;
    }
    return { status: res.status, headers: res.headers, body, text, cookie: cookies.gatehouse_session || null, cookies };
  }

  let n = 0;
  async function signUp(email: string, password = 'correct horse battery', name?: string): Promise<TestUser> {
    const res = await request('POST', '/api/auth/sign-up/email', {
      body: { email, password, ...(name ? { name } : {}) },
      ip: `127.0.1.${++n % 250}`,
    });
    if (res.status !== 201 || !res.cookie) throw new Error(`sign-up failed: ${res.status} ${res.text}`);
    return { id: res.body.data.user.id, email, cookie: res.cookie, password };
  }

  return {
    ...gh,
    mails,
    clock,
    schema,
    request,
    signUp,
    async destroy() {
      await gh.services.emailLinks.idle(); // mails still being delivered in the background
      await gh.close();
      if (schema && TEST_DATABASE_URL && !options.schema) await dropSchema(schema);
    },
  };
}

export async function dropSchema(schema: string) {
  if (!TEST_DATABASE_URL) return;
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/** Create an organization as `owner`; returns its id. */
export async function createOrg(t: TestGatehouse, owner: TestUser, name = 'Acme', slug?: string): Promise<string> {
  const res = await t.request('POST', '/api/user/organizations', { as: owner, body: { name, ...(slug ? { slug } : {}) } });
  if (res.status !== 201) throw new Error(`create org failed: ${res.status} ${res.text}`);
  return res.body.data.id as string;
}

/** Add `user` to an organization with a role, through the real invitation flow. */
export async function addMember(t: TestGatehouse, owner: TestUser, orgId: string, user: TestUser, role: 'owner' | 'admin' | 'member') {
  const inv = await t.request('POST', `/api/user/organizations/${orgId}/invitations`, { as: owner, body: { email: user.email, role } });
  if (inv.status !== 201) throw new Error(`invite failed: ${inv.status} ${inv.text}`);
  const mail = t.mails.findLast((m) => m.to === user.email);
  const token = mail && /^https?:\/\/\S+\/invitations\/([A-Za-z0-9_-]+)$/m.exec(mail.text)?.[1];
  if (!token) throw new Error('no invitation token in the mail');
  const acc = await t.request('POST', `/api/user/invitations/${token}/accept`, { as: user });
  if (acc.status !== 200) throw new Error(`accept failed: ${acc.status} ${acc.text}`);
}

export async function createApiKey(t: TestGatehouse, user: TestUser, body: Record<string, unknown> = { name: 'k' }): Promise<{ key: string; id: string }> {
  const res = await t.request('POST', '/api/user/api-keys', { as: user, body });
  if (res.status !== 201) throw new Error(`create key failed: ${res.status} ${res.text}`);
  return { key: res.body.data.key, id: res.body.data.apiKey.id };
}
