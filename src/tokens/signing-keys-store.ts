import { sql } from 'kysely';
import type { Db, Executor } from '../db/database.js';
import type { SigningKeyRow } from '../db/schema.js';

/** Every signing key, oldest activation first (the ring is a handful of rows). */
export async function listSigningKeys(db: Executor): Promise<SigningKeyRow[]> {
  return db.selectFrom('signing_keys').selectAll().orderBy('activates_at', 'asc').orderBy('id', 'asc').execute();
}

export async function insertSigningKey(db: Executor, row: SigningKeyRow): Promise<void> {
  await db.insertInto('signing_keys').values(row).execute();
}

/**
 * Insert the first key unless a key already exists (start-up race of two instances, or of an
 * instance and `gatehouse keys rotate`); true when this row went in.
 *
 * One `INSERT … SELECT … WHERE NOT EXISTS` statement: on SQLite a statement holds the database's
 * write lock from its read to its write, so two processes cannot both see the ring empty (a
 * select-then-insert transaction could, and the loser would fail with SQLITE_BUSY). On PostgreSQL
 * two such statements under READ COMMITTED would both see no row and both insert (the rows have
 * different ids), so the table is locked against other writers first: the second instance waits,
 * then sees the first one's key.
 */
export async function insertFirstSigningKey(db: Db, engine: 'sqlite' | 'postgres', row: SigningKeyRow): Promise<boolean> {
  const insert = (ex: Executor) =>
    sql`insert into signing_keys (id, alg, public_jwk, private_jwk_enc, created_at, activates_at)
        select ${row.id}, ${row.alg}, ${row.public_jwk}, ${row.private_jwk_enc}, ${row.created_at}, ${row.activates_at}
        where not exists (select 1 from signing_keys)`.execute(ex);
  const res =
    engine === 'postgres'
      ? await db.transaction().execute(async (tx) => {
          // SHARE ROW EXCLUSIVE conflicts with itself and with every write, not with reads.
          await sql`lock table signing_keys in share row exclusive mode`.execute(tx);
          return insert(tx);
        })
      : await insert(db);
  return Number(res.numAffectedRows ?? 0) === 1;
}

export async function deleteSigningKeys(db: Executor, ids: string[]): Promise<number> {
  if (!ids.length) return 0;
  const res = await db.deleteFrom('signing_keys').where('id', 'in', ids).executeTakeFirst();
  return Number(res.numDeletedRows);
}
