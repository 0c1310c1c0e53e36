import { sql } from 'kysely';
import type { Executor } from '../db/database.js';
import { preparedInsert } from '../db/prepared.js';
import type { AuditEventRow, NewAuditEvent } from '../db/schema.js';

const insertAuditRow = preparedInsert('audit_events');

export async function insertAuditEvent(db: Executor, event: NewAuditEvent): Promise<void> {
  await insertAuditRow(db, event);
}

/** What the audit log can be narrowed to (all optional, combined with AND). */
export interface AuditFilter {
  /** An action, or a family such as `sso.` (every action that starts with it). */
  action?: string | undefined;
  actorType?: string | undefined;
  /** A user, API key or setup link id: the actor of any of those kinds. */
  actorId?: string | undefined;
  /** ISO timestamps, inclusive from, exclusive to. */
  from?: string | undefined;
  to?: string | undefined;
}

export async function listAuditEvents(
  db: Executor,
  organizationId: string,
  page: { limit: number; cursor: string | null },
  filter: AuditFilter = {},
): Promise<AuditEventRow[]> {
  let q = db.selectFrom('audit_events').selectAll().where('organization_id', '=', organizationId);
  if (filter.action) {
    const family = filter.action;
    // A family is a prefix: compared as one (no LIKE, whose `_` would match any character).
    q = family.endsWith('.') ? q.where(sql<boolean>`substr(action, 1, ${family.length}) = ${family}`) : q.where('action', '=', family);
  }
  if (filter.actorType) q = q.where('actor_type', '=', filter.actorType as AuditEventRow['actor_type']);
  if (filter.actorId) {
    const id = filter.actorId;
    q = q.where((eb) => eb.or([eb('actor_user_id', '=', id), eb('actor_api_key_id', '=', id), eb('actor_setup_link_id', '=', id)]));
  }
  if (filter.from) q = q.where('created_at', '>=', filter.from);
  if (filter.to) q = q.where('created_at', '<', filter.to);
  if (page.cursor) q = q.where('id', '<', page.cursor);
  return q.orderBy('id', 'desc').limit(page.limit + 1).execute();
}
