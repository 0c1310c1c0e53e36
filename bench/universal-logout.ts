/**
 * Okta Universal Logout, end to end over real HTTP on loopback (`npm run bench:universal-logout`,
 * also part of `npm run bench`): how long from sending the Global Token Revocation request until
 * the last of the user's N sessions is refused.
 *
 * A mock Okta org (test/helpers/okta.ts: org authorization server + custom authorization server
 * `/oauth2/default`) runs in this process; Gatehouse runs as child processes
 * (bench/tokens-server.ts: production settings, loopback IdPs allowed). Each round: the user signs
 * in N times through Okta (N SSO sessions of the organization, made before the clock starts); then
 * the clock starts, the request goes to instance A, and each session cookie is polled with
 * GET /api/auth/session — on A ("one instance") or on instance B on the same database ("two
 * instances") — until it answers 401; the round's figure is the time of the last 401.
 * SQLite (one file; the two instances share it) always, PostgreSQL when BENCH_DATABASE_URL is set.
 * Writes the section between the bench:universal-logout markers of bench/RESULTS.md. Timing is
 * reported, never asserted.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UNIVERSAL_LOGOUT_PATH } from '../src/logout/urls.js';
import { dropBenchSchema, startBenchServer } from './tokens-server-process.js';
import { startMockOkta, type MockOkta } from '../test/helpers/okta.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const RESULTS = join(BENCH_DIR, 'RESULTS.md');
const ORIGIN = 'http://localhost:3000';
const SESSIONS = Number(process.env.BENCH_UL_SESSIONS ?? 20);
const ROUNDS = Number(process.env.BENCH_UL_ROUNDS ?? 15);
const PG_URL = process.env.BENCH_DATABASE_URL || null;

const cookieOf = (res: Response, name: string) => res.headers.getSetCookie().map((c) => c.split(';')[0]!).find((c) => c.startsWith(`${name}=`));

async function setUp(base: string, okta: MockOkta): Promise<string> {
  const json = { 'content-type': 'application/json', origin: ORIGIN };
  const signUp = await fetch(`${base}/api/auth/sign-up/email`, { method: 'POST', headers: json, body: JSON.stringify({ email: 'owner@ul-bench.test', password: 'bench password 1' }) });
  const cookie = cookieOf(signUp, 'gatehouse_session');
  if (signUp.status !== 201 || !cookie) throw new Error(`sign-up: ${signUp.status}`);
  const org = await fetch(`${base}/api/user/organizations`, { method: 'POST', headers: { ...json, cookie }, body: JSON.stringify({ name: 'UL bench', slug: 'ul-bench' }) });
  const orgId = ((await org.json()) as { data: { id: string } }).data.id;
  const put = await fetch(`${base}/api/user/organizations/${orgId}/settings/sso`, {
    method: 'PUT', headers: { ...json, cookie },
    body: JSON.stringify({ provider: 'okta', issuerUrl: okta.customIssuer, clientId: okta.clientId, clientSecret: okta.clientSecret }),
  });
  if (put.status !== 200) throw new Error(`PUT settings/sso: ${put.status} ${await put.text()}`);
  okta.addRedirectUri(((await put.json()) as { data: { redirectUri: string } }).data.redirectUri);
  return 'ul-bench';
}

/** One SSO login through Okta (browser cookies kept by hand); returns the session cookie. */
async function signIn(base: string, okta: MockOkta, slug: string, userId: string): Promise<string> {
  const start = await fetch(`${base}/api/auth/sso/${slug}/login`, { redirect: 'manual' });
  const browser = start.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ');
  const back = await okta.login(start.headers.get('location')!, userId);
  const cb = await fetch(`${base}${back.pathname}${back.search}`, { redirect: 'manual', headers: { cookie: browser } });
  const session = cookieOf(cb, 'gatehouse_session');
  if (cb.status !== 302 || !session) throw new Error(`callback: ${cb.status} ${await cb.text()}`);
  return session;
}

const alive = async (base: string, cookie: string) => {
  const res = await fetch(`${base}/api/auth/session`, { headers: { cookie } });
  await res.arrayBuffer();
  return res.status === 200;
};

interface Round { requestMs: number; lastRefusedMs: number; maxPolls: number }

async function round(a: string, checkOn: string, okta: MockOkta, slug: string, i: number): Promise<Round> {
  const userId = `00ubench${i}${randomBytes(3).toString('hex')}`;
  const email = `${userId}@ul-bench-home.test`;
  okta.users.set(userId, { id: userId, email });
  const cookies: string[] = [];
  for (let s = 0; s < SESSIONS; s++) cookies.push(await signIn(a, okta, slug, userId));
  for (const c of cookies) if (!(await alive(checkOn, c))) throw new Error('a session was dead before the request');
  const token = await okta.universalLogoutToken(`${ORIGIN}${UNIVERSAL_LOGOUT_PATH}`);
  const t0 = performance.now();
  const res = await fetch(`${a}${UNIVERSAL_LOGOUT_PATH}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ sub_id: { format: 'email', email } }) });
  const requestMs = performance.now() - t0;
  if (res.status !== 204) throw new Error(`universal logout: ${res.status} ${await res.text()}`);
  const refused = await Promise.all(cookies.map(async (c) => {
    for (let polls = 1; polls <= 10_000; polls++) if (!(await alive(checkOn, c))) return { at: performance.now() - t0, polls };
    throw new Error('a session outlived the logout');
  }));
  return { requestMs, lastRefusedMs: Math.max(...refused.map((r) => r.at)), maxPolls: Math.max(...refused.map((r) => r.polls)) };
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const f1 = (n: number) => n.toFixed(1);

interface Row { engine: string; topology: string; rounds: Round[] }

async function runEngine(engine: 'sqlite' | 'postgres', okta: MockOkta): Promise<Row[]> {
  const dir = mkdtempSync(join(os.tmpdir(), 'gh-bench-ul-'));
  const schema = engine === 'postgres' ? `bench_ul_${randomBytes(4).toString('hex')}` : undefined;
  const env: Record<string, string> = {
    NODE_ENV: 'test', GATEHOUSE_BASE_URL: ORIGIN, GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true', GATEHOUSE_LOG_LEVEL: 'silent',
    DATABASE_URL: engine === 'postgres' ? PG_URL! : `sqlite:${dir}/bench.db`,
    GATEHOUSE_SECRET_KEYS: `bench:${randomBytes(32).toString('base64')}`,
    ...(schema ? { BENCH_SCHEMA: schema } : {}),
  };
  const a = await startBenchServer(env);
  const b = await startBenchServer(env);
  try {
    const slug = await setUp(a.base, okta);
    const rows: Row[] = [{ engine, topology: 'one instance (request and checks on A)', rounds: [] }, { engine, topology: 'two instances (request to A, checks on B)', rounds: [] }];
    await round(a.base, a.base, okta, slug, -1); // warm-up
    for (let i = 0; i < ROUNDS; i++) {
      rows[0]!.rounds.push(await round(a.base, a.base, okta, slug, 2 * i));
      rows[1]!.rounds.push(await round(a.base, b.base, okta, slug, 2 * i + 1));
    }
    return rows;
  } finally {
    await a.stop();
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
    if (schema) await dropBenchSchema(PG_URL!, schema);
  }
}

const okta = await startMockOkta();
const loadBefore = os.loadavg()[0]!;
let rows: Row[];
try {
  rows = [...(await runEngine('sqlite', okta)), ...(PG_URL ? await runEngine('postgres', okta) : [])];
} finally {
  await okta.close();
}
const loadAfter = os.loadavg()[0]!;

const lines = [
  `## Okta Universal Logout — ${new Date().toISOString().slice(0, 10)}`,
  '',
  `- Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version} (${os.platform()} ${os.arch()})`,
  `- Date: ${new Date().toISOString()}`,
  `- Machine load: 1-minute load average ${loadBefore.toFixed(1)} before and ${loadAfter.toFixed(1)} after the run on ${os.cpus().length} cores`,
  `- Command: \`${PG_URL ? 'BENCH_DATABASE_URL=… ' : ''}npm run bench:universal-logout\` (part of \`npm run bench\`); SQLite always (one file shared by both instances), PostgreSQL when BENCH_DATABASE_URL is set`,
  `- Method: two Gatehouse child processes (\`bench/tokens-server.ts\`) on one database, a mock Okta org in the bench process (\`test/helpers/okta.ts\`). Per round a new user signs in ${SESSIONS} times through Okta (SSO sessions of the organization, made before the clock starts, each checked live); then the clock starts, the Universal Logout request (RS256 org-key JWT, \`typ: global-token-revocation+jwt\`, body \`{"sub_id": {"format": "email"}}\`) goes to instance A, and all ${SESSIONS} session cookies are polled concurrently with \`GET /api/auth/session\` until each answers 401. "Request" = until A answered 204 (token checks, discovery and JWKS from the per-instance cache after the warm-up, the transaction that ends the sessions); "last session refused" = until the last 401. ${ROUNDS} rounds per row after one warm-up round; the two topologies alternate.`,
  '',
  '| Database | Topology | Sessions | Request ms (median) | Last session refused ms (median) | max | Polls per session until 401 (max) | All rounds, last refused (ms) |',
  '|---|---|---:|---:|---:|---:|---:|---|',
  ...rows.map((r) => `| ${r.engine} | ${r.topology} | ${SESSIONS} | ${f1(median(r.rounds.map((x) => x.requestMs)))} | ${f1(median(r.rounds.map((x) => x.lastRefusedMs)))} | ${f1(Math.max(...r.rounds.map((x) => x.lastRefusedMs)))} | ${Math.max(...r.rounds.map((x) => x.maxPolls))} | ${r.rounds.map((x) => Math.round(x.lastRefusedMs)).join(' / ')} |`),
  '',
  `The sessions end inside the request, in one transaction, before the 204: no instance caches a session, so the first check after the answer — on any instance — is already refused ("polls" = 1), and the figure is the request plus one round of ${SESSIONS} concurrent session checks. Back-channel logout to apps (the outbox) is not part of this figure. A load average near or above the core count (other processes on the machine) inflates every figure.`,
];
console.log(lines.join('\n'));

const text = readFileSync(RESULTS, 'utf8');
const begin = '<!-- bench:universal-logout:start -->';
const end = '<!-- bench:universal-logout:end -->';
const block = `${begin}\n${lines.join('\n')}\n${end}`;
writeFileSync(RESULTS, text.includes(begin) ? text.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), block) : `${text.trimEnd()}\n\n${block}\n`);
