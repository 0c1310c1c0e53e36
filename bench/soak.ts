/**
 * Soak: one real Gatehouse process (`node bin/gatehouse.js start`; SQLite in a temporary
 * directory, or a fresh PostgreSQL database when BENCH_DATABASE_URL is set) under a bounded,
 * steady mix for SOAK_MINUTES (default 30), then it stops by itself. Every SOAK_SAMPLE_SECONDS
 * (default 10) the server's resident set (/proc/<pid>/status VmRSS) and V8 heap (printed by a
 * small --import probe inside the server process) are sampled. The summary — first/last/min/max,
 * the slope per 10 minutes over the whole run and over its second half, request counts, errors,
 * latency — is printed and written into bench/RESULTS.md between the bench:soak markers.
 *
 * The mix, per operation: a session check (GET /api/auth/session); a password sign-in followed by
 * a session check and sign-out with that cookie; a session token issued, refreshed once and
 * revoked; and now and then a whole OIDC login against a real oidc-provider IdP in this process
 * (test/helpers/oidc-idp.ts). Client addresses (X-Forwarded-For behind GATEHOUSE_TRUSTED_PROXIES)
 * come from a fixed pool of 256, so rate limits stay out of the way and their rows stay bounded.
 *
 *   node --import tsx bench/soak.ts                       # npm run bench:soak, 30 min, SQLite
 *   SOAK_MINUTES=2 npm run bench:soak                     # a quick check
 *   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench:soak
 *
 * Settings: SOAK_MINUTES (default 30), SOAK_RATE (operations per second, default 20),
 * SOAK_CONCURRENCY (default 4), SOAK_SAMPLE_SECONDS (default 10), SOAK_OIDC_EVERY (one OIDC login
 * per this many operations, default 50; 0 = none), BENCH_DATABASE_URL.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startRealIdp, type RealIdp } from '../test/helpers/oidc-idp.js';
import { START_NODE_FLAGS } from './results.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH_DIR, '..');
const RESULTS = join(BENCH_DIR, 'RESULTS.md');
const START = '<!-- bench:soak:start -->';
const END = '<!-- bench:soak:end -->';

const num = (name: string, fallback: number) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number (got "${raw}")`);
  return n;
};
const MINUTES = num('SOAK_MINUTES', 30);
const RATE = num('SOAK_RATE', 20);
const CONCURRENCY = Math.max(1, Math.trunc(num('SOAK_CONCURRENCY', 4)));
const SAMPLE_SECONDS = Math.max(1, num('SOAK_SAMPLE_SECONDS', 10));
const OIDC_EVERY = Math.trunc(num('SOAK_OIDC_EVERY', 50));
const PG_URL = process.env.BENCH_DATABASE_URL || null;
const PASSWORD = 'soak correct horse battery';
const USERS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = (bytes: number) => bytes / 2 ** 20;

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
  });
}

function rssMiB(pid: number): number | null {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : null;
  } catch {
    return null; // not Linux, or the process is gone
  }
}

// ---- the server ---------------------------------------------------------------------------------

/** Runs inside the server process (node --import): prints its memory every SOAK_PROBE_MS on stderr. */
const PROBE = `setInterval(() => { const m = process.memoryUsage(); process.stderr.write('SOAK_MEM ' + JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers }) + '\\n'); }, Number(process.env.SOAK_PROBE_MS) || 10000).unref();`;

interface Mem {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

async function startServer(env: Record<string, string>) {
  const port = await freePort();
  const cwd = mkdtempSync(join(os.tmpdir(), 'gatehouse-soak-'));
  const child = spawn(process.execPath, [...START_NODE_FLAGS, `--import=data:text/javascript,${encodeURIComponent(PROBE)}`, join(ROOT, 'bin/gatehouse.js'), 'start'], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: String(port), HOST: '127.0.0.1', GATEHOUSE_BASE_URL: `http://127.0.0.1:${port}`, SOAK_PROBE_MS: String(Math.min(SAMPLE_SECONDS * 1000, 5000)), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let exited: string | null = null;
  child.once('exit', (code, signal) => (exited = String(code ?? signal)));
  process.on('exit', () => child.kill('SIGKILL'));
  const state = { mem: null as Mem | null, logTail: [] as string[] };
  let buf = '';
  const onData = (chunk: Buffer) => {
    buf += chunk.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('SOAK_MEM ')) state.mem = JSON.parse(line.slice(9)) as Mem;
      else {
        state.logTail.push(line);
        if (state.logTail.length > 50) state.logTail.shift();
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (exited !== null) throw new Error(`gatehouse start exited (${exited}):\n${state.logTail.join('\n')}`);
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (i > 1200) throw new Error(`gatehouse start did not become ready:\n${state.logTail.join('\n')}`);
    await sleep(50);
  }
  return {
    base,
    pid: child.pid!,
    state,
    exited: () => exited,
    async stop() {
      if (exited === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await gone;
        clearTimeout(timer);
      }
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}

// ---- the client ---------------------------------------------------------------------------------

type Kind = 'session' | 'password' | 'token' | 'oidc';
const counts = { requests: 0, ops: { session: 0, password: 0, token: 0, oidc: 0 } as Record<Kind, number>, errors: 0 };
const errorKinds = new Map<string, number>();
const errorExamples: string[] = [];
const latencies: Record<Kind, number[]> = { session: [], password: [], token: [], oidc: [] };

class SoakError extends Error {}

function addrPool(): string[] {
  return Array.from({ length: 256 }, (_, i) => `10.77.${i >> 4}.${(i & 15) + 1}`);
}
const ADDRS = addrPool();
const pick = <T>(xs: readonly T[]) => xs[Math.floor(Math.random() * xs.length)]!;

function makeClient(base: string) {
  return async function send(method: string, path: string, expected: number, o: { json?: unknown; cookie?: string; origin?: boolean; ip?: string } = {}) {
    const headers: Record<string, string> = { accept: 'application/json', 'x-forwarded-for': o.ip ?? pick(ADDRS) };
    if (o.json !== undefined) headers['content-type'] = 'application/json';
    if (o.cookie) headers.cookie = o.cookie;
    if (o.origin) headers.origin = base;
    counts.requests++;
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${base}${path}`, { method, headers, body: o.json === undefined ? undefined : JSON.stringify(o.json), redirect: 'manual', signal: AbortSignal.timeout(30_000) });
      text = await res.text();
    } catch (e) {
      throw new SoakError(`${method} ${path.replace(/\/01[0-9A-Z]{24}/g, '/:id')}: ${(e as Error).name === 'TimeoutError' ? 'no answer in 30 s' : `network error ${(e as Error).message}`}`);
    }
    if (res.status !== expected) throw new SoakError(`${method} ${path.replace(/\/01[0-9A-Z]{24}/g, '/:id').replace(/\?.*$/, '')}: ${res.status} (expected ${expected}) ${text.slice(0, 160)}`);
    const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]!).find((c) => c.startsWith('gatehouse_session='));
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
    return { res, body: body as { data?: Record<string, unknown> } | null, cookie };
  };
}

// ---- main ---------------------------------------------------------------------------------------

async function main() {
  const startedAt = new Date();
  let pgDatabase: string | null = null;
  let admin: pg.Client | null = null;
  let databaseUrl: string;
  const sqliteDir = mkdtempSync(join(os.tmpdir(), 'gatehouse-soak-db-'));
  if (PG_URL) {
    admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    pgDatabase = `gh_soak_${randomBytes(4).toString('hex')}`;
    await admin.query(`create database ${pgDatabase}`);
    const u = new URL(PG_URL);
    u.pathname = `/${pgDatabase}`;
    databaseUrl = u.toString();
  } else databaseUrl = `sqlite:${join(sqliteDir, 'gatehouse.db')}`;

  let idp: RealIdp | null = null;
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  try {
    server = await startServer({
      DATABASE_URL: databaseUrl,
      GATEHOUSE_SECRET_KEYS: `soak:${randomBytes(32).toString('base64')}`,
      GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true',
      GATEHOUSE_TRUSTED_PROXIES: '127.0.0.1',
      GATEHOUSE_DNS_SERVERS: '127.0.0.1:9',
      GATEHOUSE_LOG_LEVEL: 'warn',
    });
    const srv = server;
    const send = makeClient(srv.base);

    // Accounts and an OIDC organization.
    const users: Array<{ email: string; cookie: string }> = [];
    for (let i = 0; i < USERS; i++) {
      const email = `soak-${i}@soak.example`;
      const r = await send('POST', '/api/auth/sign-up/email', 201, { json: { email, password: PASSWORD }, ip: `10.78.0.${i + 1}` });
      users.push({ email, cookie: r.cookie! });
    }
    const sessions = users.map((u) => u.cookie);
    const subjects = Array.from({ length: 50 }, (_, i) => `soak-sub-${i}`);
    let oidcSlug: string | null = null;
    if (OIDC_EVERY > 0) {
      idp = await startRealIdp({ redirectUris: [], users: subjects.map((sub) => ({ sub, email: `${sub}@soak-sso.example`, email_verified: true, name: sub })) });
      const owner = users[0]!;
      const org = await send('POST', '/api/user/organizations', 201, { json: { name: 'Soak SSO', slug: 'soak-sso' }, cookie: owner.cookie, origin: true });
      const put = await send('PUT', `/api/user/organizations/${org.body!.data!.id as string}/settings/sso`, 200, {
        json: { provider: 'oidc', issuerUrl: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret },
        cookie: owner.cookie,
        origin: true,
      });
      await idp.addRedirectUri(put.body!.data!.redirectUri as string);
      oidcSlug = 'soak-sso';
    }

    const ops: Record<Kind, () => Promise<void>> = {
      async session() {
        await send('GET', '/api/auth/session', 200, { cookie: pick(sessions) });
      },
      async password() {
        const ip = pick(ADDRS);
        const r = await send('POST', '/api/auth/sign-in/email', 200, { json: { email: pick(users).email, password: PASSWORD }, ip });
        await send('GET', '/api/auth/session', 200, { cookie: r.cookie, ip });
        await send('POST', '/api/auth/sign-out', 200, { cookie: r.cookie, origin: true, ip });
      },
      async token() {
        const ip = pick(ADDRS);
        const issued = await send('POST', '/api/auth/token', 200, { json: {}, cookie: pick(sessions), origin: true, ip });
        const refreshed = await send('POST', '/api/auth/token', 200, { json: { grant_type: 'refresh_token', refresh_token: issued.body!.data!.refreshToken }, ip });
        await send('POST', '/api/auth/token/revoke', 200, { json: { token: refreshed.body!.data!.refreshToken }, ip });
      },
      async oidc() {
        const ip = pick(ADDRS);
        const start = await send('GET', `/api/auth/sso/${oidcSlug}/login`, 302, { ip });
        const back = await idp!.login(start.res.headers.get('location')!, pick(subjects));
        const browser = start.res.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ');
        const cb = await send('GET', back.pathname + back.search, 302, { cookie: browser, ip });
        await send('GET', '/api/auth/session', 200, { cookie: cb.cookie, ip });
        await send('POST', '/api/auth/sign-out', 200, { cookie: cb.cookie, origin: true, ip });
      },
    };
    let opNo = 0;
    const nextKind = (): Kind => {
      opNo++;
      if (oidcSlug && OIDC_EVERY > 0 && opNo % OIDC_EVERY === 0) return 'oidc';
      const r = Math.random();
      return r < 0.6 ? 'session' : r < 0.78 ? 'password' : 'token';
    };

    // Memory samples.
    const samples: Array<{ t: number; rss: number; heapUsed: number | null; heapTotal: number | null; external: number | null }> = [];
    const t0 = Date.now();
    const sample = () => {
      const rss = rssMiB(srv.pid) ?? (srv.state.mem ? MiB(srv.state.mem.rss) : null);
      if (rss === null) return;
      const m = srv.state.mem;
      samples.push({ t: (Date.now() - t0) / 1000, rss, heapUsed: m ? MiB(m.heapUsed) : null, heapTotal: m ? MiB(m.heapTotal) : null, external: m ? MiB(m.external) : null });
    };
    sample();
    const sampler = setInterval(sample, SAMPLE_SECONDS * 1000);
    const progress = setInterval(() => {
      const last = samples.at(-1);
      process.stdout.write(`[soak] ${((Date.now() - t0) / 60_000).toFixed(1)} / ${MINUTES} min, ${counts.requests} requests, ${counts.errors} errors, RSS ${last?.rss.toFixed(1)} MiB, heap ${last?.heapUsed?.toFixed(1)} MiB\n`);
    }, 60_000);

    // Steady load: each worker paces itself to RATE / CONCURRENCY operations per second.
    const endAt = t0 + MINUTES * 60_000;
    const interval = RATE > 0 ? (1000 * CONCURRENCY) / RATE : 0;
    let behind = 0;
    const worker = async (w: number) => {
      let due = Date.now() + (interval * w) / CONCURRENCY;
      while (Date.now() < endAt) {
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        else if (wait < -interval) behind++;
        due = Math.max(due + interval, Date.now() - interval);
        if (Date.now() >= endAt || srv.exited() !== null) break;
        const kind = nextKind();
        const began = performance.now();
        try {
          await ops[kind]();
          counts.ops[kind]++;
          latencies[kind].push(performance.now() - began);
        } catch (e) {
          counts.errors++;
          const msg = e instanceof SoakError ? e.message : `unexpected: ${(e as Error).message}`;
          const key = msg.replace(/ \{.*$/, '').slice(0, 120);
          errorKinds.set(key, (errorKinds.get(key) ?? 0) + 1);
          if (errorExamples.length < 5) errorExamples.push(msg);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
    await sleep(Math.min(SAMPLE_SECONDS, 5) * 1000); // let the probe report once more after the last request
    sample();
    clearInterval(sampler);
    clearInterval(progress);
    const crashed = srv.exited();

    // ---- summary ----------------------------------------------------------------------------------
    const rss = samples.map((s) => s.rss);
    const heap = samples.filter((s) => s.heapUsed !== null).map((s) => ({ t: s.t, v: s.heapUsed! }));
    const slope = (pts: Array<{ t: number; v: number }>) => {
      if (pts.length < 2) return NaN;
      const mt = pts.reduce((a, p) => a + p.t, 0) / pts.length;
      const mv = pts.reduce((a, p) => a + p.v, 0) / pts.length;
      const num_ = pts.reduce((a, p) => a + (p.t - mt) * (p.v - mv), 0);
      const den = pts.reduce((a, p) => a + (p.t - mt) ** 2, 0);
      return den ? (num_ / den) * 600 : NaN; // per 10 minutes
    };
    const rssPts = samples.map((s) => ({ t: s.t, v: s.rss }));
    const half = (pts: Array<{ t: number; v: number }>) => pts.filter((p) => p.t >= (pts.at(-1)?.t ?? 0) / 2);
    const f1 = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(1));
    const f2 = (x: number) => (Number.isNaN(x) ? '–' : `${x >= 0 ? '+' : ''}${x.toFixed(2)}`);
    const pctl = (xs: number[], p: number) => {
      if (!xs.length) return NaN;
      const s = [...xs].sort((a, b) => a - b);
      return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
    };
    const elapsedMin = (Date.now() - t0) / 60_000;
    const totalOps = Object.values(counts.ops).reduce((a, b) => a + b, 0);
    const cpu = /model name\s*:\s*(.+)/.exec(existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '')?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU';
    const vars = [
      process.env.SOAK_MINUTES ? `SOAK_MINUTES=${process.env.SOAK_MINUTES}` : null,
      process.env.SOAK_RATE ? `SOAK_RATE=${process.env.SOAK_RATE}` : null,
      process.env.SOAK_CONCURRENCY ? `SOAK_CONCURRENCY=${process.env.SOAK_CONCURRENCY}` : null,
      process.env.SOAK_SAMPLE_SECONDS ? `SOAK_SAMPLE_SECONDS=${process.env.SOAK_SAMPLE_SECONDS}` : null,
      process.env.SOAK_OIDC_EVERY ? `SOAK_OIDC_EVERY=${process.env.SOAK_OIDC_EVERY}` : null,
      PG_URL ? 'BENCH_DATABASE_URL=…' : null,
    ].filter(Boolean);
    const command = `${vars.length ? `${vars.join(' ')} ` : ''}${process.env.npm_lifecycle_event ? `npm run ${process.env.npm_lifecycle_event}` : 'node --import tsx bench/soak.ts'}`;
    const byMinute = samples.filter((s, i) => i === 0 || Math.floor(s.t / 60) !== Math.floor(samples[i - 1]!.t / 60)).map((s) => s.rss.toFixed(0));
    const lines = [
      `Soak: one \`gatehouse start\` process on ${PG_URL ? 'PostgreSQL' : 'SQLite'}, ${f1(elapsedMin)} min at ${RATE} operations/s (${CONCURRENCY} workers), memory sampled every ${SAMPLE_SECONDS} s.`,
      '',
      `- Date: ${startedAt.toISOString()}`,
      `- Machine: ${cpu}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version} (${process.platform} ${process.arch})`,
      `- Command: \`${command}\``,
      `- Mix per operation: 60 % session check; 18 % password sign-in + session check + sign-out; 22 % token issue + refresh + revoke; ${oidcSlug ? `1 in ${OIDC_EVERY} a whole OIDC login (real oidc-provider IdP) + session check + sign-out` : 'no OIDC logins'}`,
      `- Server ${crashed === null ? 'stayed up' : `EXITED (${crashed})`}; ${samples.length} samples`,
      '',
      '| | first | last | min | max | slope / 10 min (whole run) | slope / 10 min (second half) |',
      '|---|---:|---:|---:|---:|---:|---:|',
      `| RSS (MiB) | ${f1(rss[0])} | ${f1(rss.at(-1))} | ${f1(Math.min(...rss))} | ${f1(Math.max(...rss))} | ${f2(slope(rssPts))} | ${f2(slope(half(rssPts)))} |`,
      heap.length
        ? `| V8 heap used (MiB) | ${f1(heap[0]!.v)} | ${f1(heap.at(-1)!.v)} | ${f1(Math.min(...heap.map((h) => h.v)))} | ${f1(Math.max(...heap.map((h) => h.v)))} | ${f2(slope(heap))} | ${f2(slope(half(heap)))} |`
        : '| V8 heap used (MiB) | – | – | – | – | – | – |',
      '',
      '| operation | count | p50 ms | p99 ms |',
      '|---|---:|---:|---:|',
      ...(['session', 'password', 'token', 'oidc'] as Kind[]).map((k) => `| ${k} | ${counts.ops[k]} | ${f1(pctl(latencies[k], 50))} | ${f1(pctl(latencies[k], 99))} |`),
      '',
      `- ${totalOps} operations (${counts.requests} HTTP requests), ${counts.errors} errors${behind ? `, the load fell behind its pace ${behind} times` : ''}${errorKinds.size ? `: ${[...errorKinds].map(([k, n]) => `${n}× ${k}`).join('; ')}` : ''}`,
      `- RSS by minute (MiB): ${byMinute.join(' ')}`,
      '',
      'A slope near zero over the second half (after warm-up: V8 tiering, caches, the session table filling) means no steady growth; the whole-run slope includes the warm-up.',
    ];
    process.stdout.write(`\n${lines.join('\n')}\n`);
    writeSection(lines);
    if (errorExamples.length) process.stderr.write(`first errors:\n${errorExamples.join('\n')}\n`);
    if (crashed !== null) {
      process.stderr.write(`the server exited during the soak:\n${srv.state.logTail.join('\n')}\n`);
      process.exitCode = 1;
    }
  } finally {
    await server?.stop();
    await idp?.close();
    if (admin && pgDatabase) {
      await admin.query(`drop database if exists ${pgDatabase} with (force)`);
      await admin.end();
    }
    rmSync(sqliteDir, { recursive: true, force: true });
  }
}

function writeSection(lines: string[]) {
  const block = `${START}\n${lines.join('\n')}\n${END}`;
  let text = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '# Benchmark results\n';
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a !== -1 && b > a) text = text.slice(0, a) + block + text.slice(b + END.length);
  else text = `${text.replace(/\n*$/, '\n\n')}${block}\n`;
  writeFileSync(RESULTS, text);
}

await main();
