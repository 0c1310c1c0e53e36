import type { Executor } from '../db/database.js';
import type { SigningKeyRow } from '../db/schema.js';

/** Every signing key, oldest activation first (the ring is a handful of rows). */
export async function listSigningKeys(db: Executor): Promise<SigningKeyRow[]> {
  return db.selectFrom('signing_keys').selectAll().orderBy('activates_at', 'asc').orderBy('id', 'asc').execute();
}

export async function insertSigningKey(db: Executor, row: SigningKeyRow): Promise<void> {
  await db.insertInto('signing_keys').values(row).execute();
}

/** Insert the first key unless another instance already made one (start-up race of two instances). */
export async function insertFirstSigningKey(db: Executor, row: SigningKeyRow): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const any = await tx.selectFrom('signing_keys').select('id').limit(1).executeTakeFirst();
    if (any) return false;
    await tx.insertInto('signing_keys').values(row).execute();
    return true;
  });
}

export async function deleteSigningKeys(db: Executor, ids: string[]): Promise<number> {
  if (!ids.length) return 0;
  const res = await db.deleteFrom('signing_keys').where('id', 'in', ids).executeTakeFirst();
  return Number(res.numDeletedRows);
}
