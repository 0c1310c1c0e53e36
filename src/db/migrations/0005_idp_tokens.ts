import type { Kysely } from 'kysely';

/**
 * SPEC §9 "IdP token vault": the IdP's access and refresh tokens of an SSO identity, sealed, with
 * what the refresher needs (expiry, a per-row lease so one instance refreshes an identity at a
 * time, the backoff of a failed attempt); and the cluster-wide leases of periodic jobs (the
 * refresh sweep runs on one instance at a time).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('sso_idp_tokens')
    // The identity's id: one row per identity, gone with it.
    .addColumn('id', 'text', (c) => c.primaryKey().references('sso_identities.id').onDelete('cascade'))
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('connection_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull()) // valid | refresh_failed | revoked
    .addColumn('access_token_enc', 'text')
    .addColumn('refresh_token_enc', 'text')
    .addColumn('access_token_expires_at', 'text')
    .addColumn('scopes', 'text', (c) => c.notNull()) // JSON array
    .addColumn('generation', 'integer', (c) => c.notNull())
    .addColumn('lease_holder', 'text')
    .addColumn('lease_until', 'text')
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'text')
    .addColumn('last_error', 'text')
    .addColumn('obtained_at', 'text', (c) => c.notNull())
    .addColumn('last_refreshed_at', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('sso_idp_tokens_due').on('sso_idp_tokens').columns(['status', 'access_token_expires_at']).execute();
  await db.schema.createIndex('sso_idp_tokens_connection').on('sso_idp_tokens').column('connection_id').execute();
  await db.schema.createIndex('sso_idp_tokens_user').on('sso_idp_tokens').columns(['user_id', 'organization_id']).execute();

  await db.schema
    .createTable('job_leases')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .execute();
}
