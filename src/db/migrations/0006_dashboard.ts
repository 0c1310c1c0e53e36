import type { Kysely } from 'kysely';

/**
 * SPEC §5 "Dashboard support in the API" and "Setup links": the setup links an owner or admin
 * sends to a customer's IT admin (only the token's hash is stored; the first browser to open it
 * is bound by the hash of a second secret kept in that browser's cookie); the audit actor of a
 * change made through one; the result of the last test of a connection's saved settings (bound
 * to the config version it tested, so a later save makes it stale).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('setup_links')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('scope', 'text', (c) => c.notNull()) // JSON array of "sso" | "domains"
    .addColumn('created_by', 'text') // user id (null once the user is deleted)
    .addColumn('created_by_api_key_id', 'text') // the API key it was made with, if any (the link dies with it)
    .addColumn('binding_hash', 'text') // sha256 of the bound browser's cookie secret
    .addColumn('bound_at', 'text')
    .addColumn('last_used_at', 'text')
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('setup_links_organization').on('setup_links').columns(['organization_id', 'id']).execute();

  await db.schema.alterTable('audit_events').addColumn('actor_setup_link_id', 'text').execute();
  await db.schema.createIndex('audit_events_org_action').on('audit_events').columns(['organization_id', 'action', 'id']).execute();

  await db.schema.alterTable('sso_connections').addColumn('last_test_ok', 'integer').execute();
  await db.schema.alterTable('sso_connections').addColumn('last_test_at', 'text').execute();
  await db.schema.alterTable('sso_connections').addColumn('last_test_version', 'integer').execute();
}
