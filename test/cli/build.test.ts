import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testKeySpec } from '../helpers/app.js';
import { until } from '../helpers/postgres.js';

/**
 * The artifact users run: `npm run build` (what `npm ci` runs through `prepare`) compiles src/ to
 * plain JavaScript, and `node dist/cli.js start` serves with no TypeScript loader. Node 20 cannot
 * import a .ts file without one, so a compiled module that still named a .ts file, or a page
 * asset the build forgot to copy, fails here.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const SRC = join(ROOT, 'src');

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

describe('the built artifact', () => {
  // Built beside a link to this checkout's node_modules and package.json ("type": "module").
  const work = mkdtempSync(join(tmpdir(), 'gh-build-'));
  const out = join(work, 'dist');
  symlinkSync(join(ROOT, 'node_modules'), join(work, 'node_modules'));
  symlinkSync(join(ROOT, 'package.json'), join(work, 'package.json'));
  let child: ChildProcess | undefined;

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const gone = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('npm run build compiles every module to JavaScript and copies every non-TypeScript source file', () => {
    const res = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--out', out], { cwd: ROOT, encoding: 'utf8' });
    expect(res.status, res.stderr + res.stdout).toBe(0);
    const built = new Set(filesUnder(out));
    for (const file of filesUnder(SRC)) {
      const expected = file.endsWith('.ts') ? file.replace(/\.ts$/, '.js') : file;
      expect(built.has(expected), `${expected} in the build`).toBe(true);
    }
    expect([...built].filter((f) => f.endsWith('.ts'))).toEqual([]);
  }, 120_000);

  it('node dist/cli.js start serves a healthy instance, its first OpenID Provider request, its pages and their assets without a TypeScript loader', async () => {
    expect(existsSync(join(out, 'cli.js'))).toBe(true);
    const dir = join(work, 'run');
    mkdirSync(dir);
    let log = '';
    child = spawn(process.execPath, [join(out, 'cli.js'), 'start'], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', HOST: '127.0.0.1', GATEHOUSE_SECRET_KEYS: testKeySpec(), GATEHOUSE_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    await until(() => /"listen":"127\.0\.0\.1:(\d+)"/.test(log) || child!.exitCode !== null, 'the built instance to listen', 2400);
    const port = /"listen":"127\.0\.0\.1:(\d+)"/.exec(log)?.[1];
    expect(port, log).toBeDefined();
    const base = `http://127.0.0.1:${port}`;

    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    // The first OpenID Provider request of a new installation creates the first signing key and
    // must be served with it (it was a 500 once: the key "activated" after the request's clock).
    expect((await fetch(`${base}/.well-known/openid-configuration`)).status).toBe(200);
    const signIn = await fetch(`${base}/sign-in`);
    expect(signIn.status).toBe(200);
    const assets = [...(await signIn.text()).matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) expect((await fetch(base + asset)).status, asset).toBe(200);
    const docs = await fetch(`${base}/api/docs`);
    expect(docs.status).toBe(200);
    const docsAssets = [...(await docs.text()).matchAll(/(?:src|href)="(\/api\/docs\/[^"]+)"/g)].map((m) => m[1]!);
    expect(docsAssets.length).toBeGreaterThan(0);
    for (const asset of docsAssets) expect((await fetch(base + asset)).status, asset).toBe(200);
    expect(log).not.toMatch(/"level":(50|60)/);
  }, 120_000);
});
