/**
 * Password sign-in against the raw argon2id verify rate (`npm run bench:password`, also part of
 * `npm run bench`):
 *
 *  (a) raw: @node-rs/argon2 `verify` of a hash made with the project's parameters
 *      (src/crypto/passwords.ts), in this process, two ways, and the better of the two counts:
 *      (a1) as many verifications in flight as the HTTP run has connections (libuv's pool runs
 *      UV_THREADPOOL_SIZE of them at once), and (a2) as many as Gatehouse lets run at once
 *      (defaultArgon2Concurrency: one per core) — on a machine with fewer cores than pool threads
 *      (a2) is the faster, since computations beyond the cores only take turns and evict each
 *      other's memory from the caches;
 *  (b) Gatehouse: POST /api/auth/sign-in/email over real HTTP on loopback, the server in a child
 *      process (bench/tokens-server.ts, production settings except the per-IP `sign-in:ip` and
 *      `sign-up:ip` limits, raised since every request comes from 127.0.0.1), loaded by
 *      autocannon in this process. The requests rotate over BENCH_PASSWORD_USERS accounts, so the
 *      per-account limits count as they would for real users (each account has at most one
 *      sign-in in flight; each success resets its counter).
 *
 * The machine's speed drifts from minute to minute (a shared VM), so (a1), (a2) and (b) run in
 * turn, BENCH_PASSWORD_ROUNDS times; each round's ratio is (b) over the better raw rate of that
 * round, and the median round is reported (all rounds listed). Rates are answers per second of
 * wall time; CPU ms per answer is process.cpuUsage of the process doing the work, every thread.
 * SQLite always (a file in a temporary directory), PostgreSQL when BENCH_DATABASE_URL is set (a
 * fresh schema, dropped afterwards). Writes the section between the bench:password markers of
 * bench/RESULTS.md. Timing is reported, never asserted.
 *
 * Settings: BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 3), BENCH_PASSWORD_CONNECTIONS
 * (default 8), BENCH_PASSWORD_USERS (default 64), BENCH_PASSWORD_ROUNDS (default 3), BENCH_DATABASE_URL.
 */
import autocannon, { type Result } from 'autocannon';
import { hash, verify } from '@node-rs/argon2';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { ARGON2_OPTIONS, defaultArgon2Concurrency } from '../src/crypto/passwords.js';
import { intEnv, machineLine, writeResultsSection } from './results.js';
import { dropBenchSchema, startBenchServer, type BenchServer } from './tokens-server-process.js';

const ORIGIN = 'http://localhost:3000';
const PASSWORD = 'correct horse battery staple';

const DURATION = intEnv('BENCH_DURATION', 10);
const WARMUP = intEnv('BENCH_WARMUP', 3);
const CONNECTIONS = intEnv('BENCH_PASSWORD_CONNECTIONS', 8);
const USERS = intEnv('BENCH_PASSWORD_USERS', 64);
const ROUNDS = intEnv('BENCH_PASSWORD_ROUNDS', 3);
const GATEHOUSE_CONCURRENCY = defaultArgon2Concurrency();
const PG_URL = process.env.BENCH_DATABASE_URL || null;
const THREADPOOL = Number(process.env.UV_THREADPOOL_SIZE ?? 4);

interface Rate {
  perSecond: number;
  cpuMsPer: number;
  count: number;
}

const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** (a) `verify` with `inFlight` in flight for `seconds`; CPU of this process. */
async function rawVerifyRate(seconds: number, inFlight: number): Promise<Rate> {
  const hashed = await hash(PASSWORD, ARGON2_OPTIONS);
  let count = 0;
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  const worker = async () => {
    while (performance.now() < until) {
      if (!(await verify(hashed, PASSWORD))) throw new Error('argon2 verify failed');
      count++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const wall = (performance.now() - t0) / 1000;
  return { perSecond: count / wall, cpuMsPer: ((cpuSeconds() - cpu0) * 1000) / count, count };
}

function checked(r: Result, what: string): Result {
  if (r.errors || r.timeouts || r.non2xx) throw new Error(`${what}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx (${JSON.stringify(r.statusCodeStats)})`);
  return r;
}

interface RoundResult {
  rawPool: Rate;
  rawCapped: Rate;
  signIn: Rate & { p50: number; p99: number };
  /** (b) over the better of (a1) and (a2). */
  ratio: number;
}
interface EngineRow {
  engine: 'sqlite' | 'postgres';
  /** The median round by ratio. */
  median: RoundResult;
  rounds: RoundResult[];
}

/** (b) sign-ins rotating over the accounts; CPU of the server process. */
async function signInRate(server: BenchServer, emails: string[], duration: number): Promise<RoundResult['signIn']> {
  let next = 0;
  const opts = {
    url: server.base,
    connections: CONNECTIONS,
    duration,
    requests: [{
      method: 'POST' as const,
      path: '/api/auth/sign-in/email',
      headers: { 'content-type': 'application/json', origin: ORIGIN },
      setupRequest: (req: Record<string, unknown>) => ({ ...req, body: JSON.stringify({ email: emails[next++ % emails.length], password: PASSWORD }) }),
    }],
  };
  const cpu0 = await server.cpu();
  const t0 = performance.now();
  const r = checked(await autocannon(opts), 'sign-in');
  const wall = (performance.now() - t0) / 1000;
  const cpu = (await server.cpu()) - cpu0;
  const count = r.requests.total;
  return { perSecond: count / wall, cpuMsPer: (cpu * 1000) / count, count, p50: r.latency.p50, p99: r.latency.p99 };
}

async function runEngine(engine: 'sqlite' | 'postgres'): Promise<EngineRow> {
  const dir = mkdtempSync(join(os.tmpdir(), 'gh-bench-password-'));
  const schema = engine === 'postgres' ? `bench_password_${randomBytes(4).toString('hex')}` : undefined;
  const server = await startBenchServer({
    NODE_ENV: 'test',
    GATEHOUSE_BASE_URL: ORIGIN,
    DATABASE_URL: engine === 'postgres' ? PG_URL! : `sqlite:${dir}/bench.db`,
    GATEHOUSE_SECRET_KEYS: `bench:${randomBytes(32).toString('base64')}`,
    GATEHOUSE_LOG_LEVEL: 'silent',
    BENCH_RAISED_LIMITS: 'sign-in:ip,sign-up:ip',
    ...(schema ? { BENCH_SCHEMA: schema } : {}),
  });
  try {
    const emails = Array.from({ length: USERS }, (_, i) => `user${i}@bench.example`);
    for (const email of emails) {
      const res = await fetch(`${server.base}/api/auth/sign-up/email`, { method: 'POST', headers: { 'content-type': 'application/json', origin: ORIGIN }, body: JSON.stringify({ email, password: PASSWORD }) });
      await res.arrayBuffer();
      if (res.status !== 201) throw new Error(`sign-up of ${email}: ${res.status}`);
    }
    await signInRate(server, emails, WARMUP);
    const rounds: RoundResult[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const rawPool = await rawVerifyRate(DURATION, CONNECTIONS);
      const rawCapped = await rawVerifyRate(DURATION, GATEHOUSE_CONCURRENCY);
      const signIn = await signInRate(server, emails, DURATION);
      const ratio = signIn.perSecond / Math.max(rawPool.perSecond, rawCapped.perSecond);
      rounds.push({ rawPool, rawCapped, signIn, ratio });
      process.stderr.write(`${engine} round ${r + 1}/${ROUNDS}: raw verify ${rawPool.perSecond.toFixed(1)}/s (${CONNECTIONS} in flight), ${rawCapped.perSecond.toFixed(1)}/s (${GATEHOUSE_CONCURRENCY} in flight); sign-in ${signIn.perSecond.toFixed(1)}/s (${(ratio * 100).toFixed(0)} %)\n`);
    }
    const median = [...rounds].sort((a, b) => a.ratio - b.ratio)[Math.floor((rounds.length - 1) / 2)]!;
    return { engine, median, rounds };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
    if (schema) await dropBenchSchema(PG_URL!, schema);
  }
}

const loadBefore = os.loadavg();
const rows: EngineRow[] = [await runEngine('sqlite'), ...(PG_URL ? [await runEngine('postgres')] : [])];
const loadAfter = os.loadavg();

const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(0)} %`;
const lines = [
  `## Password sign-in — ${new Date().toISOString().slice(0, 10)}`,
  '',
  machineLine(),
  `- Date: ${new Date().toISOString()}`,
  `- Load average (1/5/15 min): before ${loadBefore.map((l) => l.toFixed(2)).join(' / ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' / ')} on ${os.availableParallelism()} cores (near or above the core count, other processes shared the CPU)`,
  `- Command: \`${PG_URL ? 'BENCH_DATABASE_URL=… ' : ''}npm run bench:password\` (part of \`npm run bench\`); SQLite always, PostgreSQL when BENCH_DATABASE_URL is set`,
  `- Method: argon2id with the project's parameters (m=${ARGON2_OPTIONS.memoryCost} KiB, t=${ARGON2_OPTIONS.timeCost}, p=${ARGON2_OPTIONS.parallelism}); @node-rs/argon2 runs on libuv's thread pool (UV_THREADPOOL_SIZE ${THREADPOOL}); ${os.availableParallelism()} cores. (a) Raw \`verify\` in this process for ${DURATION} s, (a1) with ${CONNECTIONS} in flight (the pool runs ${THREADPOOL} at once) and (a2) with ${GATEHOUSE_CONCURRENCY} in flight (what Gatehouse lets run at once: defaultArgon2Concurrency, one per core, a pool thread left free); the better of the two is the raw rate. (b) \`POST /api/auth/sign-in/email\` (JSON, trusted Origin) to Gatehouse in a child process (\`bench/tokens-server.ts\`: production settings but the per-IP \`sign-in:ip\` and \`sign-up:ip\` limits, raised because all load comes from 127.0.0.1) on 127.0.0.1; autocannon in this process, ${CONNECTIONS} connections, ${WARMUP} s warm-up then ${DURATION} s, rotating over ${USERS} accounts (each with its own per-account limits; one sign-in in flight per account). Every answer must be 200 (a session cookie). (a1), (a2), (b) run in turn, ${ROUNDS} rounds (the machine's speed drifts); a round's ratio is (b) over its better raw rate; the median round is shown. CPU ms per answer: process.cpuUsage() of the process doing the work (all threads: the argon2 workers included) ÷ answers; the PostgreSQL server's own CPU is not counted.`,
  '',
  '| database | raw verify /s, (a1) ' + CONNECTIONS + ' in flight | raw verify /s, (a2) ' + GATEHOUSE_CONCURRENCY + ' in flight | raw CPU ms per verify (better) | sign-in /s | sign-ins | p50 ms | p99 ms | server CPU ms per sign-in | sign-in vs raw (rate) | rounds (rate ratio) |',
  '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map(({ engine, median: m, rounds }) => {
    const better = m.rawPool.perSecond >= m.rawCapped.perSecond ? m.rawPool : m.rawCapped;
    return `| ${engine} | ${m.rawPool.perSecond.toFixed(1)} | ${m.rawCapped.perSecond.toFixed(1)} | ${better.cpuMsPer.toFixed(1)} | ${m.signIn.perSecond.toFixed(1)} | ${m.signIn.count} | ${m.signIn.p50} | ${m.signIn.p99} | ${m.signIn.cpuMsPer.toFixed(1)} | ${pct(m.ratio, 1)} | ${rounds.map((r) => pct(r.ratio, 1)).join(' / ')} |`;
  }),
  '',
  `Target: sign-in ≥ 90 % of the raw verify rate: **${rows.every((r) => r.median.ratio >= 0.9) ? 'PASS' : 'FAIL'}** (${rows.map((r) => `${r.engine} ${pct(r.median.ratio, 1)}`).join(', ')}). The ratio depends on what else runs on the machine: autocannon and, for PostgreSQL, the database server share the cores with the argon2 workers.`,
];
console.log(lines.join('\n'));
writeResultsSection('password', lines);
