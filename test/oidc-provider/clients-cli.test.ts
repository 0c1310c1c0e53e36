import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/crypto/tokens.js';
import { verifyClientSecret } from '../../src/oidc-provider/clients/service.js';
import { createTestGatehouse, testKeySpec } from '../helpers/app.js';
import { cliArgs } from '../helpers/cli.js';

/**
 * `gatehouse clients create | list | delete` run as real processes on an SQLite file (like
 * test/cli/cli.test.ts): the same rules as the admin API, the secret printed once, the system as
 * the audited actor.
 */
/** Each run starts Node and tsx afresh (seconds each on a loaded machine); a test makes several. */
const SLOW = { timeout: 240_000 };

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'gh-clients-cli-'));
  const env = { DATABASE_URL: `sqlite:${dir}/gh.db`, GATEHOUSE_SECRET_KEYS: testKeySpec() };
  const run = (...args: string[]) => {
    const res = spawnSync(process.execPath, cliArgs('clients', ...args), {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', GATEHOUSE_LOG_LEVEL: 'warn', ...env },
      encoding: 'utf8',
      timeout: 120_000,
    });
    return { code: res.status, out: res.stdout, err: res.stderr };
  };
  const query = <T>(sql: string, ...params: unknown[]): T[] => {
    const db = new BetterSqlite3(`${dir}/gh.db`, { readonly: true });
    try {
      return db.prepare(sql).all(...params) as T[];
    } finally {
      db.close();
    }
  };
  return { dir, env, run, query };
}

interface ClientRow {
  id: string;
  name: string;
  secret_hash: string | null;
  token_endpoint_auth_method: string;
  redirect_uris: string;
  post_logout_redirect_uris: string;
  backchannel_logout_uri: string | null;
  first_party: number;
}

describe('gatehouse clients (CLI)', () => {
  it('create prints the client id and the secret once, labelled; only the SHA-256 is stored; the system is the audited actor', SLOW, () => {
    const { run, query } = setup();
    const res = run(
      'create', '--name', 'Billing', '--redirect-uri', 'https://billing.example.com/cb', '--redirect-uri', 'http://localhost:8080/cb',
      '--post-logout-redirect-uri', 'https://billing.example.com/bye', '--backchannel-logout-uri', 'https://billing.example.com/bc', '--first-party',
    );
    expect(res.err).toBe('');
    expect(res.code).toBe(0);
    const clientId = /^ {2}client id: +(gh_client_[0-9A-Z]{26})$/m.exec(res.out)?.[1];
    const secret = /^ {2}client secret: +(gcs_[A-Za-z0-9_-]{43})$/m.exec(res.out)?.[1];
    expect(clientId, res.out).toBeTruthy();
    expect(secret, res.out).toBeTruthy();
    expect(res.out).toMatch(/shown only now/);

    const [row] = query<ClientRow>('select * from oauth_clients');
    expect(row).toMatchObject({
      id: clientId,
      name: 'Billing',
      secret_hash: sha256(secret!),
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: JSON.stringify(['https://billing.example.com/cb', 'http://localhost:8080/cb']),
      post_logout_redirect_uris: JSON.stringify(['https://billing.example.com/bye']),
      backchannel_logout_uri: 'https://billing.example.com/bc',
      first_party: 1,
    });
    expect(verifyClientSecret(row!.secret_hash, secret)).toBe(true);
    for (const value of Object.values(row!)) expect(String(value)).not.toContain(secret);
    const events = query<{ action: string; actor_type: string; actor_user_id: string | null; metadata: string }>('select action, actor_type, actor_user_id, metadata from audit_events');
    expect(events).toEqual([expect.objectContaining({ action: 'oauth_client.created', actor_type: 'system', actor_user_id: null })]);
    expect(events[0]!.metadata).not.toContain(secret);
    expect(events[0]!.metadata).not.toContain(row!.secret_hash);

    // list shows it, never the secret; delete removes it (audited), a second delete is exit 1.
    const list = run('list');
    expect(list.code).toBe(0);
    expect(list.out).toContain(clientId);
    expect(list.out).toContain('Billing');
    expect(list.out).not.toContain(secret);
    expect(list.out).not.toContain(row!.secret_hash);
    const del = run('delete', clientId!);
    expect(del.code, del.err).toBe(0);
    expect(del.out).toContain(`deleted client ${clientId}`);
    expect(query('select id from oauth_clients')).toEqual([]);
    expect(query<{ action: string; actor_type: string }>("select action, actor_type from audit_events where action = 'oauth_client.deleted'")).toEqual([{ action: 'oauth_client.deleted', actor_type: 'system' }]);
    const again = run('delete', clientId!);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/not found/);
    expect(run('list').out.trim()).toBe('no clients');
  });

  it('a public client (--auth-method none) gets no secret', SLOW, () => {
    const { run, query } = setup();
    const res = run('create', '--name', 'SPA', '--redirect-uri', 'http://127.0.0.1:5173/cb', '--auth-method', 'none');
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/client secret: none \(token endpoint auth method none; a public client, PKCE required\)/);
    expect(res.out).not.toMatch(/gcs_/);
    expect(query<ClientRow>('select secret_hash, token_endpoint_auth_method from oauth_clients')).toEqual([{ secret_hash: null, token_endpoint_auth_method: 'none' }]);
  });

  it('refuses what the API refuses (exit 2, each problem named) and writes nothing', SLOW, () => {
    const { run, query } = setup();
    const res = run('create', '--name', 'Evil', '--redirect-uri', 'http://harvest.evil.test/cb', '--redirect-uri', 'com.evil.app:/cb', '--auth-method', 'client_secret_jwt');
    expect(res.code).toBe(2);
    expect(res.out).toBe('');
    expect(res.err).toContain('invalid client:');
    expect(res.err).toMatch(/redirectUris\.0: http is allowed only on localhost/);
    expect(res.err).toMatch(/redirectUris\.1: the scheme "com\.evil\.app:" is not allowed/);
    expect(res.err).toMatch(/tokenEndpointAuthMethod: /);
    expect(query('select id from oauth_clients')).toEqual([]);
    expect(query('select id from audit_events')).toEqual([]);
    const noKeys = run('create', '--name', 'PKJ', '--redirect-uri', 'https://pkj.example.com/cb', '--auth-method', 'private_key_jwt');
    expect(noKeys.code).toBe(2);
    expect(noKeys.err).toMatch(/jwks: private_key_jwt needs jwksUri or jwks/);
  });

  it('usage errors exit 2 with the usage: a missing --redirect-uri, an unknown option, delete without an id, an unknown subcommand', SLOW, () => {
    const { run } = setup();
    for (const args of [['create', '--name', 'x'], ['create', '--name', 'x', '--redirect-uri', 'https://a.example.com/cb', '--bogus'], ['delete'], ['rotate']]) {
      const res = run(...args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.err, args.join(' ')).toContain('gatehouse clients create --name N --redirect-uri U');
    }
  });

  it('a client made by the CLI is the one the admin API and the provider see', SLOW, async () => {
    const { run, env } = setup();
    const res = run('create', '--name', 'Shared', '--redirect-uri', 'https://shared.example.com/cb', '--auth-method', 'client_secret_post');
    expect(res.code, res.err).toBe(0);
    const clientId = /client id: +(\S+)/.exec(res.out)![1]!;
    const secret = /client secret: +(\S+)/.exec(res.out)![1]!;
    const gh = await createTestGatehouse({ databaseUrl: env.DATABASE_URL });
    try {
      const meta = await gh.services.clients.findProviderClient(clientId);
      expect(meta).toMatchObject({ client_id: clientId, client_name: 'Shared', token_endpoint_auth_method: 'client_secret_post' });
      expect(verifyClientSecret(meta!.client_secret, secret)).toBe(true);
      expect(verifyClientSecret(meta!.client_secret, meta!.client_secret)).toBe(false);
    } finally {
      await gh.destroy();
    }
  });
});
