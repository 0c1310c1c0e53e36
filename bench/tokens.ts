/**
 * Session tokens over real HTTP on loopback (`npm run bench:tokens`, also part of `npm run bench`):
 *   1. issue: POST /api/auth/token with a session cookie (and its trusted Origin), body {};
 *      every answer's refresh token goes into a pool;
 *   2. refresh: POST /api/auth/token {"grant_type":"refresh_token"} as JSON, no cookie, each
 *      request with a fresh token taken from the pool (tokens rotate: each is good once);
 * beside raw rates measured in this process in the same run: argon2id hash (the project's
 * parameters, src/crypto/passwords.ts), ES256 sign and verify, RS256 sign and verify (jose, which
 * calls node:crypto).
 *
 * The server is a child process (bench/tokens-server.ts); its CPU is process.cpuUsage() of that
 * process (every thread) read before and after each measurement, divided by the answers.
 * SQLite always (a file in a temporary directory), PostgreSQL when BENCH_DATABASE_URL is set (a
 * fresh schema, dropped afterwards). Writes the section between the bench:tokens markers of
 * bench/RESULTS.md. Timing is reported, never asserted.
 */
import autocannon, { type Result } from 'autocannon';
import { hash } from '@node-rs/argon2';
import { generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ARGON2_OPTIONS } from '../src/crypto/passwords.js';
import { dropBenchSchema, startBenchServer, type BenchServer } from './tokens-server-process.js';
import { intEnv } from './results.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const RESULTS = join(BENCH_DIR, 'RESULTS.md');
const HOST = '127.0.0.1';
const ORIGIN = 'http://localhost:3000';

const DURATION = intEnv('BENCH_DURATION', 10);
const WARMUP = intEnv('BENCH_WARMUP', 3);
const CONNECTIONS = intEnv('BENCH_TOKEN_CONNECTIONS', 20);
const RAW_MS = intEnv('BENCH_RAW_MS', 2000);
const PG_URL = process.env.BENCH_DATABASE_URL || null;
/** Keycloak's published sizing: one vCPU per 120 refresh-token requests per second. */
const KEYCLOAK_REFRESH_PER_VCPU = 120;

async function call(base: string, path: string, init: RequestInit): Promise<{ status: number; json: any; headers: Headers }> { // eslint-disable-line @typescript-eslint/no-explicit-any -- bench convenience
  const res = await fetch(base + path, init);
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text), headers: res.headers };
}

interface Measured { rps: number; requests: number; seconds: number; p50: number; p99: number; cpuPerRequestUs: number }

function checked(r: Result, what: string): Result {
  if (r.errors || r.timeouts || r.non2xx) throw new Error(`${what}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx (${JSON.stringify(r.statusCodeStats)})`);
  return r;
}

async function measure(server: BenchServer, opts: Parameters<typeof autocannon>[0], what: string): Promise<Measured> {
  const cpu0 = await server.cpu();
  const t0 = performance.now();
  const r = checked(await autocannon(opts), what);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = (await server.cpu()) - cpu0;
  const requests = r.requests.total;
  return { rps: requests / seconds, requests, seconds, p50: r.latency.p50, p99: r.latency.p99, cpuPerRequestUs: (cpu / requests) * 1e6 };
}

interface EngineRows { engine: 'sqlite' | 'postgres'; issue: Measured; refresh: Measured }

async function runEngine(engine: 'sqlite' | 'postgres'): Promise<EngineRows> {
  const dir = mkdtempSync(join(os.tmpdir(), 'gh-bench-tokens-'));
  const schema = engine === 'postgres' ? `bench_tokens_${randomBytes(4).toString('hex')}` : undefined;
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    GATEHOUSE_BASE_URL: ORIGIN,
    DATABASE_URL: engine === 'postgres' ? PG_URL! : `sqlite:${dir}/bench.db`,
    GATEHOUSE_SECRET_KEYS: `bench:${randomBytes(32).toString('base64')}`,
    GATEHOUSE_LOG_LEVEL: 'silent',
    ...(schema ? { BENCH_SCHEMA: schema } : {}),
  };
  const server = await startBenchServer(env);
  const base = `http://${HOST}:${server.port}`;
  try {
    const signUp = await call(base, '/api/auth/sign-up/email', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: ORIGIN },
      body: JSON.stringify({ email: 'tokens@bench.example', password: 'correct horse battery staple' }),
    });
    const cookie = /gatehouse_session=[^;]+/.exec(signUp.headers.get('set-cookie') ?? '')?.[0];
    if (signUp.status !== 201 || !cookie) throw new Error(`sign-up failed: ${signUp.status}`);

    const pool: string[] = [];
    const issueOpts = (duration: number) => ({
      url: base,
      connections: CONNECTIONS,
      duration,
      requests: [{
        method: 'POST',
        path: '/api/auth/token',
        headers: { 'content-type': 'application/json', cookie, origin: ORIGIN },
        body: '{}',
        onResponse: (status: number, body: string) => {
          if (status === 200) pool.push((JSON.parse(body) as { data: { refreshToken: string } }).data.refreshToken);
        },
      }],
    });
    checked(await autocannon(issueOpts(WARMUP)), 'issue warm-up');
    const issue = await measure(server, issueOpts(DURATION), 'issue');
    process.stderr.write(`${engine}: issue ${Math.round(issue.rps)}/s, pool of ${pool.length} refresh tokens\n`);

    // Each refresh spends one pooled token; a token is never sent twice (that would be reuse).
    const refreshOpts = (amount: number) => ({
      url: base,
      connections: CONNECTIONS,
      amount,
      requests: [{
        method: 'POST',
        path: '/api/auth/token',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req: Record<string, unknown>) => ({ ...req, body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: pool.pop() }) }),
      }],
    });
    const warm = Math.min(2000, Math.floor(pool.length / 5));
    checked(await autocannon(refreshOpts(warm)), 'refresh warm-up');
    const refresh = await measure(server, refreshOpts(pool.length - CONNECTIONS), 'refresh');
    process.stderr.write(`${engine}: refresh ${Math.round(refresh.rps)}/s\n`);
    return { engine, issue, refresh };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
    if (schema) await dropBenchSchema(PG_URL!, schema);
  }
}

/** Sequential operations per second of one async operation, for RAW_MS. */
async function rate(op: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await op();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < RAW_MS) {
    await op();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

async function rawRates() {
  const payload = { iss: ORIGIN, sub: '01HZ3K5R4X9Y2V6QF8TJ7W0CDN', aud: ORIGIN, iat: 1_800_000_000, exp: 4_000_000_000, jti: '01HZ3K5R4X9Y2V6QF8TJ7W0CDM', sid: '01HZ3K5R4X9Y2V6QF8TJ7W0CDK', auth_time: 1_800_000_000, amr: ['pwd'], email: 'someone@example.com' };
  const es = await generateKeyPair('ES256');
  const rs = await generateKeyPair('RS256', { modulusLength: 2048 });
  const sign = (alg: 'ES256' | 'RS256', key: CryptoKey) => new SignJWT(payload).setProtectedHeader({ alg, kid: 'k', typ: 'at+jwt' }).sign(key);
  const esToken = await sign('ES256', es.privateKey as CryptoKey);
  const rsToken = await sign('RS256', rs.privateKey as CryptoKey);
  return {
    argon2id: await rate(() => hash('correct horse battery staple', ARGON2_OPTIONS)),
    es256Sign: await rate(() => sign('ES256', es.privateKey as CryptoKey)),
    es256Verify: await rate(() => jwtVerify(esToken, es.publicKey, { algorithms: ['ES256'] })),
    rs256Sign: await rate(() => sign('RS256', rs.privateKey as CryptoKey)),
    rs256Verify: await rate(() => jwtVerify(rsToken, rs.publicKey, { algorithms: ['RS256'] })),
  };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const loadBefore = os.loadavg()[0]!;
const rows: EngineRows[] = [await runEngine('sqlite'), ...(PG_URL ? [await runEngine('postgres')] : [])];
const raw = await rawRates();
const loadAfter = os.loadavg()[0]!;

const lines = [
  `## Session tokens — ${new Date().toISOString().slice(0, 10)}`,
  '',
  `- Machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version} (${os.platform()} ${os.arch()})`,
  `- Date: ${new Date().toISOString()}`,
  `- Machine load: 1-minute load average ${loadBefore.toFixed(1)} before and ${loadAfter.toFixed(1)} after the run on ${os.cpus().length} cores (near or above the core count, other processes shared the CPU and the rates are depressed)`,
  `- Command: \`${PG_URL ? 'BENCH_DATABASE_URL=… ' : ''}npm run bench:tokens\` (part of \`npm run bench\`); SQLite always, PostgreSQL when BENCH_DATABASE_URL is set`,
  `- Method: Gatehouse in a child process (\`bench/tokens-server.ts\`, production settings except the per-IP \`token:ip\` limit, raised since every request comes from 127.0.0.1) on 127.0.0.1; autocannon in the parent, ${CONNECTIONS} connections. Issue: \`POST /api/auth/token\` with one user's session cookie and its Origin, body \`{}\` (signs an ES256 access token, stores a refresh token and an audit event), ${WARMUP} s warm-up then ${DURATION} s; each answer's refresh token goes into a pool. Refresh: \`{"grant_type":"refresh_token"}\` as JSON, no cookie, each request with its own pooled token (never one twice), after a warm-up of up to 2,000 refreshes (at most a fifth of the pool): the rest of the pool. "Server CPU" is process.cpuUsage() of the server process (all threads) across the measurement ÷ answers. Raw rates: this (parent) process, one operation at a time for ${RAW_MS / 1000} s each, after the HTTP runs: argon2id with the project's parameters (m=${ARGON2_OPTIONS.memoryCost} KiB, t=${ARGON2_OPTIONS.timeCost}, p=${ARGON2_OPTIONS.parallelism}), and jose (node:crypto) signing / verifying a JWT of the access token's shape with P-256 (ES256) and RSA-2048 (RS256).`,
  '',
  '| Request | Database | Req/s | Requests | p50 ms | p99 ms | Server CPU µs/req | Per server CPU-second |',
  '|---|---|---:|---:|---:|---:|---:|---:|',
  ...rows.flatMap((r) => [
    `| issue \`POST /api/auth/token\` (cookie) | ${r.engine} | ${fmt(r.issue.rps)} | ${fmt(r.issue.requests)} | ${r.issue.p50} | ${r.issue.p99} | ${fmt(r.issue.cpuPerRequestUs)} | ${fmt(1e6 / r.issue.cpuPerRequestUs)} |`,
    `| refresh \`grant_type=refresh_token\` | ${r.engine} | ${fmt(r.refresh.rps)} | ${fmt(r.refresh.requests)} | ${r.refresh.p50} | ${r.refresh.p99} | ${fmt(r.refresh.cpuPerRequestUs)} | ${fmt(1e6 / r.refresh.cpuPerRequestUs)} |`,
  ]),
  '',
  '| Raw operation (one at a time, this process) | ops/s |',
  '|---|---:|',
  `| argon2id hash (project parameters) | ${fmt(raw.argon2id)} |`,
  `| ES256 sign | ${fmt(raw.es256Sign)} |`,
  `| ES256 verify | ${fmt(raw.es256Verify)} |`,
  `| RS256 sign (2048) | ${fmt(raw.rs256Sign)} |`,
  `| RS256 verify (2048) | ${fmt(raw.rs256Verify)} |`,
  '',
  `Keycloak's published sizing ("Concepts for sizing CPU and memory resources"): one vCPU per ${KEYCLOAK_REFRESH_PER_VCPU} refresh-token requests per second. Gatehouse here: ${rows.map((r) => `${r.engine} ${fmt(1e6 / r.refresh.cpuPerRequestUs)} refreshes per server CPU-second (${(1e6 / r.refresh.cpuPerRequestUs / KEYCLOAK_REFRESH_PER_VCPU).toFixed(1)}× that figure)`).join('; ')}. Not like for like: Keycloak's figure is a sizing guideline with headroom, on its own hardware and database, for its full refresh (client authentication, sessions in a distributed cache); ours is one user's refreshes on loopback${PG_URL ? ', and the PostgreSQL server\'s own CPU is not counted' : ''}.`,
];
console.log(lines.join('\n'));

const text = readFileSync(RESULTS, 'utf8');
const begin = '<!-- bench:tokens:start -->';
const end = '<!-- bench:tokens:end -->';
const block = `${begin}\n${lines.join('\n')}\n${end}`;
writeFileSync(RESULTS, text.includes(begin) ? text.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), block) : `${text.trimEnd()}\n\n${block}\n`);
