#!/usr/bin/env node
// Entry point of the `gatehouse` CLI: runs the compiled JavaScript in dist/ (built by
// `npm run build`, which `npm ci` runs through `prepare`). No TypeScript compiler at run time.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('Gatehouse is not built: run `npm run build` (npm ci and npm install run it through the prepare script)');
  process.exit(1);
}
await import(entry.href);
