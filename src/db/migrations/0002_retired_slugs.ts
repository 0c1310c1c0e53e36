import type { Kysely } from 'kysely';

/**
 * SPEC §12: retired slugs. Login URLs, the SAML ACS URL and the SP entity ID contain the
 * organization's slug, so a slug left behind by a rename or a deletion stays reserved to the
 * organization that held it: another organization taking it would receive the IdP-initiated
 * responses and old login links meant for the first. One row per slug (the primary key is the
 * unique index); `organization_id` has no foreign key on purpose — a deleted organization's
 * slugs stay reserved after its row is gone.
 *
 * The table does not start empty: slugs renamed away or deleted under the previous release are
 * in the audit trail (see backfillFromAudit), and they need the protection as much as new ones.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('retired_slugs')
    .addColumn('slug', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('retired_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('retired_slugs_org').on('retired_slugs').column('organization_id').execute();
  await backfillFromAudit(db as unknown as Kysely<BackfillTables>);
}

/** The columns this migration reads and writes, as they are at this migration (not as schema.ts may later say). */
interface BackfillTables {
  audit_events: {
    id: string;
    organization_id: string | null;
    action: string;
    target_type: string | null;
    target_id: string | null;
    metadata: string | null;
    created_at: string;
  };
  organizations: { id: string; slug: string };
  retired_slugs: { slug: string; organization_id: string; retired_at: string };
}

/** Events read per query: memory stays bounded however long the trail is. */
export const BACKFILL_PAGE_SIZE = 500;

/**
 * Every slug the previous release let go, from the audit trail (P1 wrote these events in the
 * same transaction as the change):
 * - `organization.updated` with `metadata.from.slug` ≠ `metadata.to.slug` (a rename);
 * - `organization.deleted` with `metadata.slug`.
 * The organization is the event's `organization_id` (audit_events has no foreign key, so it
 * survives the deletion), else its `target_id` (the organization, for these events).
 * The JSON is parsed here, not in SQL, so the same code runs on SQLite and PostgreSQL. Events are
 * read oldest first, a page at a time; the first retirement of a slug wins (a later holder could
 * only have taken it because P1 did not protect it). A slug some organization uses now is left
 * out: its holder keeps it, and it becomes retired if and when that holder leaves it.
 */
async function backfillFromAudit(db: Kysely<BackfillTables>): Promise<void> {
  let after: string | null = null;
  for (;;) {
    let q = db
      .selectFrom('audit_events')
      .select(['id', 'organization_id', 'action', 'target_type', 'target_id', 'metadata', 'created_at'])
      .where('action', 'in', ['organization.updated', 'organization.deleted']);
    if (after !== null) q = q.where('id', '>', after);
    const page = await q.orderBy('id', 'asc').limit(BACKFILL_PAGE_SIZE).execute();
    if (page.length === 0) return;
    after = page[page.length - 1]!.id;

    // In page order, first occurrence of each slug only (later ones lose anyway).
    const found = new Map<string, { organization_id: string; retired_at: string }>();
    for (const event of page) {
      const slug = leftSlug(event.action, event.metadata);
      const organizationId = event.organization_id ?? (event.target_type === 'organization' ? event.target_id : null);
      if (slug && organizationId && !found.has(slug)) found.set(slug, { organization_id: organizationId, retired_at: event.created_at });
    }
    if (found.size === 0) continue;
    const inUse = await db.selectFrom('organizations').select('slug').where('slug', 'in', [...found.keys()]).execute();
    for (const { slug } of inUse) found.delete(slug);
    for (const [slug, row] of found) {
      // A slug an earlier page already recorded keeps its first owner.
      await db.insertInto('retired_slugs').values({ slug, ...row }).onConflict((oc) => oc.column('slug').doNothing()).execute();
    }
  }
}

/** The slug an organization.updated / organization.deleted event says was left behind, if any. */
function leftSlug(action: string, metadata: string | null): string | null {
  if (!metadata) return null;
  let m: unknown;
  try {
    m = JSON.parse(metadata);
  } catch {
    return null;
  }
  if (!isRecord(m)) return null;
  if (action === 'organization.deleted') return nonEmpty(m.slug);
  const from = isRecord(m.from) ? nonEmpty(m.from.slug) : null;
  const to = isRecord(m.to) ? nonEmpty(m.to.slug) : null;
  return from && from !== to ? from : null;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const nonEmpty = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
