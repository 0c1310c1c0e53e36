import type { ApiKeyRow, SessionRow, UserRow } from './db/schema.js';
import type { SetupLinkActor } from './setup-links/service.js';

/** Who is calling. Built by the authenticate middleware, read by routes and services. */
export type Principal =
  | { kind: 'session'; user: UserRow; session: SessionRow }
  | { kind: 'api_key'; user: UserRow; apiKey: ApiKeyRow; scopes: string[] | null };

/** The organization an API key is pinned to, or null (a session, an unpinned key). */
export function pinOf(p: Principal): string | null {
  return p.kind === 'api_key' ? p.apiKey.organization_id : null;
}

/** What every write needs to know about the request, for the audit log. */
export interface RequestMeta {
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
}

export interface Ctx extends RequestMeta {
  principal: Principal | null;
  /** SPEC §5: the request acts through a setup link (then principal is null). */
  setupLink?: SetupLinkActor | null;
}

export const systemCtx: Ctx = { principal: null, ip: null, userAgent: null, requestId: null };
