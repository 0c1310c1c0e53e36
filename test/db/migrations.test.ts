import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { dropSchema, ENGINE, TEST_DATABASE_URL } from '../helpers/app.js';

const EXPECTED_TABLES = [
  'api_keys', 'audit_events', 'domains', 'invitations', 'join_requests', 'members', 'mfa_factors', 'one_time_tokens',
  'organizations', 'rate_limits', 'recovery_codes', 'replay_cache', 'retired_slugs', 'sessions', 'sso_connections', 'sso_flows',
  'sso_identities', 'users',
];

const handles: Array<{ h: DatabaseHandle; schema: string | null }> = [];
async function fresh() {
  const schema = TEST_DATABASE_URL ? `m_${randomBytes(4).toString('hex')}` : null;
  const h = await openDatabase(TEST_DATABASE_URL ?? 'sqlite::memory:', schema ? { schema } : {});
  handles.push({ h, schema });
  return h;
}
afterAll(async () => {
  for (const { h, schema } of handles) {
    await h.close();
    if (schema) await dropSchema(schema);
  }
});

async function tables(h: DatabaseHandle): Promise<string[]> {
  if (h.engine === 'sqlite') {
    const r = await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like 'kysely_%'`.execute(h.db);
    return r.rows.map((x) => x.name).sort();
  }
  const r = await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema() and table_name not like 'kysely_%'`.execute(h.db);
  return r.rows.map((x) => x.name).sort();
}

describe(`migrations on ${ENGINE}`, () => {
  it('create every table from an empty database, and a second run applies nothing', async () => {
    const h = await fresh();
    expect(await tables(h)).toEqual([]);
    expect(await migrateToLatest(h.db, h.schema)).toEqual(['0001_initial', '0002_retired_slugs']);
    expect(await tables(h)).toEqual(EXPECTED_TABLES);
    expect(await migrateToLatest(h.db, h.schema)).toEqual([]);
  });

  it('enforce one verified owner per domain and one active SSO connection per organization', async () => {
    const h = await fresh();
    await migrateToLatest(h.db, h.schema);
    const now = new Date().toISOString();
    for (const id of ['O1', 'O2']) {
      await h.db.insertInto('organizations').values({ id, name: id, slug: id.toLowerCase(), auth_required: 'any', require_mfa: 0, created_at: now, updated_at: now }).execute();
    }
    const domain = (id: string, org: string, status: 'pending' | 'verified') => ({
      id, organization_id: org, domain: 'acme.com', status, verification_token: id, verified_at: null, last_checked_at: null,
      auto_join: 0 as const, require_approval: 0 as const, join_role: 'member' as const, created_at: now, updated_at: now,
    });
    await h.db.insertInto('domains').values(domain('D1', 'O1', 'verified')).execute();
    await h.db.insertInto('domains').values(domain('D2', 'O2', 'pending')).execute(); // pending twice is fine
    await expect(h.db.updateTable('domains').set({ status: 'verified' }).where('id', '=', 'D2').execute()).rejects.toThrow();

    const conn = (id: string, status: 'active' | 'replaced') => ({
      id, organization_id: 'O1', protocol: 'oidc' as const, provider: 'okta', status, enabled: 1 as const, config_version: 1,
      issuer: 'https://idp.example', config: '{}', secret_enc: null, allow_jit: 1 as const, default_role: 'member' as const,
      allowed_domains: null, allow_idp_initiated: 0 as const, created_at: now, updated_at: now,
    });
    await h.db.insertInto('sso_connections').values(conn('C1', 'active')).execute();
    await h.db.insertInto('sso_connections').values(conn('C0', 'replaced')).execute();
    await expect(h.db.insertInto('sso_connections').values(conn('C2', 'active')).execute()).rejects.toThrow();
  });

  it('roll a failed multi-step write back entirely', async () => {
    const h = await fresh();
    await migrateToLatest(h.db, h.schema);
    const now = new Date().toISOString();
    await expect(
      h.db.transaction().execute(async (tx) => {
        await tx.insertInto('organizations').values({ id: 'O9', name: 'x', slug: 'x', auth_required: 'any', require_mfa: 0, created_at: now, updated_at: now }).execute();
        await tx.insertInto('members').values({ organization_id: 'O9', user_id: 'no-such-user', role: 'owner', created_at: now, updated_at: now }).execute();
      }),
    ).rejects.toThrow();
    expect(await h.db.selectFrom('organizations').select('id').execute()).toEqual([]);
  });
});
