import { sha256 } from '../crypto/tokens.js';
import type { Executor } from '../db/database.js';
import type { OidcRecordsTable } from '../db/schema.js';

/**
 * A record's id is stored only as its SHA-256: for oidc-provider an opaque token, a code and a
 * provider session are their own id (SPEC §10: tokens only as hashes). Every function here takes
 * the raw id and hashes it.
 */
const key = (id: string) => sha256(id);

/** One record of the OpenID Provider (code, token, grant, provider session, interaction …), as read. */
export type OidcRecord = Pick<OidcRecordsTable, 'payload' | 'session_id' | 'organization_id' | 'expires_at' | 'consumed_at'>;

/** A record as written (its consumption is a separate, conditional update). */
export type OidcRecordWrite = Omit<OidcRecordsTable, 'consumed_at'>;

const COLUMNS = ['payload', 'session_id', 'organization_id', 'expires_at', 'consumed_at'] as const satisfies ReadonlyArray<keyof OidcRecord>;

/** Insert or replace a record (oidc-provider saves a model again on every change). */
export async function upsertOidcRecord(db: Executor, row: OidcRecordWrite): Promise<void> {
  await db
    .insertInto('oidc_records')
    .values({ ...row, id: key(row.id), consumed_at: null })
    .onConflict((oc) =>
      oc.columns(['model', 'id']).doUpdateSet({
        payload: row.payload,
        grant_id: row.grant_id,
        uid: row.uid,
        user_code: row.user_code,
        session_id: row.session_id,
        organization_id: row.organization_id,
        expires_at: row.expires_at,
      }),
    )
    .execute();
}

export async function findOidcRecord(db: Executor, model: string, id: string): Promise<OidcRecord | undefined> {
  return db.selectFrom('oidc_records').select(COLUMNS).where('model', '=', model).where('id', '=', key(id)).executeTakeFirst();
}

export async function findOidcRecordBy(db: Executor, model: string, column: 'uid' | 'user_code', value: string): Promise<OidcRecord | undefined> {
  return db.selectFrom('oidc_records').select(COLUMNS).where('model', '=', model).where(column, '=', value).executeTakeFirst();
}

/** The organization an authorization chose, read from the code or token it came from. */
export async function findRecordOrganization(db: Executor, model: string, id: string): Promise<string | null> {
  const row = await db.selectFrom('oidc_records').select('organization_id').where('model', '=', model).where('id', '=', key(id)).executeTakeFirst();
  return row?.organization_id ?? null;
}

/** Mark a record consumed; only the first call counts (an authorization code is redeemed once). */
export async function consumeOidcRecord(db: Executor, model: string, id: string, now: string): Promise<boolean> {
  const res = await db
    .updateTable('oidc_records')
    .set({ consumed_at: now })
    .where('model', '=', model)
    .where('id', '=', key(id))
    .where('consumed_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

export async function destroyOidcRecord(db: Executor, model: string, id: string): Promise<void> {
  await db.deleteFrom('oidc_records').where('model', '=', model).where('id', '=', key(id)).execute();
}

/** Every record of a grant, whatever its model (revocation, code replay). */
export async function destroyOidcRecordsByGrant(db: Executor, grantId: string): Promise<void> {
  await db.deleteFrom('oidc_records').where('grant_id', '=', grantId).execute();
}

/** Drop records past their expiry (housekeeping). */
export async function deleteExpiredOidcRecords(db: Executor, now: string): Promise<number> {
  const res = await db.deleteFrom('oidc_records').where('expires_at', '<=', now).executeTakeFirst();
  return Number(res.numDeletedRows);
}
