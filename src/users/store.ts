import type { Executor } from '../db/database.js';
import type { Bool, UserRow, UserUpdate } from '../db/schema.js';

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

export async function findUserById(db: Executor, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findUserByEmail(db: Executor, email: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('email', '=', normalizeEmail(email)).executeTakeFirst();
}

export async function insertUser(
  db: Executor,
  user: { id: string; email: string; name: string | null; passwordHash: string | null; emailVerified: boolean; superadmin?: boolean; now: string },
): Promise<UserRow> {
  const row: UserRow = {
    id: user.id,
    email: normalizeEmail(user.email),
    name: user.name,
    password_hash: user.passwordHash,
    email_verified: (user.emailVerified ? 1 : 0) as Bool,
    is_superadmin: (user.superadmin ? 1 : 0) as Bool,
    created_at: user.now,
    updated_at: user.now,
  };
  await db.insertInto('users').values(row).execute();
  return row;
}

export async function updateUser(db: Executor, id: string, patch: UserUpdate): Promise<void> {
  await db.updateTable('users').set(patch).where('id', '=', id).execute();
}
