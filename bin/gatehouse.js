#!/usr/bin/env -S node --max-semi-space-size=4
// Entry point of the `gatehouse` CLI: runs the compiled JavaScript in dist/ (built by
// `npm run build`, which `npm ci` runs through `prepare`). No TypeScript compiler at run time.
// --max-semi-space-size=4 (MiB; also in `npm start`): V8's young generation grows to 16 MiB per
// semi-space by default and stays there, a third of an idle instance's memory; 4 MiB costs a few
// more minor collections under load (docs/operations.md, bench/RESULTS.md).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('Gatehouse is not built: run `npm run build` (npm ci and npm install run it through the prepare script)');
  process.exit(1);
}
await import(entry.href);
