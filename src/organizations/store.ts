import type { Executor } from '../db/database.js';
import type { InvitationRow, JoinRequestStatus, JoinRequestsTable, MemberRow, OrganizationRow, OrganizationsTable, Role, UserRow } from '../db/schema.js';
import { sql, type Insertable, type Updateable } from 'kysely';
import type { SessionCacheDrops } from '../sessions/cache.js';
import { sessionDataChanged } from '../sessions/cache-sync.js';

export async function insertOrganization(db: Executor, row: OrganizationRow): Promise<void> {
  await db.insertInto('organizations').values(row).execute();
}

export async function findOrganization(db: Executor, id: string): Promise<OrganizationRow | undefined> {
  return db.selectFrom('organizations').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findOrganizationBySlug(db: Executor, slug: string): Promise<OrganizationRow | undefined> {
  return db.selectFrom('organizations').selectAll().where('slug', '=', slug).executeTakeFirst();
}

export async function slugExists(db: Executor, slug: string): Promise<boolean> {
  return !!(await db.selectFrom('organizations').select('id').where('slug', '=', slug).executeTakeFirst());
}

/** Which organization left this slug behind, if any (SPEC §12: retired slugs stay reserved to it). */
export async function findRetiredSlug(db: Executor, slug: string) {
  return db.selectFrom('retired_slugs').selectAll().where('slug', '=', slug).executeTakeFirst();
}

/**
 * Reserve `slug` to the organization that is leaving it. The slug is the primary key: a slug
 * the same organization retires again gets a new date; one reserved to another organization is
 * left as it is (that cannot happen: the organization could not have taken it).
 */
export async function retireSlug(db: Executor, row: { slug: string; organization_id: string; retired_at: string }): Promise<void> {
  await db
    .insertInto('retired_slugs')
    .values(row)
    .onConflict((oc) => oc.column('slug').doUpdateSet({ retired_at: row.retired_at }).where('retired_slugs.organization_id', '=', row.organization_id))
    .execute();
}

/** Update and, on PostgreSQL, lock the row until the transaction ends (serialises owner changes). */
export async function updateOrganization(db: Executor, id: string, patch: Updateable<OrganizationsTable>): Promise<boolean> {
  const res = await db.updateTable('organizations').set(patch).where('id', '=', id).executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

export async function deleteOrganization(db: Executor, id: string): Promise<void> {
  await db.deleteFrom('organizations').where('id', '=', id).execute();
}

export async function listAllOrganizations(db: Executor, page: { limit: number; cursor: string | null }, onlyOrganization: string | null = null) {
  let q = db.selectFrom('organizations').selectAll();
  if (onlyOrganization) q = q.where('id', '=', onlyOrganization);
  if (page.cursor) q = q.where('id', '<', page.cursor);
  return q.orderBy('id', 'desc').limit(page.limit + 1).execute();
}

export async function findMembership(db: Executor, organizationId: string, userId: string): Promise<MemberRow | undefined> {
  return db
    .selectFrom('members')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
}

/**
 * The member writes below change what GET /api/auth/session lists for the user, so each drops the
 * user's cached memberships (`cache`, sessions/cache.ts) here and on every instance at commit.
 */
export async function insertMember(db: Executor, row: MemberRow, cache: SessionCacheDrops): Promise<void> {
  await db.insertInto('members').values(row).execute();
  await sessionDataChanged(db, cache, { user: row.user_id });
}

export async function updateMemberRole(db: Executor, organizationId: string, userId: string, role: Role, now: string, cache: SessionCacheDrops): Promise<void> {
  await db
    .updateTable('members')
    .set({ role, updated_at: now })
    .where('organization_id', '=', organizationId)
    .where('user_id', '=', userId)
    .execute();
  await sessionDataChanged(db, cache, { user: userId });
}

export async function deleteMember(db: Executor, organizationId: string, userId: string, cache: SessionCacheDrops): Promise<void> {
  await db.deleteFrom('members').where('organization_id', '=', organizationId).where('user_id', '=', userId).execute();
  await sessionDataChanged(db, cache, { user: userId });
}

export async function countOwners(db: Executor, organizationId: string): Promise<number> {
  const row = await db
    .selectFrom('members')
    .select((eb) => eb.fn.countAll<string | number>().as('n'))
    .where('organization_id', '=', organizationId)
    .where('role', '=', 'owner')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The caller's organizations with their role (for GET /api/user/organizations and the session). */
export async function listUserMemberships(db: Executor, userId: string) {
  return db
    .selectFrom('members as m')
    .innerJoin('organizations as o', 'o.id', 'm.organization_id')
    .select(['o.id as organizationId', 'o.name', 'o.slug', 'm.role', 'm.created_at as joinedAt'])
    .where('m.user_id', '=', userId)
    .orderBy('o.id', 'asc')
    .execute();
}

/** One page of the caller's organizations, by organization id; `onlyOrganization` narrows to one (a pinned API key). */
export async function listUserMembershipsPage(db: Executor, userId: string, page: { limit: number; cursor: string | null }, onlyOrganization: string | null) {
  let q = db
    .selectFrom('members as m')
    .innerJoin('organizations as o', 'o.id', 'm.organization_id')
    .select(['o.id as id', 'o.name', 'o.slug', 'm.role'])
    .where('m.user_id', '=', userId);
  if (onlyOrganization) q = q.where('o.id', '=', onlyOrganization);
  if (page.cursor) q = q.where('o.id', '>', page.cursor);
  return q.orderBy('o.id', 'asc').limit(page.limit + 1).execute();
}

export async function listMembers(db: Executor, organizationId: string, page: { limit: number; cursor: string | null }) {
  let q = db
    .selectFrom('members as m')
    .innerJoin('users as u', 'u.id', 'm.user_id')
    .select(['u.id', 'u.email', 'u.name', 'm.role', 'm.created_at as joinedAt'])
    .where('m.organization_id', '=', organizationId);
  if (page.cursor) q = q.where('u.id', '>', page.cursor);
  return q.orderBy('u.id', 'asc').limit(page.limit + 1).execute();
}

export async function insertInvitation(db: Executor, row: InvitationRow): Promise<void> {
  await db.insertInto('invitations').values(row).execute();
}

export async function findPendingInvitationByEmail(db: Executor, organizationId: string, email: string, now: string) {
  return db
    .selectFrom('invitations')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('email', '=', email)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
}

export async function findInvitationByTokenHash(db: Executor, tokenHash: string): Promise<InvitationRow | undefined> {
  return db.selectFrom('invitations').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
}

export async function listPendingInvitations(db: Executor, organizationId: string, now: string, page: { limit: number; cursor: string | null }) {
  let q = db
    .selectFrom('invitations')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now);
  if (page.cursor) q = q.where('id', '<', page.cursor);
  return q.orderBy('id', 'desc').limit(page.limit + 1).execute();
}

export async function revokeInvitation(db: Executor, organizationId: string, id: string, now: string): Promise<boolean> {
  const res = await db
    .updateTable('invitations')
    .set({ revoked_at: now })
    .where('organization_id', '=', organizationId)
    .where('id', '=', id)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

/** Mark accepted only if still open: the conditional update makes acceptance single-use under races. */
export async function markInvitationAccepted(db: Executor, id: string, userId: string, now: string): Promise<boolean> {
  const res = await db
    .updateTable('invitations')
    .set({ accepted_at: now, accepted_by: userId })
    .where('id', '=', id)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

/** Add a member unless already one (a concurrent auto-join is not an error, and never aborts the transaction). */
export async function insertMemberIfAbsent(db: Executor, row: MemberRow, cache: SessionCacheDrops): Promise<boolean> {
  const res = await db.insertInto('members').values(row).onConflict((oc) => oc.columns(['organization_id', 'user_id']).doNothing()).executeTakeFirst();
  const inserted = Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
  if (inserted) await sessionDataChanged(db, cache, { user: row.user_id });
  return inserted;
}

export async function findAnyJoinRequest(db: Executor, organizationId: string, userId: string) {
  return db.selectFrom('join_requests').selectAll().where('organization_id', '=', organizationId).where('user_id', '=', userId).executeTakeFirst();
}

/** Insert a pending join request unless one is already pending (the partial unique index settles races). */
export async function insertJoinRequestIfAbsent(db: Executor, row: Insertable<JoinRequestsTable>): Promise<boolean> {
  const res = await db
    .insertInto('join_requests')
    .values(row)
    .onConflict((oc) => oc.columns(['organization_id', 'user_id']).where('status', '=', sql.lit('pending')).doNothing()) // literal: must match the partial index
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function findJoinRequest(db: Executor, organizationId: string, id: string) {
  return db.selectFrom('join_requests').selectAll().where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
}

export async function listJoinRequests(db: Executor, organizationId: string, status: JoinRequestStatus | null, page: { limit: number; cursor: string | null }) {
  let q = db
    .selectFrom('join_requests as r')
    .innerJoin('users as u', 'u.id', 'r.user_id')
    .select(['r.id', 'r.user_id', 'u.email', 'u.name', 'r.domain_id', 'r.status', 'r.decided_by', 'r.decided_at', 'r.created_at'])
    .where('r.organization_id', '=', organizationId);
  if (status) q = q.where('r.status', '=', status);
  if (page.cursor) q = q.where('r.id', '>', page.cursor);
  return q.orderBy('r.id', 'asc').limit(page.limit + 1).execute();
}

/** Decide a pending request; false when it was no longer pending (decided concurrently). */
export async function decideJoinRequest(db: Executor, id: string, status: Exclude<JoinRequestStatus, 'pending'>, by: string | null, now: string): Promise<boolean> {
  const res = await db
    .updateTable('join_requests')
    .set({ status, decided_by: by, decided_at: now })
    .where('id', '=', id)
    .where('status', '=', 'pending')
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

/** Organizations of this user whose sign-in policy asks something of a session (not `any` alone). */
export async function listStrictPolicyMemberships(db: Executor, userId: string): Promise<OrganizationRow[]> {
  return db
    .selectFrom('members')
    .innerJoin('organizations', 'organizations.id', 'members.organization_id')
    .selectAll('organizations')
    .where('members.user_id', '=', userId)
    .where((eb) => eb.or([eb('organizations.auth_required', '!=', 'any'), eb('organizations.require_mfa', '=', 1)]))
    .orderBy('organizations.id')
    .execute();
}

/**
 * Remove every membership of a user; returns what was removed, each owner membership marked
 * `lastOwner` when no other owner of that organization remains (the claim of an unverified
 * account removes memberships past the last-owner rule: see src/users/claim.ts).
 */
export async function deleteUserMemberships(db: Executor, userId: string, cache: SessionCacheDrops, keepOrganizationId: string | null = null): Promise<Array<{ organizationId: string; role: Role; lastOwner: boolean }>> {
  let q = db.selectFrom('members').select(['organization_id', 'role']).where('user_id', '=', userId);
  if (keepOrganizationId) q = q.where('organization_id', '!=', keepOrganizationId);
  const rows = await q.orderBy('organization_id').execute();
  const out: Array<{ organizationId: string; role: Role; lastOwner: boolean }> = [];
  for (const r of rows) {
    out.push({ organizationId: r.organization_id, role: r.role, lastOwner: r.role === 'owner' && (await countOwners(db, r.organization_id)) === 1 });
  }
  if (rows.length) {
    await db.deleteFrom('members').where('user_id', '=', userId).where('organization_id', 'in', rows.map((r) => r.organization_id)).execute();
    await sessionDataChanged(db, cache, { user: userId });
  }
  return out;
}
