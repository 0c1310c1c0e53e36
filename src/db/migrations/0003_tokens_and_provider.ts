import type { Kysely } from 'kysely';

/**
 * SPEC §8: signing keys, session tokens (refresh tokens), the OpenID Provider's clients and the
 * provider's own records (codes, grants, sessions, tokens) — all in the database, so any instance
 * answers and several instances sign with the same key.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // ES256 key ring. A key is published from created_at, signs from activates_at, and stays
  // published until `retired_at + the longest token lifetime`; the private JWK is sealed (keyring).
  await db.schema
    .createTable('signing_keys')
    .addColumn('id', 'text', (c) => c.primaryKey()) // the kid
    .addColumn('alg', 'text', (c) => c.notNull())
    .addColumn('public_jwk', 'text', (c) => c.notNull())
    .addColumn('private_jwk_enc', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('activates_at', 'text', (c) => c.notNull())
    .execute();

  // Session tokens (POST /api/auth/token): opaque refresh tokens stored as SHA-256. A family is
  // every refresh token of one issue (the first token and its rotations); it ends with its session.
  await db.schema
    .createTable('refresh_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('family_id', 'text', (c) => c.notNull())
    .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('organization_id', 'text', (c) => c.references('organizations.id').onDelete('cascade'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema.createIndex('refresh_tokens_family').on('refresh_tokens').column('family_id').execute();
  await db.schema.createIndex('refresh_tokens_session').on('refresh_tokens').column('session_id').execute();

  // OpenID Provider clients (the SaaS's own apps). The secret is stored only as SHA-256.
  // List values (redirect URIs, grant types, a client JWKS) are JSON text parsed only by their store.
  await db.schema
    .createTable('oauth_clients')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text')
    .addColumn('token_endpoint_auth_method', 'text', (c) => c.notNull())
    .addColumn('redirect_uris', 'text', (c) => c.notNull())
    .addColumn('post_logout_redirect_uris', 'text', (c) => c.notNull())
    .addColumn('backchannel_logout_uri', 'text')
    .addColumn('grant_types', 'text', (c) => c.notNull())
    .addColumn('jwks_uri', 'text')
    .addColumn('jwks', 'text')
    .addColumn('first_party', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();

  // The provider's records (oidc-provider adapter): one row per (model, id), payload as JSON.
  // `session_id` is the Gatehouse session a record belongs to (its `sid`), so a token of an ended
  // session is never found and logout can reach every record of a session; `organization_id` is
  // the organization an authorization chose (scope `organization`), carried from code to tokens.
  await db.schema
    .createTable('oidc_records')
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('grant_id', 'text')
    .addColumn('uid', 'text')
    .addColumn('user_code', 'text')
    .addColumn('session_id', 'text')
    .addColumn('organization_id', 'text')
    .addColumn('expires_at', 'text')
    .addColumn('consumed_at', 'text')
    .addPrimaryKeyConstraint('oidc_records_pk', ['model', 'id'])
    .execute();
  await db.schema.createIndex('oidc_records_grant').on('oidc_records').column('grant_id').execute();
  await db.schema.createIndex('oidc_records_uid').on('oidc_records').column('uid').execute();
  await db.schema.createIndex('oidc_records_session').on('oidc_records').column('session_id').execute();
  await db.schema.createIndex('oidc_records_expires').on('oidc_records').column('expires_at').execute();
}
