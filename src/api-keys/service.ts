import { z } from '@hono/zod-openapi';
import { MINUTE, type Clock } from '../clock.js';
import { pinOf, type Ctx } from '../context.js';
import type { Db } from '../db/database.js';
import type { ApiKeyRow, UserRow } from '../db/schema.js';
import { randomToken, sha256 } from '../crypto/tokens.js';
import { AppError, forbidden, notFound } from '../http/errors.js';
import { paginate, type Page, type PageParams } from '../http/pagination.js';
import { newId } from '../ids.js';
import type { AuditService } from '../audit/service.js';
import type { OrganizationService } from '../organizations/service.js';
import { findApiKey, findApiKeyWithUser, insertApiKey, listApiKeys, revokeApiKey, touchApiKey } from './store.js';

export const API_KEY_PREFIX = 'gk_';
const LAST_USED_INTERVAL_MS = MINUTE;

/**
 * Scopes narrow what a key may do (a key without scopes acts with its user's full access).
 * `<area>:write` implies `<area>:read`.
 */
export const API_KEY_SCOPES = [
  'user:read', 'user:write', 'organizations:read', 'organizations:write', 'admin:read', 'admin:write', 'sso:idp-tokens',
] as const;

/**
 * Scopes a key must name to hold: a full-access key (no scopes) does not have them, nor can it
 * mint a key that has them. `sso:idp-tokens` hands out credentials of another system (the users'
 * IdP tokens, SPEC §9), so only a key made for it can fetch them.
 */
export const EXPLICIT_SCOPES: readonly ApiKeyScope[] = ['sso:idp-tokens'];
const IDP_TOKEN_PATH = /^\/api\/user\/organizations\/[^/]+\/sso\/identities\/[^/]+\/idp-token\/?$/;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

const scopesJson = z.array(z.enum(API_KEY_SCOPES));

export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  scopes: ApiKeyScope[] | null;
  organizationId: string | null;
  expiresAt: string | null;
  lastUsedAt: string | null;
  createdAt: string;
}

export function parseScopes(raw: string | null): ApiKeyScope[] | null {
  return raw === null ? null : scopesJson.parse(JSON.parse(raw));
}

function view(k: ApiKeyRow): ApiKeyView {
  return {
    id: k.id,
    name: k.name,
    prefix: k.key_prefix,
    scopes: parseScopes(k.scopes),
    organizationId: k.organization_id,
    expiresAt: k.expires_at,
    lastUsedAt: k.last_used_at,
    createdAt: k.created_at,
  };
}

/** Which scope a request needs, from its path and method; null = any key may call it. */
export function requiredScope(path: string, method: string): ApiKeyScope | null {
  if (IDP_TOKEN_PATH.test(path)) return 'sso:idp-tokens';
  const write = !['GET', 'HEAD', 'OPTIONS'].includes(method);
  const area = path.startsWith('/api/admin/')
    ? 'admin'
    : path.startsWith('/api/user/organizations') || path.startsWith('/api/user/invitations')
      ? 'organizations'
      : path.startsWith('/api/user/') || path.startsWith('/api/auth/')
        ? 'user'
        : null;
  if (!area) return null;
  return `${area}:${write ? 'write' : 'read'}` as ApiKeyScope;
}

export function scopeAllows(scopes: ApiKeyScope[] | null, needed: ApiKeyScope | null): boolean {
  if (needed === null) return true;
  if (scopes === null) return !EXPLICIT_SCOPES.includes(needed);
  if (scopes.includes(needed)) return true;
  return needed.endsWith(':read') && scopes.includes(needed.replace(':read', ':write') as ApiKeyScope);
}

/**
 * SPEC §12: a key can only mint keys no stronger than itself. "No stronger" means the same pin
 * (a pinned key mints keys pinned to its organization only), scopes each allowed by the parent's
 * (`x:write` covers `x:read`; a scoped parent cannot mint a full-access key) and an expiry no
 * later than the parent's. Returns why not, or null when `child` is within `parent`'s reach.
 * The same test decides which of the owner's keys an API key may revoke.
 */
export function keyReachRefusal(
  parent: Pick<ApiKeyRow, 'organization_id' | 'expires_at'> & { scopes: ApiKeyScope[] | null },
  child: { organizationId: string | null; scopes: ApiKeyScope[] | null; expiresAt: string | null },
): string | null {
  if (parent.organization_id && child.organizationId !== parent.organization_id) {
    return 'An API key pinned to an organization can only reach keys pinned to the same organization';
  }
  if (parent.scopes !== null && child.scopes === null) return 'A scoped API key cannot reach a key with full access; list scopes it holds';
  const beyond = (child.scopes ?? []).filter((s) => !scopeAllows(parent.scopes, s));
  if (beyond.length) return `This API key lacks the scope(s) ${beyond.join(', ')}`;
  if (parent.expires_at && (!child.expiresAt || Date.parse(child.expiresAt) > Date.parse(parent.expires_at))) {
    return `This API key expires at ${parent.expires_at}; a key it reaches must expire no later`;
  }
  return null;
}

/** The calling API key as `keyReachRefusal` reads it, or null for a session (which may reach every key of its user). */
function callingKey(ctx: Ctx) {
  const p = ctx.principal;
  return p?.kind === 'api_key' ? { ...p.apiKey, scopes: parseScopes(p.apiKey.scopes) } : null;
}

export function createApiKeyService(deps: { db: Db; clock: Clock; audit: AuditService; organizations: OrganizationService }) {
  const { db, clock } = deps;
  return {
    async create(
      ctx: Ctx,
      user: UserRow,
      input: { name: string; scopes?: ApiKeyScope[] | undefined; organizationId?: string | undefined; expiresAt?: string | undefined },
    ): Promise<{ key: string; apiKey: ApiKeyView }> {
      const now = clock.now();
      if (input.expiresAt && Date.parse(input.expiresAt) <= now.getTime()) {
        throw new AppError('VALIDATION_FAILED', 'expiresAt must be in the future', {
          issues: [{ path: 'expiresAt', message: 'must be in the future' }],
        });
      }
      const parent = callingKey(ctx);
      if (parent) {
        const why = keyReachRefusal(parent, {
          organizationId: input.organizationId ?? null,
          scopes: input.scopes ?? null,
          expiresAt: input.expiresAt ?? null,
        });
        if (why) throw forbidden(`${why} (SPEC §12: an API key can only mint keys no stronger than itself)`);
      }
      // Pinning to an organization needs access to it, its sign-in policy included (a non-member
      // learns nothing: 404). An unpinned key reaches every organization, so the session must
      // satisfy the policy of each one it belongs to: a key must not be a way around SSO or MFA.
      if (input.organizationId) await deps.organizations.requireAccess(ctx, input.organizationId, 'org:read');
      else await deps.organizations.requireAllMembershipPolicies(ctx);
      const key = randomToken(24, API_KEY_PREFIX); // 192 bits
      const row: ApiKeyRow = {
        id: newId(),
        user_id: user.id,
        name: input.name,
        key_hash: sha256(key),
        key_prefix: key.slice(0, 10),
        scopes: input.scopes ? JSON.stringify([...new Set(input.scopes)]) : null,
        organization_id: input.organizationId ?? null,
        expires_at: input.expiresAt ? new Date(input.expiresAt).toISOString() : null,
        last_used_at: null,
        created_at: now.toISOString(),
        revoked_at: null,
      };
      await db.transaction().execute(async (tx) => {
        await insertApiKey(tx, row);
        await deps.audit.record(tx, ctx, {
          action: 'api_key.created',
          organizationId: row.organization_id,
          target: { type: 'api_key', id: row.id },
          metadata: { name: row.name, prefix: row.key_prefix, scopes: input.scopes ?? null },
        });
      });
      return { key, apiKey: view(row) };
    },

    /** A pinned key sees only the keys pinned to its organization; a session or an unpinned key sees all of the user's. */
    async list(ctx: Ctx, userId: string, params: PageParams): Promise<Page<ApiKeyView>> {
      const pin = ctx.principal ? pinOf(ctx.principal) : null;
      return paginate(await listApiKeys(db, userId, params, pin), params.limit, view);
    },

    /**
     * Revoke one of the user's keys. An API key may revoke itself and the keys it could have
     * minted (same pin, no wider scopes, no later expiry): a key pinned to one organization must
     * not be able to cut off the integrations of the owner's other organizations. A key pinned
     * elsewhere is invisible to it (404, as in the list); a stronger one is 403.
     */
    async revoke(ctx: Ctx, userId: string, keyId: string): Promise<void> {
      const parent = callingKey(ctx);
      await db.transaction().execute(async (tx) => {
        if (parent && parent.id !== keyId) {
          const target = await findApiKey(tx, userId, keyId);
          if (!target || target.revoked_at || (parent.organization_id && target.organization_id !== parent.organization_id)) throw notFound('API key');
          const why = keyReachRefusal(parent, { organizationId: target.organization_id, scopes: parseScopes(target.scopes), expiresAt: target.expires_at });
          if (why) throw forbidden(why);
        }
        if (!(await revokeApiKey(tx, userId, keyId, clock.now().toISOString()))) throw notFound('API key');
        await deps.audit.record(tx, ctx, { action: 'api_key.revoked', target: { type: 'api_key', id: keyId } });
      });
    },

    /** Resolve a presented key; null when unknown, revoked or expired. Writes lastUsedAt at most once a minute. */
    async authenticate(presented: string): Promise<{ apiKey: ApiKeyRow; user: UserRow; scopes: ApiKeyScope[] | null } | null> {
      if (!presented.startsWith(API_KEY_PREFIX) || presented.length > 100) return null;
      const found = await findApiKeyWithUser(db, sha256(presented));
      if (!found) return null;
      const now = clock.now();
      const { key } = found;
      if (key.revoked_at || (key.expires_at && key.expires_at <= now.toISOString())) return null;
      if (!key.last_used_at || now.getTime() - Date.parse(key.last_used_at) >= LAST_USED_INTERVAL_MS) {
        key.last_used_at = now.toISOString();
        await touchApiKey(db, key.id, key.last_used_at);
      }
      return { apiKey: key, user: found.user, scopes: parseScopes(key.scopes) };
    },
  };
}

export type ApiKeyService = ReturnType<typeof createApiKeyService>;
