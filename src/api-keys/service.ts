import { z } from '@hono/zod-openapi';
import { MINUTE, type Clock } from '../clock.js';
import type { Ctx } from '../context.js';
import type { Db } from '../db/database.js';
import type { ApiKeyRow, UserRow } from '../db/schema.js';
import { randomToken, sha256 } from '../crypto/tokens.js';
import { AppError, notFound } from '../http/errors.js';
import { paginate, type Page, type PageParams } from '../http/pagination.js';
import { newId } from '../ids.js';
import type { AuditService } from '../audit/service.js';
import type { OrganizationService } from '../organizations/service.js';
import { findApiKeyWithUser, insertApiKey, listApiKeys, revokeApiKey, touchApiKey } from './store.js';

export const API_KEY_PREFIX = 'gk_';
const LAST_USED_INTERVAL_MS = MINUTE;

/**
 * Scopes narrow what a key may do (a key without scopes acts with its user's full access).
 * `<area>:write` implies `<area>:read`.
 */
export const API_KEY_SCOPES = [
  'user:read', 'user:write', 'organizations:read', 'organizations:write', 'admin:read', 'admin:write',
] as const;
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
  if (scopes === null || needed === null) return true;
  if (scopes.includes(needed)) return true;
  return needed.endsWith(':read') && scopes.includes(needed.replace(':read', ':write') as ApiKeyScope);
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

    async list(userId: string, params: PageParams): Promise<Page<ApiKeyView>> {
      return paginate(await listApiKeys(db, userId, params), params.limit, view);
    },

    async revoke(ctx: Ctx, userId: string, keyId: string): Promise<void> {
      await db.transaction().execute(async (tx) => {
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
