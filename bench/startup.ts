/**
 * Start-up time and idle memory of `gatehouse start`: the built artifact (`node dist/cli.js`, what
 * `npm start` runs) beside the sources through tsx (`node --import tsx src/cli.ts`, how it ran
 * before the build step). Each run starts a fresh process on a fresh SQLite database (migrations
 * included), times spawn → first 200 from /readyz, then leaves it idle and reads its resident set.
 *
 *   npm run build && node --import tsx bench/startup.ts     (also `npm run bench:startup`)
 *
 * BENCH_STARTUP_RUNS (default 5), BENCH_STARTUP_IDLE_S (default 10), BENCH_DATABASE_URL (adds runs
 * of the built artifact on that PostgreSQL database: migrated by the first start, reused after).
 * Figures are recorded, never asserted.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { machineLine, median, rssMiB, START_NODE_FLAGS, writeResultsSection } from './results.js';

const ROOT = resolve(import.meta.dirname, '..');
const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 5);
const IDLE_S = Number(process.env.BENCH_STARTUP_IDLE_S ?? 10);
const KEY = `bench:${Buffer.alloc(32, 7).toString('base64')}`;

interface Variant {
  label: string;
  args: string[];
  databaseUrl?: string;
}

const NPM_START = `node ${[...START_NODE_FLAGS, 'bin/gatehouse.js'].join(' ')} start`;
const variants: Variant[] = [
  { label: `\`npm start\` (\`${NPM_START}\`)`, args: [...START_NODE_FLAGS, join(ROOT, 'bin/gatehouse.js'), 'start'] },
  { label: 'built artifact, default V8 flags `node dist/cli.js start`', args: [join(ROOT, 'dist/cli.js'), 'start'] },
  { label: 'sources through tsx `node --import tsx src/cli.ts start`', args: ['--import', import.meta.resolve('tsx'), join(ROOT, 'src/cli.ts'), 'start'] },
];
if (process.env.BENCH_DATABASE_URL) variants.push({ label: `\`npm start\` (\`${NPM_START}\`)`, args: [...START_NODE_FLAGS, join(ROOT, 'bin/gatehouse.js'), 'start'], databaseUrl: process.env.BENCH_DATABASE_URL });

if (!existsSync(join(ROOT, 'dist/cli.js'))) {
  console.error('bench/startup: run `npm run build` first');
  process.exit(1);
}

async function once(v: Variant): Promise<{ readyMs: number; rss: number }> {
  const dir = mkdtempSync(join(os.tmpdir(), 'gh-startup-'));
  const started = performance.now();
  const child = spawn(process.execPath, v.args, {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', HOST: '127.0.0.1', GATEHOUSE_SECRET_KEYS: KEY, GATEHOUSE_LOG_LEVEL: 'info', DATABASE_URL: v.databaseUrl ?? `sqlite:${join(dir, 'gh.db')}`, NODE_ENV: 'production', GATEHOUSE_BASE_URL: 'https://gatehouse.bench.test' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    let out = '';
    const port = await new Promise<string>((resolvePort, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /"listen":"127\.0\.0\.1:(\d+)"/.exec(out);
        if (m) resolvePort(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const readyMs = performance.now() - started;
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    return { readyMs, rss: rssMiB(child.pid!) };
  } finally {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: string[] = [];
const loadBefore = os.loadavg()[0]!;
for (const v of variants) {
  const results: { readyMs: number; rss: number }[] = [];
  await once(v); // warm-up: the file cache, not counted
  for (let i = 0; i < RUNS; i++) results.push(await once(v));
  const ready = results.map((r) => r.readyMs);
  const rss = results.map((r) => r.rss);
  const line = `| ${v.label} | ${v.databaseUrl ? 'postgres' : 'sqlite'} | ${median(ready).toFixed(0)} | ${Math.min(...ready).toFixed(0)} – ${Math.max(...ready).toFixed(0)} | ${median(rss).toFixed(0)} | ${Math.min(...rss).toFixed(0)} – ${Math.max(...rss).toFixed(0)} |`;
  console.log(line);
  rows.push(line);
}
const loadAfter = os.loadavg()[0]!;

writeResultsSection('startup', [
  `## Start-up and idle memory — ${new Date().toISOString().slice(0, 10)}`,
  '',
  machineLine(),
  `- Date: ${new Date().toISOString()}; 1-minute load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after`,
  '- Command: `npm run build && npm run bench:startup` (bench/startup.ts)',
  `- Method: per variant one warm-up start, then ${RUNS} starts, one at a time, each a fresh process with NODE_ENV=production on a fresh SQLite file (migrations applied at start) or the given PostgreSQL database; "ready" = spawn until the first 200 from GET /readyz (polled every 5 ms); RSS = VmRSS after ${IDLE_S} s idle. Median, with min – max.`,
  '',
  '| process | database | ready ms (median) | ready ms (min – max) | idle RSS MiB (median) | idle RSS MiB (min – max) |',
  '|---|---|---:|---:|---:|---:|',
  ...rows,
  '',
  'Target: idle RSS ≤ 120 MB (114.4 MiB) for `npm start` (174 MB was measured with tsx before the build step). The V8 flag shrinks the young generation (16 → 4 MiB per semi-space); its cost under load is in the session-check rows above.',
]);
