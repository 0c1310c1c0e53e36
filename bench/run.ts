/**
 * Gatehouse HTTP benchmark (`npm run bench`). See bench/README.md.
 *
 * Each server runs in a child process (bench/server.ts) on 127.0.0.1 with a random port; the load
 * comes from autocannon in this process, so every target is measured the same way:
 *   1. a bare Hono route (the ceiling of Node + @hono/node-server on this machine), at the start
 *      and again at the end (the two show how much the machine drifts during the run);
 *   2. GET /api/auth/session with a valid session cookie;
 *   3. GET /api/user/me with an X-Api-Key;
 * 2 and 3 on SQLite with 1,000 and 100,000 users (each with a session and an API key), and on
 * PostgreSQL as well when BENCH_DATABASE_URL is set.
 *
 * Prints a markdown table and rewrites the generated section of bench/RESULTS.md.
 * Timing is reported, never asserted: the targets line says pass or fail, the exit code does not.
 */
import autocannon, { type Result } from 'autocannon';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { ReadyInfo } from './server.js';
import { START_NODE_FLAGS } from './results.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');
const SERVER = join(BENCH_DIR, 'server.ts');
const RESULTS = join(BENCH_DIR, 'RESULTS.md');
const HOST = '127.0.0.1';

function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
}

const DURATION = intEnv('BENCH_DURATION', 10); // seconds per measurement
// Seconds of discarded load before each measurement. Each Gatehouse server is a fresh process and
// at ~1-2k req/s V8 needs ~3 s of traffic to optimise the hot path (1 s left the first seconds
// of the measurement visibly slower); the bare route is warm long before.
const WARMUP = intEnv('BENCH_WARMUP', 3);
const CONNECTIONS = intEnv('BENCH_CONNECTIONS', 50);
// Rounds per Gatehouse measurement, the dataset sizes alternating within each round; the median
// round is reported. On this 2-core VM one 10 s run of the same server varied by up to ±30 %
// even with no other process busy, which a single run per size cannot tell from a real change.
const ROUNDS = intEnv('BENCH_ROUNDS', 3);
/** Seconds of discarded load on the bare route before anything is measured (see main). */
const PRIME = 10;
const SIZES = (process.env.BENCH_SIZES || '1000,100000').split(',').map((s) => {
  const n = Number(s.trim());
  if (!Number.isInteger(n) || n < 1) throw new Error('BENCH_SIZES must be a comma-separated list of positive integers');
  return n;
});
const PG_URL = process.env.BENCH_DATABASE_URL || null;
/** "No slower at the largest size than at the smallest" allows this much run-to-run noise. */
const SCALE_TOLERANCE = 0.05;
/** Other processes above this (% of one core) during a measurement make its row suspect (⚠). */
const NOISY_PCT = 25;

type Target = 'bare' | 'session' | 'apiKey';
interface Row {
  target: Target;
  label: string;
  engine: 'sqlite' | 'postgres' | null;
  users: number | null;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** Server CPU time (all threads of the child process) per request, µs; null where unknown. */
  cpuPerRequestUs: number | null;
  /** CPU used by other processes on the machine during the measurement, in % of one core. */
  otherLoadPct: number | null;
  /** Req/s of every round (the row itself is the median round). */
  rounds: number[];
}

const TARGET_LABEL: Record<Target, string> = {
  bare: 'bare Hono route `GET /bare`',
  session: 'session check `GET /api/auth/session` (cookie)',
  apiKey: 'API key `GET /api/user/me` (X-Api-Key)',
};

// ---- child processes ---------------------------------------------------------------------------

interface Child {
  info: ReadyInfo;
  pid: number | undefined;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
const tempDirs: string[] = [];
const schemas: string[] = [];

function startServer(env: Record<string, string>, readyTimeoutMs = 10 * 60_000): Promise<Child> {
  const child = spawn(process.execPath, [...START_NODE_FLAGS, '--import', 'tsx', SERVER], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  running.add(child);
  const exited = new Promise<void>((res) => child.once('exit', () => (running.delete(child), res())));

  async function stop() {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin?.end(); // the server shuts down when its stdin closes
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }

  return new Promise<Child>((resolveReady, reject) => {
    const timer = setTimeout(() => {
      reject(new Error('the bench server did not become ready in time'));
      void stop();
    }, readyTimeoutMs);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      if (line.startsWith('BENCH_READY ')) {
        clearTimeout(timer);
        resolveReady({ info: JSON.parse(line.slice('BENCH_READY '.length)) as ReadyInfo, pid: child.pid, stop });
      } else {
        process.stderr.write(`[server] ${line}\n`);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the bench server exited before it was ready (code ${code}, signal ${signal})`));
    });
  });
}

// ---- CPU accounting (Linux /proc; reported as unknown elsewhere) ---------------------------------

let clockTicks: number | null = null;
function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU seconds used so far by a process (all its threads), or null when /proc is not there. */
function processCpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return null;
  }
}

/** CPU seconds used so far by the whole machine (all cores, all processes). */
function machineCpuSeconds(): number {
  return os.cpus().reduce((sum, c) => sum + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0) / 1000;
}

interface CpuSnapshot {
  wall: number;
  machine: number;
  self: NodeJS.CpuUsage;
  child: number | null;
}

function cpuSnapshot(childPid?: number): CpuSnapshot {
  return { wall: performance.now(), machine: machineCpuSeconds(), self: process.cpuUsage(), child: processCpuSeconds(childPid) };
}

/** Server CPU seconds and the other processes' load (% of one core) since `before`. */
function cpuSince(before: CpuSnapshot, childPid?: number): { childSeconds: number | null; otherLoadPct: number | null } {
  const wall = (performance.now() - before.wall) / 1000;
  const machine = machineCpuSeconds() - before.machine;
  const selfUsage = process.cpuUsage(before.self);
  const self = (selfUsage.user + selfUsage.system) / 1e6;
  const childNow = processCpuSeconds(childPid);
  const childSeconds = childNow !== null && before.child !== null ? childNow - before.child : null;
  if (childPid !== undefined && childSeconds === null) return { childSeconds: null, otherLoadPct: null };
  const other = Math.max(0, machine - self - (childSeconds ?? 0));
  return { childSeconds, otherLoadPct: (other / wall) * 100 };
}

// ---- measurement -------------------------------------------------------------------------------

async function check(url: string, headers: Record<string, string>, expect: (body: any) => boolean) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  if (res.status !== 200 || !expect(body)) throw new Error(`pre-check of ${url} failed: ${res.status} ${text.slice(0, 300)}`);
}

interface Load {
  result: Result;
  childSeconds: number | null;
  otherLoadPct: number | null;
}

async function load(url: string, headers: Record<string, string>, serverPid: number | undefined): Promise<Load> {
  if (!url.startsWith(`http://${HOST}:`)) throw new Error(`refusing to load anything but ${HOST}: ${url}`);
  await autocannon({ url, headers, connections: CONNECTIONS, duration: WARMUP });
  const before = cpuSnapshot(serverPid);
  const result = await autocannon({ url, headers, connections: CONNECTIONS, duration: DURATION });
  const cpu = cpuSince(before, serverPid);
  if (result.errors || result.timeouts || result.non2xx) {
    throw new Error(
      `${url}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx (${JSON.stringify(result.statusCodeStats)})`,
    );
  }
  return { result, ...cpu };
}

function row(target: Target, label: string, engine: Row['engine'], users: number | null, l: Load): Row {
  const r = l.result;
  return {
    target,
    label,
    engine,
    users,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    requests: r.requests.total,
    cpuPerRequestUs: l.childSeconds !== null && r.requests.total > 0 ? (l.childSeconds / r.requests.total) * 1e6 : null,
    otherLoadPct: l.otherLoadPct,
    rounds: [r.requests.average],
  };
}

function progress(r: Row, round?: number) {
  const where =
    (r.engine ? ` [${r.engine}, ${r.users?.toLocaleString('en-US')} users]` : '') + (round !== undefined ? ` round ${round + 1}/${ROUNDS}` : '');
  const cpu = r.cpuPerRequestUs === null ? '' : `, server CPU ${Math.round(r.cpuPerRequestUs)} µs/req`;
  const other = r.otherLoadPct === null ? '' : `, other processes ${Math.round(r.otherLoadPct)} % of a core`;
  process.stderr.write(`  ${r.label}${where}: ${Math.round(r.rps).toLocaleString('en-US')} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms${cpu}${other}\n`);
}

async function measureBare(label: string, primeSeconds = 0): Promise<Row> {
  const child = await startServer({ BENCH_TARGET: 'bare' });
  try {
    const url = `http://${HOST}:${child.info.port}/bare`;
    await check(url, {}, (b) => b?.ok === true);
    if (primeSeconds) await autocannon({ url, connections: CONNECTIONS, duration: primeSeconds });
    const r = row('bare', label, null, null, await load(url, {}, child.pid));
    progress(r);
    return r;
  } finally {
    await child.stop();
  }
}

interface GatehouseServer {
  engine: 'sqlite' | 'postgres';
  users: number;
  child: Child;
  base: string;
  sessionHeaders: Record<string, string>;
  keyHeaders: Record<string, string>;
}

/** A Gatehouse child on a fresh database populated with `users` users; checked, not yet measured. */
async function startGatehouse(engine: 'sqlite' | 'postgres', users: number): Promise<GatehouseServer> {
  const env: Record<string, string> = {
    BENCH_TARGET: 'gatehouse',
    BENCH_USERS: String(users),
    NODE_ENV: 'test',
    GATEHOUSE_LOG_LEVEL: 'silent',
    GATEHOUSE_SECRET_KEYS: `bench:${randomBytes(32).toString('base64')}`,
    GATEHOUSE_BASE_URL: `http://${HOST}`,
  };
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(os.tmpdir(), 'gatehouse-bench-'));
    tempDirs.push(dir);
    env.DATABASE_URL = `sqlite:${join(dir, 'bench.db')}`;
  } else {
    const schema = `bench_${process.pid}_${randomBytes(4).toString('hex')}`;
    schemas.push(schema);
    env.DATABASE_URL = PG_URL!;
    env.BENCH_SCHEMA = schema;
  }
  process.stderr.write(`${engine}, ${users.toLocaleString('en-US')} users: populating…\n`);
  const child = await startServer(env);
  const { info } = child;
  try {
    const c = info.counts!;
    process.stderr.write(
      `  populated in ${((info.populateMs ?? 0) / 1000).toFixed(1)} s: ${c.users} users, ${c.sessions} sessions, ${c.apiKeys} API keys\n`,
    );
    if (c.users !== users || c.sessions !== users || c.apiKeys !== users) throw new Error(`unexpected row counts ${JSON.stringify(c)}`);
    const base = `http://${HOST}:${info.port}`;
    const sessionHeaders = { cookie: `gatehouse_session=${info.cookie}` };
    const keyHeaders = { 'x-api-key': info.apiKey! };
    await check(`${base}/api/auth/session`, sessionHeaders, (b) => b?.data?.user?.id === info.userId);
    await check(`${base}/api/user/me`, keyHeaders, (b) => b?.data?.id === info.userId);
    return { engine, users, child, base, sessionHeaders, keyHeaders };
  } catch (e) {
    await child.stop();
    throw e;
  }
}

/** The median round (by req/s), carrying every round's req/s. */
function median(runs: Row[]): Row {
  const sorted = [...runs].sort((a, b) => a.rps - b.rps);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, rounds: runs.map((r) => r.rps) };
}

/**
 * One engine: every dataset size is populated first (each in its own server), then each target is
 * measured on the sizes in alternation, ROUNDS times, so the sizes are compared under the same
 * conditions (no bulk load between them, drift of the machine spread over both).
 */
async function measureEngine(engine: 'sqlite' | 'postgres'): Promise<Row[]> {
  const servers: GatehouseServer[] = [];
  try {
    for (const users of SIZES) servers.push(await startGatehouse(engine, users));
    const rows: Row[] = [];
    for (const target of ['session', 'apiKey'] as const) {
      const runs = new Map<GatehouseServer, Row[]>(servers.map((s) => [s, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (const s of servers) {
          const [path, headers] = target === 'session' ? ['/api/auth/session', s.sessionHeaders] : ['/api/user/me', s.keyHeaders];
          const r = row(target, TARGET_LABEL[target], engine, s.users, await load(`${s.base}${path}`, headers, s.child.pid));
          progress(r, round);
          runs.get(s)!.push(r);
        }
      }
      for (const s of servers) rows.push(median(runs.get(s)!));
    }
    return rows;
  } finally {
    for (const s of servers) await s.child.stop();
  }
}

// ---- clean-up ----------------------------------------------------------------------------------

async function dropSchemas() {
  if (!PG_URL || schemas.length === 0) return;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    while (schemas.length) await client.query(`DROP SCHEMA IF EXISTS ${schemas.pop()} CASCADE`);
  } finally {
    await client.end();
  }
}

async function cleanUp() {
  for (const child of running) child.kill('SIGTERM');
  while (tempDirs.length) rmSync(tempDirs.pop()!, { recursive: true, force: true });
  await dropSchemas();
}

process.once('SIGINT', () => {
  process.stderr.write('\ninterrupted; cleaning up\n');
  cleanUp().finally(() => process.exit(130));
});

// ---- report ------------------------------------------------------------------------------------

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
/** PostgreSQL rows always show PostgreSQL's own CPU as other load, so only the others are flagged. */
const noisy = (r: Row) => r.engine !== 'postgres' && r.otherLoadPct !== null && r.otherLoadPct > NOISY_PCT;
const fmtMs = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));
const pct = (x: number) => `${Math.round(x * 100)} %`;

function table(rows: Row[], bareRps: number): string {
  const lines = [
    '| Target | Database | Users + sessions | Req/s | Rounds (req/s) | p50 ms | p99 ms | vs bare | Server CPU µs/req | Other load |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const cpu = r.cpuPerRequestUs === null ? '?' : fmtInt(r.cpuPerRequestUs);
    const other = r.otherLoadPct === null ? '?' : `${Math.round(r.otherLoadPct)} %${noisy(r) ? ' ⚠' : ''}`;
    lines.push(
      `| ${r.label} | ${r.engine ?? '–'} | ${r.users === null ? '–' : fmtInt(r.users)} | ${fmtInt(r.rps)} | ` +
        `${r.rounds.length > 1 ? r.rounds.map(fmtInt).join(' / ') : '–'} | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} | ${pct(r.rps / bareRps)} | ${cpu} | ${other} |`,
    );
  }
  return lines.join('\n');
}

function evaluate(rows: Row[], bareRps: number): string[] {
  const out: string[] = [];
  const engines = [...new Set(rows.map((r) => r.engine).filter((e): e is 'sqlite' | 'postgres' => e !== null))];
  const sessions = rows.filter((r) => r.target === 'session');
  const ratios = sessions.map((r) => ({ r, ratio: r.rps / bareRps }));
  const ratioPass = ratios.every((x) => x.ratio >= 0.5);
  const bareNoisy = rows.filter((r) => r.target === 'bare').every(noisy);
  const warn = (involved: Row[]) => (involved.some(noisy) ? ' ⚠ Some of these rows ran while other processes were busy; rerun on a quiet machine.' : '');
  out.push(
    `- Session check ≥ 50 % of the bare route: **${ratioPass ? 'PASS' : 'FAIL'}** (` +
      ratios.map((x) => `${x.r.engine} ${fmtInt(x.r.users!)}: ${pct(x.ratio)}`).join(', ') +
      ').' +
      (bareNoisy ? ' ⚠ Both bare runs were disturbed by other processes, so the ratios are approximate.' : warn(sessions)),
  );
  const small = Math.min(...SIZES);
  const large = Math.max(...SIZES);
  if (small !== large) {
    for (const target of ['session', 'apiKey'] as const) {
      const parts: string[] = [];
      const involved: Row[] = [];
      let pass = true;
      for (const engine of engines) {
        const a = rows.find((r) => r.target === target && r.engine === engine && r.users === small);
        const b = rows.find((r) => r.target === target && r.engine === engine && r.users === large);
        if (!a || !b) continue;
        involved.push(a, b);
        const change = b.rps / a.rps - 1;
        if (change < -SCALE_TOLERANCE) pass = false;
        const cpu = a.cpuPerRequestUs !== null && b.cpuPerRequestUs !== null
          ? `; server CPU ${fmtInt(a.cpuPerRequestUs)} → ${fmtInt(b.cpuPerRequestUs)} µs/req`
          : '';
        const overlap = a.rounds.length > 1 && Math.min(...b.rounds) <= Math.max(...a.rounds) && Math.max(...b.rounds) >= Math.min(...a.rounds);
        parts.push(
          `${engine}: ${fmtInt(a.rps)} → ${fmtInt(b.rps)} req/s, ${change >= 0 ? '+' : ''}${(change * 100).toFixed(1)} %${cpu}` +
            (overlap ? '; the rounds of the two sizes overlap' : ''),
        );
      }
      const name = target === 'session' ? 'Session check' : 'API-key request';
      out.push(
        `- ${name} no slower at ${fmtInt(large)} than at ${fmtInt(small)} users (median req/s, within ${pct(SCALE_TOLERANCE)}): ` +
          `**${pass ? 'PASS' : 'FAIL'}** (${parts.join(' | ')}).${warn(involved)}`,
      );
    }
  }
  return out;
}

function command(): string {
  const vars: string[] = [];
  for (const name of ['BENCH_DURATION', 'BENCH_WARMUP', 'BENCH_CONNECTIONS', 'BENCH_SIZES', 'BENCH_ROUNDS']) {
    if (process.env[name]) vars.push(`${name}=${process.env[name]}`);
  }
  if (PG_URL) {
    const u = new URL(PG_URL);
    if (u.password) u.password = '***';
    vars.push(`BENCH_DATABASE_URL=${u.toString()}`);
  }
  const script = process.env.npm_lifecycle_event;
  return [...vars, script ? `npm run ${script}` : 'node --import tsx bench/run.ts'].join(' ');
}

const START = '<!-- bench:results:start -->';
const END = '<!-- bench:results:end -->';

function writeResults(section: string) {
  const block = `${START}\n${section}\n${END}`;
  let text = existsSync(RESULTS)
    ? readFileSync(RESULTS, 'utf8')
    : '# Benchmark results\n\nThe section below is written by `npm run bench` (bench/run.ts) and replaced on every run.\n\n';
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a !== -1 && b > a) text = text.slice(0, a) + block + text.slice(b + END.length);
  else text = `${text.replace(/\n*$/, '\n\n')}${block}\n`;
  writeFileSync(RESULTS, text);
}

// ---- main --------------------------------------------------------------------------------------

async function main() {
  const cpus = os.cpus();
  const machine = `${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version} (${os.platform()} ${os.arch()})`;
  const engines: Array<'sqlite' | 'postgres'> = PG_URL ? ['sqlite', 'postgres'] : ['sqlite'];
  process.stderr.write(
    `Gatehouse benchmark: ${CONNECTIONS} connections, ${WARMUP} s warm-up + ${DURATION} s per measurement, ${ROUNDS} rounds, sizes ${SIZES.join(', ')}, ${engines.join(' + ')}\n${machine}\n`,
  );
  const started = new Date();

  // How busy is the machine before we start? (Other processes skew every figure on 2 cores.)
  const idleBefore = cpuSnapshot();
  await new Promise((r) => setTimeout(r, 2000));
  const preLoad = cpuSince(idleBefore).otherLoadPct ?? 0;
  process.stderr.write(`other processes before the run: ${Math.round(preLoad)} % of a core\n`);
  if (preLoad > 20) process.stderr.write('warning: the machine is busy; the figures will be low and noisy\n');

  // The first load after the machine was idle ran slower (twice the server CPU per request) in
  // about half of the trial runs, even with nothing else running: prime it on the bare route.
  const bareStart = await measureBare('bare Hono route `GET /bare` (start)', PRIME);
  const measured: Row[] = [];
  for (const engine of engines) measured.push(...(await measureEngine(engine)));
  const bareEnd = await measureBare('bare Hono route `GET /bare` (end)');
  // The ceiling: the faster of the two bare runs (other work on the machine can only lower it).
  const bareRps = Math.max(bareStart.rps, bareEnd.rps);
  const rows = [bareStart, ...measured, bareEnd];

  const md = table(rows, bareRps);
  const verdict = evaluate(rows, bareRps);
  const drift = Math.abs(bareEnd.rps / bareStart.rps - 1);

  const section = [
    `## ${started.toISOString().slice(0, 10)}`,
    '',
    `- Machine: ${machine}`,
    `- Date: ${started.toISOString()}`,
    `- Command: \`${command()}\``,
    `- Method: each server in its own child process (\`node ${[...START_NODE_FLAGS, '--import tsx'].join(' ')} bench/server.ts\`: the V8 flags of \`npm start\`) on ${HOST}, random port; autocannon in the parent process, ` +
      `${CONNECTIONS} connections, ${WARMUP} s warm-up (discarded) then ${DURATION} s; before the first measurement, ${PRIME} s of discarded load on the bare route. ` +
      `Per engine, all dataset sizes are populated first (one server each), then each target is measured ${ROUNDS} times with the sizes alternating; ` +
      'a Gatehouse row is the median of its rounds (all rounds listed). ' +
      "Req/s is the mean of autocannon's per-second samples; " +
      'latency has 1 ms resolution. Only 2xx answers are accepted (any error or non-2xx aborts the run). ' +
      '"vs bare" divides by the faster of the two bare runs, the ceiling ' +
      `(${fmtInt(bareStart.rps)} and ${fmtInt(bareEnd.rps)} req/s, ${(drift * 100).toFixed(1)} % apart). ` +
      '"Server CPU µs/req" is the CPU time of the server process (all its threads) over the measurement divided by the requests answered; ' +
      '"Other load" is the CPU used meanwhile by processes other than the server and the load generator, in % of one core ' +
      `(before the run: ${Math.round(preLoad)} %; in PostgreSQL rows it includes PostgreSQL itself); ` +
      'anything well above 0 otherwise means the figures are depressed by other work on the machine; ' +
      `⚠ marks the non-PostgreSQL rows measured while it exceeded ${NOISY_PCT} %.`,
    `- Data: SQLite file in a temporary directory${PG_URL ? ' and a fresh PostgreSQL schema (dropped afterwards)' : ''}; ` +
      'N users, each with one session and one API key (N − 1 bulk-inserted, then ANALYZE / VACUUM / checkpoint; ' +
      'the measured user created through sign-up and `POST /api/user/api-keys`).',
    '',
    md,
    '',
    '**Targets**',
    '',
    ...verdict,
  ].join('\n');

  process.stdout.write(`\n${md}\n\n${verdict.join('\n')}\n`);
  writeResults(section);
  process.stderr.write(`\nwrote ${RESULTS}\n`);
}

try {
  await main();
} finally {
  await cleanUp();
}
