import { z } from '@hono/zod-openapi';
import { ULID_PATTERN } from '../ids.js';

export interface PageParams {
  limit: number;
  cursor: string | null;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export const pageQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20).openapi({ description: '1–100, default 20' }),
    cursor: z.string().regex(ULID_PATTERN, 'must be a cursor from a previous page').optional(),
  })
  .strict();

export function pageParams(q: { limit: number; cursor?: string | undefined }): PageParams {
  return { limit: q.limit, cursor: q.cursor ?? null };
}

/** Rows were fetched with limit + 1 and ordered by id; the extra row tells whether another page exists. */
export function paginate<R extends { id: string }, T>(rows: R[], limit: number, map: (r: R) => T): Page<T> {
  const more = rows.length > limit;
  const pageRows = more ? rows.slice(0, limit) : rows;
  return { items: pageRows.map(map), nextCursor: more ? (pageRows[pageRows.length - 1]?.id ?? null) : null };
}
