import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kysely, SqliteDialect } from 'kysely';
import { migrateToLatest, openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import type { Database } from '../../src/db/schema.js';
import { findVerifiedDomain } from '../../src/domains/store.js';
import { organizationsTiedTo } from '../../src/logout/universal-logout/store.js';
import { hasEnabledConnection } from '../../src/policy/store.js';
import { findActiveConnection, findActiveConnectionBySlug } from '../../src/sso/connections/store.js';

/**
 * The lookups of an organization's active connection (every SSO login start, the sign-in policy)
 * and of a domain's verified row (every password sign-in and SSO login) must use the partial
 * unique indexes sso_connections_one_active and domains_one_verified on SQLite: with `status`
 * bound as a parameter SQLite cannot prove the index's `WHERE status = '…'` and scans every
 * organization's rows, so one tenant's sign-in costs more the more tenants there are. Checked on
 * SQLite's own query plans (PostgreSQL plans with the bound value).
 */
describe('hot lookups use the partial indexes, not a scan of every tenant', () => {
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

  for (const [name, run, index, table] of [
    ['login start by slug (findActiveConnectionBySlug)', () => findActiveConnectionBySlug(logged, 'acme'), 'sso_connections_one_active', /^SCAN (c|sso_connections)\b/],
    ['active connection of an organization (findActiveConnection)', () => findActiveConnection(logged, 'org_1'), 'sso_connections_one_active', /^SCAN sso_connections\b/],
    ['sign-in policy (hasEnabledConnection)', () => hasEnabledConnection(logged, 'org_1'), 'sso_connections_one_active', /^SCAN sso_connections\b/],
    ['verified domain of an email (findVerifiedDomain)', () => findVerifiedDomain(logged, 'acme.test'), 'domains_one_verified', /^SCAN domains\b/],
  ] as const) {
    it(`${name}: no scan of every tenant's rows`, async () => {
      statements.length = 0;
      await run();
      expect(statements).toHaveLength(1);
      const plan = planOf(statements[0]!);
      expect(plan.join(' | ')).toContain(`USING INDEX ${index}`);
      expect(plan.some((d) => table.test(d))).toBe(false);
    });
  }

  it("Universal Logout's verified-domain tie (organizationsTiedTo): no scan of every tenant's domains", async () => {
    statements.length = 0;
    await organizationsTiedTo(logged, 'usr_1', 'acme.test');
    const domainQuery = statements.find((s) => s.includes('"domains"'));
    expect(domainQuery).toBeDefined();
    const plan = planOf(domainQuery!);
    expect(plan.join(' | ')).toContain('USING INDEX domains_one_verified');
    expect(plan.some((d) => /^SCAN domains\b/.test(d))).toBe(false);
  });
});
