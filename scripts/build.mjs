#!/usr/bin/env node
// Builds the runnable artifact: `tsc -p tsconfig.build.json` compiles src/ to dist/ (or to
// `--out <dir>`), then every file of src/ that is not TypeScript (page scripts and styles, the API
// docs' init script) is copied beside the compiled code, where the modules read it through
// import.meta.url. `npm ci` runs this through the `prepare` script; `npm start` then runs
// dist/cli.js with plain Node (no TypeScript compiler at run time).
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { out: { type: 'string' } } });
const out = resolve(root, values.out ?? 'dist');
const src = join(root, 'src');

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  console.error('build: the TypeScript compiler is not installed (a devDependency): run `npm ci` without --omit=dev to build, then `npm prune --omit=dev`');
  process.exit(1);
}

rmSync(out, { recursive: true, force: true });
const compiled = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', out], { stdio: 'inherit' });
if (compiled.status !== 0) process.exit(compiled.status ?? 1);

let copied = 0;
for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || entry.name.endsWith('.ts')) continue;
  const from = join(entry.parentPath, entry.name);
  const to = join(out, relative(src, from));
  mkdirSync(dirname(to), { recursive: true });
  cpSync(from, to);
  copied++;
}
console.log(`build: compiled src/ to ${relative(root, out) || '.'} and copied ${copied} asset files`);
