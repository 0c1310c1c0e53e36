import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kysely, SqliteDialect } from 'kysely';
import { migrateToLatest, openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import type { Database } from '../../src/db/schema.js';
import { hasEnabledConnection } from '../../src/policy/store.js';
import { findActiveConnection, findActiveConnectionBySlug } from '../../src/sso/connections/store.js';

/**
 * The lookups of an organization's active connection run on every SSO login start and every
 * password sign-in (the policy). On SQLite they must use the partial unique index
 * sso_connections_one_active: with `status` bound as a parameter SQLite cannot prove the index's
 * `WHERE status = 'active'` and scans every organization's connections, so one tenant's login
 * start costs more the more tenants there are. Checked on SQLite's own query plans (PostgreSQL
 * plans with the bound value).
 */
describe('active-connection lookups use the one-active index', () => {
  let h: DatabaseHandle;
  let logged: Kysely<Database>;
  const statements: string[] = [];
  beforeAll(async () => {
    h = await openDatabase('sqlite::memory:');
    await migrateToLatest(h.db);
    if (h.raw.kind !== 'sqlite') throw new Error('expected SQLite');
    logged = new Kysely<Database>({ dialect: new SqliteDialect({ database: h.raw.client }), log: (e) => void statements.push(e.query.sql) });
  });
  afterAll(async () => {
    await h.close();
  });

  const planOf = (sqlText: string) => {
    if (h.raw.kind !== 'sqlite') throw new Error('expected SQLite');
    const params = Array.from({ length: (sqlText.match(/\?/g) ?? []).length }, () => 'x');
    return (h.raw.client.prepare(`explain query plan ${sqlText}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail);
  };

  for (const [name, run] of [
    ['login start by slug (findActiveConnectionBySlug)', () => findActiveConnectionBySlug(logged, 'acme')],
    ['active connection of an organization (findActiveConnection)', () => findActiveConnection(logged, 'org_1')],
    ['sign-in policy (hasEnabledConnection)', () => hasEnabledConnection(logged, 'org_1')],
  ] as const) {
    it(`${name}: no scan of every tenant's connections`, async () => {
      statements.length = 0;
      await run();
      expect(statements).toHaveLength(1);
      const plan = planOf(statements[0]!);
      expect(plan.join(' | ')).toMatch(/USING INDEX sso_connections_one_active/);
      expect(plan.some((d) => /^SCAN (c|sso_connections)\b/.test(d))).toBe(false);
    });
  }
});
