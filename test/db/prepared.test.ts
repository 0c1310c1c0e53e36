import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql, type KyselyPlugin } from 'kysely';
import { migrateToLatest, openDatabase, type DatabaseHandle } from '../../src/db/database.js';
import { prepareQuery, preparedInsert } from '../../src/db/prepared.js';
import { dropSchema, TEST_DATABASE_URL } from '../helpers/app.js';

const NOW = '2026-12-07T00:00:00.000Z';
const insertOrg = preparedInsert('organizations');
const orgBySlug = prepareQuery((db, p: { slug: string }) => db.selectFrom('organizations').select(['id', 'slug', 'auth_required']).where('slug', '=', p.slug).limit(1));
const rename = prepareQuery((db, p: { id: string; name: string }) => db.updateTable('organizations').set({ name: p.name }).where('id', '=', p.id));

/** On the suite's engine, and on SQLite always (a process may hold both dialects: each gets its own compiled SQL). */
const engines = [{ name: 'sqlite', url: 'sqlite::memory:' }, ...(TEST_DATABASE_URL ? [{ name: 'postgres', url: TEST_DATABASE_URL }] : [])];

describe.each(engines)('prepared queries on $name', ({ url }) => {
  let h: DatabaseHandle;
  let schema: string | null = null;
  beforeAll(async () => {
    schema = url.startsWith('sqlite:') ? null : `prep_${randomBytes(4).toString('hex')}`;
    h = await openDatabase(url, schema ? { schema } : {});
    await migrateToLatest(h.db, schema);
    for (const [id, slug] of [['org_a', 'acme'], ['org_b', 'globex']] as const) {
      await insertOrg(h.db, { id, name: slug, slug, auth_required: 'any', require_mfa: 0, created_at: NOW, updated_at: NOW });
    }
  });
  afterAll(async () => {
    await h.close();
    if (schema) await dropSchema(schema);
  });

  it('binds each run its own values (no value of an earlier run is reused)', async () => {
    expect(await orgBySlug.first(h.db, { slug: 'acme' })).toMatchObject({ id: 'org_a' });
    expect(await orgBySlug.first(h.db, { slug: 'globex' })).toMatchObject({ id: 'org_b' });
    expect(await orgBySlug.first(h.db, { slug: 'nobody' })).toBeUndefined();
  });

  it('SQL injection: a value is always bound, never spliced into the compiled SQL', async () => {
    expect(await orgBySlug.all(h.db, { slug: "acme' or '1'='1" })).toEqual([]);
    expect(await rename.changed(h.db, { id: "x' or '1'='1", name: 'owned' })).toBe(0);
    expect((await orgBySlug.first(h.db, { slug: 'acme' }))).toBeDefined();
    const names = await h.db.selectFrom('organizations').select('name').execute();
    expect(names.map((r) => r.name)).not.toContain('owned');
  });

  it('runs inside a transaction, and counts the rows an update changed', async () => {
    await expect(
      h.db.transaction().execute(async (tx) => {
        expect(await rename.changed(tx, { id: 'org_b', name: 'Globex Corp' })).toBe(1);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await h.db.selectFrom('organizations').select('name').where('id', '=', 'org_b').executeTakeFirstOrThrow()).toEqual({ name: 'globex' });
  });

  it('refuses a missing value instead of binding undefined', async () => {
    await expect(orgBySlug.first(h.db, {} as { slug: string })).rejects.toThrow('no value for slug');
  });

  it('an insert leaves out an undefined column, as Kysely does (the database default applies)', async () => {
    await insertOrg(h.db, { id: 'org_c', name: 'c', slug: 'initech', auth_required: undefined as unknown as 'any', require_mfa: 0, created_at: NOW, updated_at: NOW });
    expect(await orgBySlug.first(h.db, { slug: 'initech' })).toEqual({ id: 'org_c', slug: 'initech', auth_required: 'any' });
  });

  it("an executor's plugins see every run (compiled per run then, under the id the result comes back with)", async () => {
    const seen: string[] = [];
    const ids = new Set<unknown>();
    const plugin: KyselyPlugin = {
      transformQuery: (args) => (ids.add(args.queryId), seen.push(args.node.kind), args.node),
      transformResult: async (args) => (expect(ids.has(args.queryId)).toBe(true), args.result),
    };
    const watched = h.db.withPlugin(plugin);
    expect(await orgBySlug.first(watched, { slug: 'acme' })).toMatchObject({ id: 'org_a' });
    expect(await orgBySlug.first(watched, { slug: 'globex' })).toMatchObject({ id: 'org_b' });
    expect(seen).toEqual(['SelectQueryNode', 'SelectQueryNode']);
  });

  it('keeps constants compiled into the query (limit 1)', async () => {
    const all = prepareQuery((db, p: { prefix: string }) => db.selectFrom('organizations').select('id').where(sql<boolean>`${sql.ref('slug')} like ${p.prefix}`).orderBy('id').limit(1));
    expect(await all.all(h.db, { prefix: '%' })).toEqual([{ id: 'org_a' }]);
  });
});
