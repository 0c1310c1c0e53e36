import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Migrator, sql } from 'kysely';
import { createPasswordHasher } from '../../src/crypto/passwords.js';
import { migrateToLatest, openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { migrations } from '../../src/db/migrations/index.js';
import { newId } from '../../src/ids.js';
import { createTestGatehouse, dropSchema, ENGINE, TEST_DATABASE_URL } from '../helpers/app.js';
import { adminClient, postgresAvailable } from '../helpers/postgres.js';

const EXPECTED_TABLES = [
  'api_keys', 'audit_events', 'domains', 'invitations', 'job_leases', 'join_requests', 'logout_outbox', 'members', 'mfa_factors', 'oauth_clients', 'oidc_records',
  'one_time_tokens', 'organizations', 'rate_limits', 'recovery_codes', 'refresh_tokens', 'replay_cache', 'retired_slugs', 'session_clients', 'sessions',
  'setup_links', 'signing_keys', 'sso_connections', 'sso_flows', 'sso_identities', 'sso_idp_tokens', 'users',
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
    expect(await migrateToLatest(h.db, h.schema)).toEqual(['0001_initial', '0002_retired_slugs', '0003_tokens_and_provider', '0004_logout', '0005_idp_tokens', '0006_dashboard', '0007_housekeeping']);
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

/**
 * The previous release (P1) had no retired_slugs table: it renamed and deleted organizations,
 * writing the organization row and one audit event in one transaction, exactly as below
 * (src/organizations/service.ts at P1). An upgrade must protect the slugs it let go.
 */
describe(`migration 0002 on ${ENGINE}: slugs retired under the previous release`, () => {
  const passwords = createPasswordHasher({ memoryCost: 1024, timeCost: 1 });
  const PASSWORD = 'correct horse battery';

  /** A database at 0001 only (the P1 schema), on a file (SQLite) or a schema (PostgreSQL) a second process could open. */
  async function p1Database() {
    const schema = TEST_DATABASE_URL ? `m_${randomBytes(4).toString('hex')}` : null;
    const dir = TEST_DATABASE_URL ? null : mkdtempSync(join(tmpdir(), 'gatehouse-mig-'));
    const url = TEST_DATABASE_URL ?? `sqlite:${join(dir!, 'p1.db')}`;
    const h = await openDatabase(url, schema ? { schema } : {});
    const migrator = new Migrator({ db: h.db, provider: { getMigrations: async () => migrations }, ...(schema ? { migrationTableSchema: schema } : {}) });
    const { error, results } = await migrator.migrateTo('0001_initial');
    expect(error).toBeUndefined();
    expect(results?.map((r) => r.migrationName)).toEqual(['0001_initial']);
    const cleanup = async () => {
      if (schema) await dropSchema(schema);
      if (dir) rmSync(dir, { recursive: true, force: true });
    };
    return { h, url, schema, cleanup };
  }

  it("after the upgrade, another organization cannot take a slug renamed away or deleted under the previous release, and the organization that left it can take it back", async () => {
    const { h, url, schema, cleanup } = await p1Database();
    const db = h.db;
    const at = (minute: number) => new Date(Date.UTC(2026, 5, 1, 9, minute)).toISOString();
    const user = async (email: string) => {
      const id = newId();
      await db.insertInto('users').values({ id, email, name: null, password_hash: await passwords.hash(PASSWORD), email_verified: 1, is_superadmin: 0, created_at: at(0), updated_at: at(0) }).execute();
      return id;
    };
    const org = async (ownerId: string, name: string, slug: string) => {
      const id = newId();
      await db.insertInto('organizations').values({ id, name, slug, auth_required: 'any', require_mfa: 0, created_at: at(0), updated_at: at(0) }).execute();
      await db.insertInto('members').values({ organization_id: id, user_id: ownerId, role: 'owner', created_at: at(0), updated_at: at(0) }).execute();
      return id;
    };
    const event = (actorId: string, organizationId: string | null, targetId: string, action: string, metadata: unknown, minute: number) => ({
      id: newId(), organization_id: organizationId, actor_type: 'user' as const, actor_user_id: actorId, actor_api_key_id: null, action,
      target_type: 'organization', target_id: targetId, ip: '127.0.0.1', user_agent: null, request_id: 'r', metadata: JSON.stringify(metadata), created_at: at(minute),
    });
    /** P1's update(): the row, then organization.updated with from/to. */
    const p1Rename = async (actorId: string, id: string, name: string, from: string, to: string, minute: number) => {
      await db.updateTable('organizations').set({ slug: to, updated_at: at(minute) }).where('id', '=', id).execute();
      await db.insertInto('audit_events').values(event(actorId, id, id, 'organization.updated', { from: { name, slug: from }, to: { name, slug: to } }, minute)).execute();
    };
    /** P1's remove(): organization.deleted with name and slug, then the row (members cascade). */
    const p1Delete = async (actorId: string, id: string, name: string, slug: string, minute: number, organizationId: string | null = id) => {
      await db.insertInto('audit_events').values(event(actorId, organizationId, id, 'organization.deleted', { name, slug }, minute)).execute();
      await db.deleteFrom('organizations').where('id', '=', id).execute();
    };

    const corpOwner = await user('owner@corp.test');
    const mallory = await user('mallory@evil.test');
    const corp = await org(corpOwner, 'Corp', 'corp');
    await p1Rename(corpOwner, corp, 'Corp', 'corp', 'corp-global', 1);
    await p1Rename(corpOwner, corp, 'Corp', 'corp-global', 'corp-global', 2); // a name-only change leaves no slug behind
    const gone = await org(corpOwner, 'Gone', 'gone-corp');
    await p1Delete(corpOwner, gone, 'Gone', 'gone-corp', 3);
    const old = await org(corpOwner, 'Old', 'old-corp');
    await p1Delete(corpOwner, old, 'Old', 'old-corp', 4, null); // an event without organization_id: the target names the organization
    // Alpha leaves "alpha"; P1 let Beta take it and leave it again. First retirement wins,
    // even with more than one page of events in between.
    const alpha = await org(corpOwner, 'Alpha', 'alpha');
    await p1Rename(corpOwner, alpha, 'Alpha', 'alpha', 'alpha-2', 5);
    const beta = await org(mallory, 'Beta', 'beta');
    await p1Rename(mallory, beta, 'Beta', 'beta', 'alpha', 6);
    const filler = Array.from({ length: 600 }, () => event(mallory, beta, beta, 'organization.updated', { from: { name: 'Beta', slug: 'alpha' }, to: { name: 'Beta', slug: 'alpha' } }, 7));
    for (let i = 0; i < filler.length; i += 100) await db.insertInto('audit_events').values(filler.slice(i, i + 100)).execute();
    await p1Rename(mallory, beta, 'Beta', 'alpha', 'beta-2', 8);
    // Delta leaves "delta"; P1 let Echo take it, and Echo still holds it: Echo keeps it.
    const delta = await org(corpOwner, 'Delta', 'delta');
    await p1Rename(corpOwner, delta, 'Delta', 'delta', 'delta-2', 9);
    const echo = await org(mallory, 'Echo', 'delta');
    // Not JSON at all: skipped, not fatal.
    await db.insertInto('audit_events').values({ ...event(corpOwner, delta, delta, 'organization.updated', null, 10), metadata: '{not json' }).execute();
    await h.close();

    const t = await createTestGatehouse({ ...(TEST_DATABASE_URL ? {} : { databaseUrl: url }), ...(schema ? { schema } : {}) });
    try {
      expect(await t.deps.db.selectFrom('retired_slugs').selectAll().orderBy('slug').execute()).toEqual([
        { slug: 'alpha', organization_id: alpha, retired_at: at(5) },
        { slug: 'beta', organization_id: beta, retired_at: at(6) },
        { slug: 'corp', organization_id: corp, retired_at: at(1) },
        { slug: 'gone-corp', organization_id: gone, retired_at: at(3) },
        { slug: 'old-corp', organization_id: old, retired_at: at(4) },
      ]);
      const signIn = async (email: string, ip: string) => {
        const res = await t.request('POST', '/api/auth/sign-in/email', { body: { email, password: PASSWORD }, ip });
        expect(res.status, res.text).toBe(200);
        return { cookie: res.cookie! };
      };
      const owner = await signIn('owner@corp.test', '127.0.2.1');
      const evil = await signIn('mallory@evil.test', '127.0.2.2');
      const create = (as: { cookie: string }, slug: string) => t.request('POST', '/api/user/organizations', { as, body: { name: slug, slug } });
      const rename = (as: { cookie: string }, id: string, slug: string) => t.request('PATCH', `/api/user/organizations/${id}`, { as, body: { slug } });

      for (const slug of ['corp', 'gone-corp', 'old-corp', 'alpha']) {
        const taken = await create(evil, slug);
        expect(taken.status, `${slug}: ${taken.text}`).toBe(409);
        expect(taken.body).toMatchObject({ code: 'CONFLICT', details: { field: 'slug' } });
      }
      expect((await rename(evil, beta, 'corp')).status).toBe(409);
      expect((await rename(evil, beta, 'alpha')).status).toBe(409); // Beta held it once, but Alpha left it first
      expect((await rename(evil, echo, 'echo')).status).toBe(200); // Echo kept "delta" and may leave it...
      expect((await create(owner, 'delta')).status).toBe(409); // ...and then it is Echo's
      // The organizations that left their slugs may take them back.
      const back = await rename(owner, corp, 'corp');
      expect(back.status, back.text).toBe(200);
      expect(back.body.data.slug).toBe('corp');
      expect((await rename(owner, alpha, 'alpha')).status).toBe(200);
    } finally {
      await t.destroy();
      await cleanup();
    }
  });
});

describe.runIf(postgresAvailable('migrating the default schema of a PostgreSQL database'))('migrations on postgres: the default schema of a database', () => {
  it("migrates a database's default schema even when another schema already holds Kysely's bookkeeping tables", async () => {
    const name = `gh_mig_${randomBytes(4).toString('hex')}`;
    const admin = await adminClient();
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(TEST_DATABASE_URL!);
    url.pathname = `/${name}`;
    try {
      // Another application's (or an older run's) migrations in a schema of their own.
      const other = await openDatabase(url.toString(), { schema: 'other_app' });
      await migrateToLatest(other.db, 'other_app');
      await other.close();
      // The default schema (public), no schema option: as `gatehouse migrate` on a fresh database.
      const h = await openDatabase(url.toString());
      try {
        expect(await migrateToLatest(h.db)).toEqual(Object.keys(migrations));
        expect(await tables(h)).toEqual(EXPECTED_TABLES);
        const lock = await sql<{ schema: string }>`select table_schema as schema from information_schema.tables where table_name = 'kysely_migration_lock' order by 1`.execute(h.db);
        expect(lock.rows.map((r) => r.schema)).toEqual(['other_app', 'public']);
        expect(await migrateToLatest(h.db)).toEqual([]);
      } finally {
        await h.close();
      }
    } finally {
      await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
});
