import type { Kysely } from 'kysely';

/**
 * SPEC §8 "logout": what a session must remember to be ended from outside (the IdP session it
 * came from), which of the SaaS's apps it signed into, and the durable outbox that tells those
 * apps when it ends.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // The SSO identity a session came from (back-channel logout with only `sub`, SAML SLO by
  // NameID), the IdP's session id (OIDC `sid`, SAML SessionIndex) and, sealed, what signing out
  // of the IdP needs (OIDC: the ID token for id_token_hint; SAML: NameID and its qualifiers).
  await db.schema.alterTable('sessions').addColumn('identity_id', 'text').execute();
  await db.schema.alterTable('sessions').addColumn('idp_session_id', 'text').execute();
  await db.schema.alterTable('sessions').addColumn('idp_logout_enc', 'text').execute();
  await db.schema.createIndex('sessions_identity').on('sessions').column('identity_id').execute();
  await db.schema.createIndex('sessions_connection_idp_session').on('sessions').columns(['connection_id', 'idp_session_id']).execute();
  await db.schema.createIndex('sessions_user_organization').on('sessions').columns(['user_id', 'organization_id']).execute();

  // The OpenID Provider clients a Gatehouse session signed into (an authorization code was issued
  // to the client for it). Codes and tokens expire and are purged; this stays as long as the session.
  await db.schema
    .createTable('session_clients')
    .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('session_clients_pk', ['session_id', 'client_id'])
    .execute();

  // Back-channel logout deliveries to the SaaS's apps, written in the transaction that ends the
  // session (nothing lost when an instance dies) and sent by whichever instance claims them first.
  // No foreign keys: a delivery outlives its session's row (the claim of an unverified account
  // deletes sessions) and names it only as the logout token's `sid`.
  await db.schema
    .createTable('logout_outbox')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('session_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull()) // pending | delivered | abandoned
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'text', (c) => c.notNull())
    .addColumn('locked_until', 'text')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('give_up_at', 'text', (c) => c.notNull())
    .addColumn('finished_at', 'text')
    .execute();
  await db.schema.createIndex('logout_outbox_due').on('logout_outbox').columns(['status', 'next_attempt_at']).execute();
  await db.schema.createIndex('logout_outbox_session').on('logout_outbox').column('session_id').execute();
}
