import type { Selectable, Updateable } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { SsoConnectionsTable } from '../../db/schema.js';

export type ConnectionRow = Selectable<SsoConnectionsTable>;

export async function findActiveConnection(db: Executor, organizationId: string): Promise<ConnectionRow | undefined> {
  return db
    .selectFrom('sso_connections')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('status', '=', 'active')
    .executeTakeFirst();
}

export async function findConnection(db: Executor, id: string): Promise<ConnectionRow | undefined> {
  return db.selectFrom('sso_connections').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function insertConnection(db: Executor, row: ConnectionRow): Promise<void> {
  await db.insertInto('sso_connections').values(row).execute();
}

export async function updateConnection(db: Executor, id: string, patch: Updateable<SsoConnectionsTable>): Promise<void> {
  await db.updateTable('sso_connections').set(patch).where('id', '=', id).execute();
}

/**
 * Replaced (or deleted) connections stay so their identities stay listed; nothing of them is used
 * to sign in, and their secret is erased.
 */
export async function markReplaced(db: Executor, id: string, now: string): Promise<void> {
  await db.updateTable('sso_connections').set({ status: 'replaced', enabled: 0, secret_enc: null, updated_at: now }).where('id', '=', id).execute();
}

/** Record a test of the saved settings, for the config version it tested only (a save since then keeps the new version untested). */
export async function setLastTest(db: Executor, id: string, configVersion: number, result: { ok: boolean; at: string }): Promise<void> {
  await db
    .updateTable('sso_connections')
    .set({ last_test_ok: result.ok ? 1 : 0, last_test_at: result.at, last_test_version: configVersion })
    .where('id', '=', id)
    .where('config_version', '=', configVersion)
    .execute();
}
