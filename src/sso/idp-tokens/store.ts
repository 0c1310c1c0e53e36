import type { Selectable } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { SsoIdpTokensTable } from '../../db/schema.js';

export type IdpTokenRow = Selectable<SsoIdpTokensTable>;

export async function findIdpTokens(db: Executor, identityId: string): Promise<IdpTokenRow | undefined> {
  return db.selectFrom('sso_idp_tokens').selectAll().where('id', '=', identityId).executeTakeFirst();
}

/** The tokens of a login: a new row, or the identity's row replaced (a new generation, any lease and failure cleared). */
export async function upsertIdpTokens(db: Executor, row: IdpTokenRow): Promise<void> {
  const { id: _id, obtained_at: _o, ...update } = row;
  await db
    .insertInto('sso_idp_tokens')
    .values(row)
    .onConflict((oc) =>
      oc.column('id').doUpdateSet((eb) => ({
        ...update,
        obtained_at: row.obtained_at,
        generation: eb('sso_idp_tokens.generation', '+', 1),
      })),
    )
    .execute();
}

/**
 * Take the row for one refresh: only a valid row with a refresh token, of the generation read,
 * that nobody else holds. One instance at a time sends a given refresh token to the IdP.
 */
export async function claimIdpTokens(db: Executor, row: Pick<IdpTokenRow, 'id' | 'generation'>, holder: string, nowIso: string, untilIso: string): Promise<boolean> {
  const res = await db
    .updateTable('sso_idp_tokens')
    .set({ lease_holder: holder, lease_until: untilIso })
    .where('id', '=', row.id)
    .where('generation', '=', row.generation)
    .where('status', '=', 'valid')
    .where('refresh_token_enc', 'is not', null)
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', nowIso)]))
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Write the outcome of a refresh, only over the generation claimed and while still holding it (a login or an erasure meanwhile wins). */
export async function finishIdpRefresh(
  db: Executor,
  claimed: Pick<IdpTokenRow, 'id' | 'generation'>,
  holder: string,
  patch: Partial<Omit<IdpTokenRow, 'id' | 'generation' | 'lease_holder' | 'lease_until'>>,
  bumpGeneration: boolean,
): Promise<boolean> {
  const res = await db
    .updateTable('sso_idp_tokens')
    .set((eb) => ({ ...patch, lease_holder: null, lease_until: null, ...(bumpGeneration ? { generation: eb('generation', '+', 1) } : {}) }))
    .where('id', '=', claimed.id)
    .where('generation', '=', claimed.generation)
    .where('lease_holder', '=', holder)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Valid rows whose access token expires before `beforeIso` and that may be tried now (not held, past any backoff), soonest first. */
export async function dueIdpTokens(db: Executor, nowIso: string, beforeIso: string, limit: number): Promise<IdpTokenRow[]> {
  return db
    .selectFrom('sso_idp_tokens')
    .selectAll()
    .where('status', '=', 'valid')
    .where('access_token_expires_at', '<=', beforeIso)
    .where('refresh_token_enc', 'is not', null)
    .where((eb) => eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', nowIso)]))
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', nowIso)]))
    .orderBy('access_token_expires_at')
    .limit(limit)
    .execute();
}

/** Erase an identity's tokens (unlinking; the foreign key cascades too, this does not rely on it). */
export async function deleteIdpTokensOfIdentity(db: Executor, identityId: string): Promise<void> {
  await db.deleteFrom('sso_idp_tokens').where('id', '=', identityId).execute();
}

/** Erase the tokens of a connection's identities (connection replaced, removed, storing turned off or its client changed). */
export async function deleteIdpTokensOfConnection(db: Executor, connectionId: string): Promise<number> {
  const res = await db.deleteFrom('sso_idp_tokens').where('connection_id', '=', connectionId).executeTakeFirst();
  return Number(res.numDeletedRows);
}

/**
 * Universal Logout: erase a user's tokens, keeping the row as `revoked` (the identity shows why
 * it has none) — in one organization, or everywhere (`organizationId` null).
 */
export async function revokeIdpTokensOfUser(db: Executor, userId: string, organizationId: string | null, nowIso: string): Promise<number> {
  let q = db
    .updateTable('sso_idp_tokens')
    .set((eb) => ({
      status: 'revoked' as const, access_token_enc: null, refresh_token_enc: null, lease_holder: null, lease_until: null,
      next_attempt_at: null, updated_at: nowIso, generation: eb('generation', '+', 1),
    }))
    .where('user_id', '=', userId)
    .where('status', '!=', 'revoked');
  if (organizationId) q = q.where('organization_id', '=', organizationId);
  const res = await q.executeTakeFirst();
  return Number(res.numUpdatedRows);
}
