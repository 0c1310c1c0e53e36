import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * SPEC §12: no instance ever exits on a lost database connection — not even one that escapes
 * every handler (a driver event, a promise nobody awaited). Anything else still ends the
 * process, as Node would. Each case runs in its own process (fixtures/process-guard.ts).
 */
const FIXTURE = resolve(import.meta.dirname, 'fixtures/process-guard.ts');
const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '' } });

describe('gatehouse start: process-level guards', () => {
  for (const how of ['reject', 'throw'] as const) {
    it(`a lost database connection that escapes every handler (${how === 'reject' ? 'unhandled rejection' : 'uncaught exception'}) is logged and the process keeps serving`, () => {
      const res = run('database', how);
      expect(res.status, res.stderr).toBe(0);
      expect(res.stdout).toContain('still serving');
      expect(res.stdout).toContain('database connection error outside a request');
    });

    it(`a programming error that escapes (${how === 'reject' ? 'unhandled rejection' : 'uncaught exception'}) still ends the process with code 1`, () => {
      const res = run('bug', how);
      expect(res.status, res.stderr).toBe(1);
      expect(res.stdout).not.toContain('still serving');
      expect(res.stdout).toContain('fatal error; exiting');
    });
  }
});
