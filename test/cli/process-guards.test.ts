import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * SPEC §12: no instance ever exits on a lost database connection — not even one that escapes
 * every handler (a driver event, a promise nobody awaited). Anything else still ends the
 * process, as Node would: a socket error of something that is not the database (an SMTP server,
 * an IdP) or a 503 about something else is not a reason to keep a process whose state can no
 * longer be trusted. Each case runs in its own process (fixtures/process-guard.ts).
 */
const FIXTURE = resolve(import.meta.dirname, 'fixtures/process-guard.ts');
const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '' } });

describe('gatehouse start: process-level guards', () => {
  for (const how of ['reject', 'throw'] as const) {
    const escaping = how === 'reject' ? 'unhandled rejection' : 'uncaught exception';
    it(`a lost database connection that escapes every handler (${escaping}) is logged and the process keeps serving`, () => {
      const res = run('database', how);
      expect(res.status, res.stderr).toBe(0);
      expect(res.stdout).toContain('still serving');
      expect(res.stdout).toContain('database connection error outside a request');
      expect(res.stdout).toContain('ECONNREFUSED');
    });

    it(`a programming error that escapes (${escaping}) still ends the process with code 1`, () => {
      const res = run('bug', how);
      expect(res.status, res.stderr).toBe(1);
      expect(res.stdout).not.toContain('still serving');
      expect(res.stdout).toContain('fatal error; exiting');
    });

    it(`a stray socket error that is not the database's (ECONNREFUSED, ${escaping}) still ends the process with code 1`, () => {
      const res = run('stray-socket', how);
      expect(res.status, res.stderr).toBe(1);
      expect(res.stdout).not.toContain('still serving');
      expect(res.stdout).not.toContain('database connection error');
      expect(res.stdout).toContain('fatal error; exiting');
      expect(res.stdout).toContain('ECONNREFUSED');
    });

    it(`a 503 that is not about the database (a mail not sent, ${escaping}) still ends the process with code 1`, () => {
      const res = run('mail-503', how);
      expect(res.status, res.stderr).toBe(1);
      expect(res.stdout).not.toContain('still serving');
      expect(res.stdout).toContain('fatal error; exiting');
    });
  }
});
