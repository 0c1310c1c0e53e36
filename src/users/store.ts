import type { Executor } from '../db/database.js';
import type { Bool, UserRow, UserUpdate } from '../db/schema.js';
import type { SessionCacheDrops } from '../sessions/cache.js';
import { sessionDataChanged } from '../sessions/cache-sync.js';

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

/** The user's columns in a query that joins `users as u`, each selected as `u_<column>` (read back with userFromJoined). */
export const USER_AS_U = [
  'u.id as u_id', 'u.email as u_email', 'u.name as u_name', 'u.password_hash as u_password_hash',
  'u.email_verified as u_email_verified', 'u.is_superadmin as u_is_superadmin',
  'u.created_at as u_created_at', 'u.updated_at as u_updated_at',
] as const;

/** The user of a row selected with USER_AS_U. */
export function userFromJoined(row: { [K in keyof UserRow as `u_${K}`]: UserRow[K] }): UserRow {
  return {
    id: row.u_id, email: row.u_email, name: row.u_name, password_hash: row.u_password_hash,
    email_verified: row.u_email_verified, is_superadmin: row.u_is_superadmin,
    created_at: row.u_created_at, updated_at: row.u_updated_at,
  };
}

export async function findUserById(db: Executor, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findUserByEmail(db: Executor, email: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('email', '=', normalizeEmail(email)).executeTakeFirst();
}

type NewUser = { id: string; email: string; name: string | null; passwordHash: string | null; emailVerified: boolean; superadmin?: boolean; now: string };

function userRow(user: NewUser): UserRow {
  return {
    id: user.id,
    email: normalizeEmail(user.email),
    name: user.name,
    password_hash: user.passwordHash,
    email_verified: (user.emailVerified ? 1 : 0) as Bool,
    is_superadmin: (user.superadmin ? 1 : 0) as Bool,
    created_at: user.now,
    updated_at: user.now,
  };
}

export async function insertUser(db: Executor, user: NewUser): Promise<UserRow> {
  const row = userRow(user);
  await db.insertInto('users').values(row).execute();
  return row;
}

/**
 * Insert a user unless one with this email exists; `undefined` when it does. Race-safe on every
 * engine and never a failed statement: on PostgreSQL a unique violation would abort the caller's
 * transaction, while ON CONFLICT waits for a concurrent insert of the same email to commit (or
 * roll back) and then does nothing (or inserts).
 */
export async function insertUserIfAbsent(db: Executor, user: Omit<NewUser, 'superadmin'>): Promise<UserRow | undefined> {
  const row = userRow(user);
  const res = await db.insertInto('users').values(row).onConflict((oc) => oc.column('email').doNothing()).executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0) === 1 ? row : undefined;
}

/** Remove a user row this transaction has just inserted and nothing references yet. */
export async function deleteUser(db: Executor, id: string): Promise<void> {
  await db.deleteFrom('users').where('id', '=', id).execute();
}

/**
 * Change a user row. Its sessions are cached with it (sessions/cache.ts), so the change drops
 * them from this instance's cache (`cache`) and, when the transaction commits, from every other's.
 */
export async function updateUser(db: Executor, id: string, patch: UserUpdate, cache: SessionCacheDrops): Promise<void> {
  await db.updateTable('users').set(patch).where('id', '=', id).execute();
  await sessionDataChanged(db, cache, { user: id });
}
