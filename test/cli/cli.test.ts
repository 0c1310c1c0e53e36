import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createKeyRing, parseKeySpec } from '../../src/crypto/keyring.js';
import { createApiKey, createTestGatehouse, testKeySpec } from '../helpers/app.js';
import { cliArgs } from '../helpers/cli.js';

function run(args: string[], env: Record<string, string>, cwd: string) {
  const res = spawnSync(process.execPath, cliArgs(...args), {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', GATEHOUSE_LOG_LEVEL: 'warn', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: res.status, out: res.stdout, err: res.stderr };
}

describe('gatehouse CLI', () => {
  it('migrate applies the migrations once, then reports the database up to date', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
    const env = { DATABASE_URL: `sqlite:${dir}/gh.db`, GATEHOUSE_SECRET_KEYS: testKeySpec() };
    const first = run(['migrate'], env, dir);
    expect(first.err).toBe('');
    expect(first.out).toContain('applied: 0001_initial');
    expect(run(['migrate'], env, dir).out).toContain('database is up to date');
  });

  it('exits with a message naming the bad variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
    const res = run(['migrate'], { PORT: 'abc' }, dir);
    expect(res.code).toBe(78);
    expect(res.err).toMatch(/Invalid configuration:\n\s+- PORT: /);
  });

  it('admin create makes a superadmin; running it again promotes and resets the password', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
    const env = { DATABASE_URL: `sqlite:${dir}/gh.db`, GATEHOUSE_SECRET_KEYS: testKeySpec() };
    const res = run(['admin', 'create', '--email', 'Root@Example.com', '--password', 'root password 1'], env, dir);
    expect(res.out).toMatch(/created superadmin root@example.com/);
    const db = new BetterSqlite3(`${dir}/gh.db`);
    expect(db.prepare('select is_superadmin, email_verified from users where email = ?').get('root@example.com')).toEqual({ is_superadmin: 1, email_verified: 1 });
    db.close();
    expect(run(['admin', 'create', '--email', 'root@example.com', '--password', 'short'], env, dir).code).toBe(2);
    expect(run(['admin', 'create', '--email', 'root@example.com', '--password', 'another password'], env, dir).out).toMatch(/promoted/);
  });

  it("admin create on a squatted address: the squatter's key and cookie answer 401 after promotion (real CLI)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
    const databaseUrl = `sqlite:${dir}/gh.db`;
    // A Gatehouse on the same database file: someone signs up ops@saas.test (never verified) and mints a key.
    const gh = await createTestGatehouse({ databaseUrl });
    try {
      const squatter = await gh.signUp('ops@saas.test', 'squatter password');
      const key = await createApiKey(gh, squatter, { name: 'waiting for promotion' });
      expect((await gh.request('GET', '/api/user/me', { apiKey: key.key })).status).toBe(200);

      const res = run(['admin', 'create', '--email', 'ops@saas.test', '--password', 'operator password'], { DATABASE_URL: databaseUrl, GATEHOUSE_SECRET_KEYS: testKeySpec() }, dir);
      expect(res.err).toBe('');
      expect(res.out).toMatch(/promoted superadmin ops@saas\.test .*revoked 1 session\(s\) and 1 API key\(s\)/);

      expect((await gh.request('GET', '/api/user/me', { apiKey: key.key })).status).toBe(401);
      expect((await gh.request('GET', '/api/admin/organizations', { apiKey: key.key })).status).toBe(401);
      expect((await gh.request('GET', '/api/auth/session', { as: squatter })).status).toBe(401);
      expect((await gh.request('GET', '/api/admin/organizations', { as: squatter })).status).toBe(401);
      expect((await gh.request('POST', '/api/auth/sign-in/email', { body: { email: 'ops@saas.test', password: 'squatter password' } })).status).toBe(401);
      const operator = await gh.request('POST', '/api/auth/sign-in/email', { body: { email: 'ops@saas.test', password: 'operator password' } });
      expect(operator.status).toBe(200);
      expect((await gh.request('GET', '/api/admin/organizations', { as: { cookie: operator.cookie! } })).status).toBe(200);
    } finally {
      await gh.destroy();
    }
  });

  it('secrets rotate re-encrypts every sealed value under the newest key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
    const oldSpec = testKeySpec('old');
    const env = { DATABASE_URL: `sqlite:${dir}/gh.db`, GATEHOUSE_SECRET_KEYS: oldSpec };
    run(['migrate'], env, dir);
    const old = createKeyRing(parseKeySpec(oldSpec));
    const db = new BetterSqlite3(`${dir}/gh.db`);
    const now = new Date().toISOString();
    db.prepare("insert into users (id, email, created_at, updated_at) values ('U1', 'u@example.com', ?, ?)").run(now, now);
    db.prepare("insert into organizations (id, name, slug, created_at, updated_at) values ('O1', 'O', 'o', ?, ?)").run(now, now);
    db.prepare(
      "insert into sso_connections (id, organization_id, protocol, provider, status, issuer, config, secret_enc, created_at, updated_at) values ('C1', 'O1', 'oidc', 'okta', 'active', 'https://idp.example', '{}', ?, ?, ?)",
    ).run(old.encrypt('client-secret', 'sso_connections.secret_enc:C1'), now, now);
    db.prepare("insert into mfa_factors (id, user_id, type, secret_enc, created_at) values ('F1', 'U1', 'totp', ?, ?)").run(old.encrypt('JBSWY3DPEHPK3PXP', 'mfa_factors.secret_enc:F1'), now);
    db.close();

    const newSpec = testKeySpec('new');
    const res = run(['secrets', 'rotate'], { ...env, GATEHOUSE_SECRET_KEYS: `${newSpec},${oldSpec}` }, dir);
    expect(res.out).toContain('re-encrypted 2 secret(s) under key "new"; 0 already current');
    const again = run(['secrets', 'rotate'], { ...env, GATEHOUSE_SECRET_KEYS: `${newSpec},${oldSpec}` }, dir);
    expect(again.out).toContain('re-encrypted 0 secret(s) under key "new"; 2 already current');

    const onlyNew = createKeyRing(parseKeySpec(newSpec));
    const db2 = new BetterSqlite3(`${dir}/gh.db`);
    const c = db2.prepare("select secret_enc from sso_connections where id = 'C1'").get() as { secret_enc: string };
    const f = db2.prepare("select secret_enc from mfa_factors where id = 'F1'").get() as { secret_enc: string };
    db2.close();
    expect(onlyNew.decrypt(c.secret_enc, 'sso_connections.secret_enc:C1')).toBe('client-secret');
    expect(onlyNew.decrypt(f.secret_enc, 'mfa_factors.secret_enc:F1')).toBe('JBSWY3DPEHPK3PXP');
  });

  it('start serves HTTP on an embedded database with a generated 0600 key file under ./data', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
    const port = 20000 + Math.floor(Math.random() * 20000);
    const child = spawn(process.execPath, cliArgs('start'), {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', GATEHOUSE_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    try {
      const deadline = Date.now() + 30_000;
      let ready = false;
      while (Date.now() < deadline && !ready) {
        await new Promise((r) => setTimeout(r, 200));
        ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
      }
      expect(ready, output).toBe(true);
      expect(statSync(join(dir, 'data', 'secret.key')).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'data', 'gatehouse.db')).isFile()).toBe(true);
      const res = await fetch(`http://127.0.0.1:${port}/api/auth/sign-up/email`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'first@example.com', password: 'first password' }),
      });
      expect(res.status).toBe(201);
      expect(output).toContain('Gatehouse listening');
      expect(output).toContain('generated a development secret key file');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
