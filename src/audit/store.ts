import type { Executor } from '../db/database.js';
import type { AuditEventRow, NewAuditEvent } from '../db/schema.js';

export async function insertAuditEvent(db: Executor, event: NewAuditEvent): Promise<void> {
  await db.insertInto('audit_events').values(event).execute();
}

export async function listAuditEvents(
  db: Executor,
  organizationId: string,
  page: { limit: number; cursor: string | null },
): Promise<AuditEventRow[]> {
  let q = db.selectFrom('audit_events').selectAll().where('organization_id', '=', organizationId);
  if (page.cursor) q = q.where('id', '<', page.cursor);
  return q.orderBy('id', 'desc').limit(page.limit + 1).execute();
}
