import type { Selectable } from 'kysely';
import type { Executor } from '../../db/database.js';
import { prepareQuery } from '../../db/prepared.js';
import type { SsoIdentitiesTable, UserRow } from '../../db/schema.js';
import { USER_AS_U, userFromJoined } from '../../users/store.js';

export type IdentityRow = Selectable<SsoIdentitiesTable>;

const findIdentityQuery = prepareQuery((db, p: { connectionId: string; subject: string }) =>
  db.selectFrom('sso_identities').selectAll().where('connection_id', '=', p.connectionId).where('subject', '=', p.subject),
);
export async function findIdentity(db: Executor, connectionId: string, subject: string): Promise<IdentityRow | undefined> {
  return findIdentityQuery.first(db, { connectionId, subject });
}

const identityWithUserQuery = prepareQuery((db, p: { connectionId: string; subject: string; organizationId: string }) =>
  db
    .selectFrom('sso_identities as i')
    .leftJoin('users as u', 'u.id', 'i.user_id')
    .leftJoin('members as m', (join) => join.onRef('m.user_id', '=', 'i.user_id').on('m.organization_id', '=', p.organizationId))
    .selectAll('i')
    .select([...USER_AS_U, 'm.role as membership_role'])
    .where('i.connection_id', '=', p.connectionId)
    .where('i.subject', '=', p.subject),
);

/**
 * The identity (connection, subject) with its user and whether that user is a member of the
 * organization, in one statement (a returning SSO login's read); `user` is null when the linked
 * account no longer exists.
 */
export async function findIdentityWithUser(db: Executor, connectionId: string, subject: string, organizationId: string): Promise<{ identity: IdentityRow; user: UserRow | null; member: boolean } | undefined> {
  const row = await identityWithUserQuery.first(db, { connectionId, subject, organizationId });
  if (!row) return undefined;
  const { u_id, u_email, u_name, u_password_hash, u_email_verified, u_is_superadmin, u_created_at, u_updated_at, membership_role, ...identity } = row;
  // A left join: every user column is null when the linked account is gone.
  const user = u_id === null ? null : userFromJoined(row as Parameters<typeof userFromJoined>[0]);
  return { identity, user, member: user !== null && membership_role !== null };
}

export async function insertIdentity(db: Executor, row: IdentityRow): Promise<void> {
  await db.insertInto('sso_identities').values(row).execute();
}

/** Insert unless (connection, subject) is taken; false when a concurrent login inserted it first (race-safe, never a failed statement). */
export async function insertIdentityIfAbsent(db: Executor, row: IdentityRow): Promise<boolean> {
  const res = await db.insertInto('sso_identities').values(row).onConflict((oc) => oc.columns(['connection_id', 'subject']).doNothing()).executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0) === 1;
}

const recordIdentityLoginQuery = prepareQuery((db, p: { id: string; email: string | null; claims: string; lastLoginAt: string }) =>
  db.updateTable('sso_identities').set({ email: p.email, claims: p.claims, last_login_at: p.lastLoginAt }).where('id', '=', p.id),
);
/** Record a login through the identity; returns how many rows it updated (0: the identity is gone, e.g. unlinked meanwhile). */
export async function recordIdentityLogin(db: Executor, id: string, patch: { email: string | null; claims: string; last_login_at: string }): Promise<number> {
  return recordIdentityLoginQuery.changed(db, { id, email: patch.email, claims: patch.claims, lastLoginAt: patch.last_login_at });
}

export async function listIdentities(db: Executor, organizationId: string, page: { limit: number; cursor: string | null }) {
  let q = db
    .selectFrom('sso_identities as i')
    .innerJoin('users as u', 'u.id', 'i.user_id')
    .innerJoin('sso_connections as c', 'c.id', 'i.connection_id')
    .leftJoin('sso_idp_tokens as t', 't.id', 'i.id')
    .select([
      'i.id', 'i.subject', 'i.email', 'i.claims', 'i.last_login_at', 'i.created_at', 'i.connection_id',
      'u.id as user_id', 'u.email as user_email', 'u.name as user_name',
      'c.provider', 'c.protocol', 'c.status as connection_status',
      // The IdP tokens' status only: never a sealed column.
      't.status as token_status', 't.access_token_expires_at', 't.scopes as token_scopes', 't.obtained_at as token_obtained_at',
      't.last_refreshed_at as token_last_refreshed_at', 't.last_error as token_last_error',
    ])
    .where('i.organization_id', '=', organizationId);
  if (page.cursor) q = q.where('i.id', '<', page.cursor);
  return q.orderBy('i.id', 'desc').limit(page.limit + 1).execute();
}

export async function findIdentityInOrganization(db: Executor, organizationId: string, id: string): Promise<IdentityRow | undefined> {
  return db.selectFrom('sso_identities').selectAll().where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
}

export async function deleteIdentity(db: Executor, organizationId: string, id: string): Promise<IdentityRow | undefined> {
  const row = await findIdentityInOrganization(db, organizationId, id);
  if (row) await db.deleteFrom('sso_identities').where('id', '=', id).execute();
  return row;
}

/** Remove a user's SSO identities, except one (the identity being linked right now); returns how many. */
export async function deleteUserIdentitiesExcept(db: Executor, userId: string, keepId: string | null): Promise<number> {
  let q = db.deleteFrom('sso_identities').where('user_id', '=', userId);
  if (keepId) q = q.where('id', '!=', keepId);
  const res = await q.executeTakeFirst();
  return Number(res.numDeletedRows);
}
