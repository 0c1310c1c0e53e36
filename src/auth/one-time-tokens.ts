import type { Selectable } from 'kysely';
import { z } from 'zod';
import type { Executor } from '../db/database.js';
import type { OneTimeTokenPurpose, OneTimeTokensTable } from '../db/schema.js';

/** SQL of the `one_time_tokens` table (magic links, password resets, email verification). */
export type OneTimeTokenRow = Selectable<OneTimeTokensTable>;

/** What a token may carry besides its purpose: the `data` JSON column, parsed only here. */
const TokenData = z.object({ returnTo: z.string().max(2048).optional() });
export type TokenData = z.infer<typeof TokenData>;

export const serializeTokenData = (data: TokenData): string => JSON.stringify(TokenData.parse(data));

/** The token's data; an absent or unreadable value reads as none. */
export function tokenData(row: Pick<OneTimeTokenRow, 'data'>): TokenData {
  if (!row.data) return {};
  try {
    const parsed = TokenData.safeParse(JSON.parse(row.data));
    return parsed.success ? parsed.data : {};
  } catch {
    return {};
  }
}

export async function insertOneTimeToken(exec: Executor, row: OneTimeTokenRow): Promise<void> {
  await exec.insertInto('one_time_tokens').values(row).execute();
}

/** A token that is still usable (unused, unexpired), without consuming it. */
export async function findUsableToken(exec: Executor, tokenHash: string, purpose: OneTimeTokenPurpose, now: string): Promise<OneTimeTokenRow | undefined> {
  return exec
    .selectFrom('one_time_tokens')
    .selectAll()
    .where('token_hash', '=', tokenHash)
    .where('purpose', '=', purpose)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
}

/**
 * Consume a token exactly once: a conditional UPDATE that only an unused, unexpired token of this
 * purpose matches. Two concurrent consumers cannot both see one affected row (PostgreSQL re-checks
 * the condition after the first one's row lock is released; SQLite serialises writers).
 * Returns the token row, or undefined when it is unknown, used, expired or of another purpose.
 */
export async function consumeOneTimeToken(exec: Executor, tokenHash: string, purpose: OneTimeTokenPurpose, now: string): Promise<OneTimeTokenRow | undefined> {
  const res = await exec
    .updateTable('one_time_tokens')
    .set({ used_at: now })
    .where('token_hash', '=', tokenHash)
    .where('purpose', '=', purpose)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) return undefined;
  return exec.selectFrom('one_time_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
}

/** Mark every outstanding token of a user and purpose used (e.g. other reset links after a reset). */
export async function invalidateUserTokens(exec: Executor, userId: string, purpose: OneTimeTokenPurpose, now: string): Promise<number> {
  const res = await exec
    .updateTable('one_time_tokens')
    .set({ used_at: now })
    .where('user_id', '=', userId)
    .where('purpose', '=', purpose)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows);
}
