/**
 * The cost of one OIDC SSO callback in Gatehouse: code exchange, ID token verification (RS256),
 * UserInfo, provisioning and session creation, measured as CPU time of the Gatehouse process
 * only. The IdP runs in a child process on 127.0.0.1; while Gatehouse waits for it, Gatehouse
 * spends no CPU, so IdP time is excluded.
 *
 *   node --import tsx bench/sso-callback.ts        (also run by `npm run bench`)
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { benchGatehouse } from './in-process.js';

const N = Number(process.env.BENCH_SSO_LOGINS ?? 1000);
const WARMUP = 100;
const RESULTS = new URL('./RESULTS.md', import.meta.url);

const child = spawn(process.execPath, ['--import', 'tsx', new URL('./sso-idp.ts', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] });
// Never leave the IdP behind, whatever happens here.
process.on('exit', () => child.kill('SIGKILL'));
const idp = await new Promise<{ issuer: string; clientId: string; clientSecret: string }>((resolve, reject) => {
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    if (buf.includes('\n')) resolve(JSON.parse(buf.split('\n')[0]!));
  });
  child.once('exit', (code) => reject(new Error(`IdP exited (${code})`)));
});

const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

interface Row { label: string; database: string; mean: number; p50: number; p99: number; perCore: number; startMean: number; wallPerLogin: number }

/** Measure first and repeat logins on one database (a fresh SQLite file, or a fresh PostgreSQL schema). */
async function measure(databaseUrl: string | null): Promise<Row[]> {
  const bench = await benchGatehouse(databaseUrl, 'sso');
  const { gh, config } = bench;
  const origin = { origin: config.baseUrl };
  const call = async (path: string, init: RequestInit = {}) => {
    const res = await gh.app.request(path, init);
    await res.arrayBuffer();
    return res;
  };
  try {
    const signUp = await call('/api/auth/sign-up/email', { method: 'POST', headers: { 'content-type': 'application/json', ...origin }, body: JSON.stringify({ email: 'owner@bench.test', password: 'bench password 1' }) });
    const cookie = signUp.headers.get('set-cookie')!.split(';')[0]!;
    const org = await gh.app.request('/api/user/organizations', { method: 'POST', headers: { 'content-type': 'application/json', cookie, ...origin }, body: JSON.stringify({ name: 'Bench', slug: 'bench' }) });
    const orgId = ((await org.json()) as { data: { id: string } }).data.id;
    const put = await call(`/api/user/organizations/${orgId}/settings/sso`, { method: 'PUT', headers: { 'content-type': 'application/json', cookie, ...origin }, body: JSON.stringify({ provider: 'oidc', issuerUrl: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret }) });
    if (put.status !== 200) throw new Error(`configure failed: ${put.status}`);

    /** One login; the Gatehouse CPU ms of the callback alone and of the login start. */
    const login = async (hint: string): Promise<{ callback: number; start: number }> => {
      let mark = process.cpuUsage();
      const start = await call(`/api/auth/sso/bench/login?login_hint=${encodeURIComponent(hint)}`);
      const startCpu = cpuMs(process.cpuUsage(mark));
      if (start.status !== 302) throw new Error(`login start: ${start.status}`);
      const browser = start.headers.get('set-cookie')!.split(';')[0]!;
      const atIdp = await fetch(start.headers.get('location')!, { redirect: 'manual' });
      const back = new URL(atIdp.headers.get('location')!);
      mark = process.cpuUsage();
      const cb = await call(back.pathname + back.search, { headers: { cookie: browser } });
      const callbackCpu = cpuMs(process.cpuUsage(mark));
      if (cb.status !== 302) throw new Error(`callback: ${cb.status}`);
      return { callback: callbackCpu, start: startCpu };
    };

    const run = async (label: string, hintOf: (i: number) => string): Promise<Row> => {
      for (let i = 0; i < WARMUP; i++) await login(hintOf(-1 - i));
      const samples: number[] = [];
      let starts = 0;
      const t0 = performance.now();
      for (let i = 0; i < N; i++) {
        const s = await login(hintOf(i));
        samples.push(s.callback);
        starts += s.start;
      }
      const wall = performance.now() - t0;
      samples.sort((a, b) => a - b);
      const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
      return { label, database: gh.deps.database.engine, mean, p50: samples[Math.floor(N / 2)]!, p99: samples[Math.floor(N * 0.99)]!, perCore: 1000 / mean, startMean: starts / N, wallPerLogin: wall / N };
    };

    return [
      await run('first login (JIT: new user, membership, identity, session)', (i) => `jit-${i < 0 ? `w${-i}` : i}@bench.test`),
      await run('repeat login (existing identity, session)', () => 'returning@bench.test'),
    ];
  } finally {
    await bench.close();
  }
}

const loadBefore = os.loadavg();
const rows = [...(await measure(null)), ...(process.env.BENCH_DATABASE_URL ? await measure(process.env.BENCH_DATABASE_URL) : [])];

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const repeat = rows.filter((r) => r.label.startsWith('repeat'));
const lines = [
  `## SSO callback (OIDC) — ${new Date().toISOString().slice(0, 10)}`,
  '',
  `- Machine: ${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}`,
  `- Date: ${new Date().toISOString()}`,
  `- Load average (1/5/15 min): before ${loadBefore.map((l) => l.toFixed(2)).join(' / ')}, after ${os.loadavg().map((l) => l.toFixed(2)).join(' / ')} on ${os.cpus().length} cores (near or above the core count, other processes shared the CPU)`,
  `- Command: \`${process.env.BENCH_DATABASE_URL ? 'BENCH_DATABASE_URL=… ' : ''}node --import tsx bench/sso-callback.ts\` (part of \`npm run bench\`); SQLite always, PostgreSQL when BENCH_DATABASE_URL is set`,
  `- Method: ${N} logins after ${WARMUP} warm-up, one at a time. The IdP (test/helpers/adversarial-idp.ts: RS256 ID token, UserInfo) runs in a child process on 127.0.0.1. "CPU ms" is the Gatehouse process's CPU time (process.cpuUsage) spent in the callback (GET /api/auth/sso/callback/{organizationId}, the dedicated redirect URI) — token request, RS256 verification, UserInfo request, provisioning, session, audit — excluding the IdP. "Callbacks/s on one core" = 1000 / mean CPU ms.`,
  '',
  '| callback | database | mean CPU ms | p50 | p99 | callbacks/s on one core | login start CPU ms | wall ms per full login |',
  '|---|---|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.label} | ${r.database} | ${r.mean.toFixed(2)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${Math.round(r.perCore).toLocaleString('en-US')} | ${r.startMean.toFixed(2)} | ${r.wallPerLogin.toFixed(2)} |`),
  '',
  `Target ≥ 300 callbacks/s on one core (IdP excluded): **${rows.every((r) => r.perCore >= 300) ? 'PASS' : 'FAIL'}** (${rows.map((r) => Math.round(r.perCore)).join(' and ')}).`,
  `Target (issue #16) ≤ 1.5 ms of Gatehouse CPU per OIDC login of a returning user, login start and callback together (IdP excluded): **${repeat.every((r) => r.mean + r.startMean <= 1.5) ? 'PASS' : 'FAIL'}** (${repeat.map((r) => `${r.database} ${(r.mean + r.startMean).toFixed(2)} ms = ${r.startMean.toFixed(2)} start + ${r.mean.toFixed(2)} callback`).join('; ')}).`,
];
console.log(lines.join('\n'));

const text = readFileSync(RESULTS, 'utf8');
const begin = '<!-- bench:sso:start -->';
const end = '<!-- bench:sso:end -->';
const block = `${begin}\n${lines.join('\n')}\n${end}`;
writeFileSync(RESULTS, text.includes(begin) ? text.replace(new RegExp(`${begin}[\\s\\S]*?${end}`), block) : `${text.trimEnd()}\n\n${block}\n`);

child.kill('SIGTERM');
