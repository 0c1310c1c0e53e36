import type { Selectable } from 'kysely';
import type { Executor } from '../db/database.js';
import type { MfaFactorsTable, RecoveryCodesTable } from '../db/schema.js';

/** Whether the user has a confirmed TOTP factor (so every non-SSO sign-in gets a second step). */
export async function hasConfirmedFactor(exec: Executor, userId: string): Promise<boolean> {
  const row = await exec
    .selectFrom('mfa_factors')
    .select('id')
    .where('user_id', '=', userId)
    .where('confirmed_at', 'is not', null)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

export type MfaFactorRow = Selectable<MfaFactorsTable>;
export type RecoveryCodeRow = Selectable<RecoveryCodesTable>;

/**
 * Serialize MFA changes of one user: a no-op write to the user's row takes its row lock on
 * PostgreSQL until the transaction ends (SQLite runs one write transaction at a time anyway), so
 * two concurrent enrollments or confirmations cannot leave two factors behind.
 */
export async function lockUserForMfa(exec: Executor, userId: string): Promise<void> {
  await exec.updateTable('users').set((eb) => ({ updated_at: eb.ref('updated_at') })).where('id', '=', userId).execute();
}

/** The user's confirmed TOTP factor, if any. */
export async function findConfirmedFactor(exec: Executor, userId: string): Promise<MfaFactorRow | undefined> {
  return exec
    .selectFrom('mfa_factors')
    .selectAll()
    .where('user_id', '=', userId)
    .where('confirmed_at', 'is not', null)
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
}

/** The user's newest unconfirmed factor (an enrollment in progress), if any. */
export async function findPendingFactor(exec: Executor, userId: string): Promise<MfaFactorRow | undefined> {
  return exec
    .selectFrom('mfa_factors')
    .selectAll()
    .where('user_id', '=', userId)
    .where('confirmed_at', 'is', null)
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export async function insertFactor(exec: Executor, row: MfaFactorRow): Promise<void> {
  await exec.insertInto('mfa_factors').values(row).execute();
}

export async function deleteUnconfirmedFactors(exec: Executor, userId: string): Promise<void> {
  await exec.deleteFrom('mfa_factors').where('user_id', '=', userId).where('confirmed_at', 'is', null).execute();
}

/** Remove every factor of the user; returns how many there were. */
export async function deleteFactors(exec: Executor, userId: string): Promise<number> {
  const res = await exec.deleteFrom('mfa_factors').where('user_id', '=', userId).executeTakeFirst();
  return Number(res.numDeletedRows);
}

/**
 * Confirm an enrollment, consuming the time step of the code that confirmed it.
 * Conditional on the factor still being unconfirmed: false when another request won.
 */
export async function confirmFactor(exec: Executor, id: string, step: number, now: string): Promise<boolean> {
  const res = await exec
    .updateTable('mfa_factors')
    .set({ confirmed_at: now, last_used_step: step })
    .where('id', '=', id)
    .where('confirmed_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/**
 * Accept a TOTP time step at most once: one conditional UPDATE that succeeds only while the
 * step is newer than every step accepted before. Two concurrent submissions of one code cannot
 * both see a row updated, and an older step is refused after a newer one.
 */
export async function claimTimeStep(exec: Executor, factorId: string, step: number): Promise<boolean> {
  const res = await exec
    .updateTable('mfa_factors')
    .set({ last_used_step: step })
    .where('id', '=', factorId)
    .where('confirmed_at', 'is not', null)
    .where((eb) => eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', step)]))
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

export async function insertRecoveryCodes(exec: Executor, rows: RecoveryCodeRow[]): Promise<void> {
  if (rows.length) await exec.insertInto('recovery_codes').values(rows).execute();
}

export async function deleteRecoveryCodes(exec: Executor, userId: string): Promise<void> {
  await exec.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
}

/** Mark an unused recovery code used, atomically: false when it is unknown or already used. */
export async function useRecoveryCode(exec: Executor, userId: string, codeHash: string, now: string): Promise<boolean> {
  const res = await exec
    .updateTable('recovery_codes')
    .set({ used_at: now })
    .where('user_id', '=', userId)
    .where('code_hash', '=', codeHash)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

export async function countUnusedRecoveryCodes(exec: Executor, userId: string): Promise<number> {
  const row = await exec
    .selectFrom('recovery_codes')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}
