import type { Clock } from '../clock.js';
import type { Ctx } from '../context.js';
import type { Db, Executor } from '../db/database.js';
import type { AuditEventRow } from '../db/schema.js';
import { newId } from '../ids.js';
import { paginate, type Page, type PageParams } from '../http/pagination.js';
import type { AuditAction } from './actions.js';
import { insertAuditEvent, listAuditEvents, type AuditFilter } from './store.js';

export interface AuditEntry {
  /** One word of the registry (audit/actions.ts). */
  action: AuditAction;
  organizationId?: string | null;
  target?: { type: string; id: string } | null;
  /** Plain facts only. Keys that look like secrets are dropped before writing. */
  metadata?: Record<string, unknown> | null;
}

const SECRET_KEY = /secret|password|token|key$|^key|code|assertion|credential/i;

/** Remove anything secret-looking, recursively: the audit log never holds a secret. */
export function scrubMetadata(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(scrubMetadata);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (SECRET_KEY.test(k)) continue;
      out[k] = scrubMetadata(v);
    }
    return out;
  }
  return value;
}

export interface AuditEventView {
  id: string;
  organizationId: string | null;
  /** `setupLinkId`: a change made through a setup link (type `setup_link`, SPEC §5). */
  actor: { type: string; userId: string | null; apiKeyId: string | null; setupLinkId: string | null };
  action: string;
  target: { type: string; id: string } | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  metadata: Record<string, unknown> | null;
  createdAt: string;
}

export function createAuditService(deps: { db: Db; clock: Clock }) {
  return {
    /** Record one event; pass the transaction so the event lands with the change or not at all. */
    async record(exec: Executor, ctx: Ctx, entry: AuditEntry): Promise<void> {
      const p = ctx.principal;
      await insertAuditEvent(exec, {
        id: newId(),
        organization_id: entry.organizationId ?? null,
        actor_type: p ? (p.kind === 'api_key' ? 'api_key' : 'user') : ctx.setupLink ? 'setup_link' : 'system',
        actor_user_id: p?.user.id ?? null,
        actor_api_key_id: p?.kind === 'api_key' ? p.apiKey.id : null,
        actor_setup_link_id: p ? null : (ctx.setupLink?.id ?? null),
        action: entry.action,
        target_type: entry.target?.type ?? null,
        target_id: entry.target?.id ?? null,
        ip: ctx.ip,
        user_agent: ctx.userAgent ? ctx.userAgent.slice(0, 512) : null,
        request_id: ctx.requestId,
        metadata: entry.metadata ? JSON.stringify(scrubMetadata(entry.metadata)) : null,
        created_at: deps.clock.now().toISOString(),
      });
    },

    async list(organizationId: string, params: PageParams, filter: AuditFilter = {}): Promise<Page<AuditEventView>> {
      const rows = await listAuditEvents(deps.db, organizationId, params, filter);
      return paginate(rows, params.limit, toView);
    },
  };
}

function toView(r: AuditEventRow): AuditEventView {
  return {
    id: r.id,
    organizationId: r.organization_id,
    actor: { type: r.actor_type, userId: r.actor_user_id, apiKeyId: r.actor_api_key_id, setupLinkId: r.actor_setup_link_id },
    action: r.action,
    target: r.target_type && r.target_id ? { type: r.target_type, id: r.target_id } : null,
    ip: r.ip,
    userAgent: r.user_agent,
    requestId: r.request_id,
    metadata: r.metadata ? (JSON.parse(r.metadata) as Record<string, unknown>) : null,
    createdAt: r.created_at,
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
