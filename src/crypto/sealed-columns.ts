import type { Executor } from '../db/database.js';
import type { KeyRing } from './keyring.js';

/**
 * Every column that holds a value sealed by the key ring. A sealed value is bound to
 * `table.column:rowId`, so it cannot be moved to another row or column.
 */
export const SEALED_COLUMNS = [
  { table: 'sso_connections', column: 'secret_enc' },
  { table: 'mfa_factors', column: 'secret_enc' },
  { table: 'signing_keys', column: 'private_jwk_enc' },
  { table: 'sessions', column: 'idp_logout_enc' },
  { table: 'sso_idp_tokens', column: 'access_token_enc' },
  { table: 'sso_idp_tokens', column: 'refresh_token_enc' },
] as const;

export type SealedColumn = (typeof SEALED_COLUMNS)[number];

export const sealContext = (col: SealedColumn, rowId: string) => `${col.table}.${col.column}:${rowId}`;

/**
 * Re-encrypt every sealed value that is not under the key ring's current key.
 * Each row is rewritten only if its sealed value is unchanged since it was read.
 */
export async function resealAll(db: Executor, keyring: KeyRing): Promise<{ rewritten: number; alreadyCurrent: number }> {
  let rewritten = 0;
  let alreadyCurrent = 0;
  for (const col of SEALED_COLUMNS) {
    const rows = await db
      .selectFrom(col.table)
      .select(['id', `${col.column} as sealed`])
      .where(col.column, 'is not', null)
      .execute();
    for (const row of rows as Array<{ id: string; sealed: string | null }>) {
      if (!row.sealed) continue;
      if (keyring.kidOf(row.sealed) === keyring.currentKid) {
        alreadyCurrent++;
        continue;
      }
      const ctx = sealContext(col, row.id);
      const resealed = keyring.encrypt(keyring.decrypt(row.sealed, ctx), ctx);
      await db
        .updateTable(col.table)
        .set({ [col.column]: resealed })
        .where('id', '=', row.id)
        .where(col.column, '=', row.sealed)
        .execute();
      rewritten++;
    }
  }
  return { rewritten, alreadyCurrent };
}
