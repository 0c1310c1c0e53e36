import { sql, type Selectable, type Updateable } from 'kysely';
import type { Executor } from '../../db/database.js';
import { prepareQuery } from '../../db/prepared.js';
import type { OrganizationRow, SsoConnectionsTable } from '../../db/schema.js';

export type ConnectionRow = Selectable<SsoConnectionsTable>;

/**
 * `status = 'active'` written as a literal, never a bound parameter: only then can SQLite use the
 * partial index sso_connections_one_active (organization_id, WHERE status = 'active') — with a
 * parameter it cannot prove the index's condition and scans every organization's connections
 * (PostgreSQL plans with the value, and uses it either way). The organization-scoped lookups of
 * the active connection (a login start, the sign-in policy) use it.
 */
export const ACTIVE_STATUS = sql.lit('active' as const);

/** A connection and its organization, read together (one statement on a login's way). */
export interface ConnectionWithOrganization {
  connection: ConnectionRow;
  organization: OrganizationRow;
}

function selectWithOrganization(db: Executor) {
  return db
    .selectFrom('sso_connections as c')
    .innerJoin('organizations as o', 'o.id', 'c.organization_id')
    .selectAll('c')
    .select(['o.name as org_name', 'o.slug as org_slug', 'o.auth_required as org_auth_required', 'o.require_mfa as org_require_mfa', 'o.created_at as org_created_at', 'o.updated_at as org_updated_at']);
}

type JoinedRow = Awaited<ReturnType<ReturnType<typeof selectWithOrganization>['executeTakeFirstOrThrow']>>;

function splitJoined(row: JoinedRow | undefined): ConnectionWithOrganization | undefined {
  if (!row) return undefined;
  const { org_name, org_slug, org_auth_required, org_require_mfa, org_created_at, org_updated_at, ...connection } = row;
  return {
    connection,
    organization: { id: connection.organization_id, name: org_name, slug: org_slug, auth_required: org_auth_required, require_mfa: org_require_mfa, created_at: org_created_at, updated_at: org_updated_at },
  };
}

const activeBySlugQuery = prepareQuery((db, p: { slug: string }) => selectWithOrganization(db).where('o.slug', '=', p.slug).where('c.status', '=', ACTIVE_STATUS));
/** The active connection of the organization with this slug, with the organization; undefined when either is missing. */
export async function findActiveConnectionBySlug(db: Executor, slug: string): Promise<ConnectionWithOrganization | undefined> {
  return splitJoined(await activeBySlugQuery.first(db, { slug }));
}

const withOrganizationQuery = prepareQuery((db, p: { id: string }) => selectWithOrganization(db).where('c.id', '=', p.id));
/** A connection by id, with its organization. */
export async function findConnectionWithOrganization(db: Executor, id: string): Promise<ConnectionWithOrganization | undefined> {
  return splitJoined(await withOrganizationQuery.first(db, { id }));
}

export async function findActiveConnection(db: Executor, organizationId: string): Promise<ConnectionRow | undefined> {
  return db
    .selectFrom('sso_connections')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .where('status', '=', ACTIVE_STATUS)
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
