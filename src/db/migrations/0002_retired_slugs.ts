import type { Kysely } from 'kysely';

/**
 * SPEC §12: retired slugs. Login URLs, the SAML ACS URL and the SP entity ID contain the
 * organization's slug, so a slug left behind by a rename or a deletion stays reserved to the
 * organization that held it: another organization taking it would receive the IdP-initiated
 * responses and old login links meant for the first. One row per slug (the primary key is the
 * unique index); `organization_id` has no foreign key on purpose — a deleted organization's
 * slugs stay reserved after its row is gone.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('retired_slugs')
    .addColumn('slug', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('retired_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('retired_slugs_org').on('retired_slugs').column('organization_id').execute();
}
