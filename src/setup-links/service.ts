import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { systemCtx, type Ctx, type RequestMeta } from '../context.js';
import type { Db } from '../db/database.js';
import type { OrganizationRow, SetupLinkRow } from '../db/schema.js';
import type { AuditService } from '../audit/service.js';
import { randomToken, safeEqual, sha256 } from '../crypto/tokens.js';
import { AppError, notFound } from '../http/errors.js';
import { paginate, type Page, type PageParams } from '../http/pagination.js';
import { newId } from '../ids.js';
import type { OrganizationService } from '../organizations/service.js';
import { findMembership, findOrganization } from '../organizations/store.js';
import { findUserById } from '../users/store.js';
import { findApiKey } from '../api-keys/store.js';
import { roleAllows, type Permission } from '../organizations/permissions.js';
import { bindSetupLink, findSetupLink, findSetupLinkByTokenHash, insertSetupLink, listSetupLinks, revokeSetupLink, touchSetupLink } from './store.js';

/**
 * SPEC §5 setup links: an owner or admin sends one to the customer's IT admin, who has no account,
 * to set up SSO and/or domains. Only the token's hash is stored. The first browser to open the
 * link is bound to it (a second secret in that browser's cookie, stored as a hash); API calls then
 * carry `X-Setup-Link: {id}` plus that cookie, and act as `{type: "setup_link"}` on the link's
 * organization with only the permissions its scope grants, on only the paths in SETUP_LINK_ROUTES.
 */
export const SETUP_LINK_SCOPES = ['sso', 'domains'] as const;
export type SetupLinkScope = (typeof SETUP_LINK_SCOPES)[number];

/** What each scope lets the link do (and what its creator must hold to grant it). */
export const SCOPE_PERMISSION: Record<SetupLinkScope, Permission> = { sso: 'sso:manage', domains: 'domains:manage' };

const ORG = '/api/user/organizations/([0-9A-HJKMNP-TV-Z]{26})';
/** The only requests a setup link may make (SPEC §5 "It can do nothing else"). */
export const SETUP_LINK_ROUTES: { scope: SetupLinkScope; method: string; path: RegExp }[] = [
  { scope: 'sso', method: 'GET', path: new RegExp(`^${ORG}/settings/sso$`) },
  { scope: 'sso', method: 'PUT', path: new RegExp(`^${ORG}/settings/sso$`) },
  { scope: 'sso', method: 'POST', path: new RegExp(`^${ORG}/settings/sso/test$`) },
  { scope: 'sso', method: 'GET', path: new RegExp(`^${ORG}/settings/sso/service-provider$`) },
  { scope: 'domains', method: 'GET', path: new RegExp(`^${ORG}/domains$`) },
  { scope: 'domains', method: 'POST', path: new RegExp(`^${ORG}/domains$`) },
  { scope: 'domains', method: 'GET', path: new RegExp(`^${ORG}/domains/[0-9A-HJKMNP-TV-Z]{26}$`) },
  { scope: 'domains', method: 'POST', path: new RegExp(`^${ORG}/domains/[0-9A-HJKMNP-TV-Z]{26}/verify$`) },
];

/** Whether a link with these scopes, of this organization, may make this request. */
export function setupLinkAllows(link: { organizationId: string; scope: readonly SetupLinkScope[] }, method: string, path: string): boolean {
  return SETUP_LINK_ROUTES.some((r) => {
    if (r.method !== method || !link.scope.includes(r.scope)) return false;
    const m = r.path.exec(path);
    return m !== null && m[1] === link.organizationId;
  });
}

/** The caller when a request acts through a setup link (Ctx.setupLink). */
export interface SetupLinkActor {
  id: string;
  organizationId: string;
  scope: SetupLinkScope[];
}

export const SETUP_LINK_HEADER = 'x-setup-link';
/**
 * One cookie per link (a browser may hold several), named after the link's id. On https the
 * name carries `__Host-`: the browser then takes it only from this host with Path=/ and no
 * Domain, so a sibling subdomain cannot plant or shadow it.
 */
export const setupLinkCookieName = (linkId: string, secure: boolean) => `${secure ? '__Host-' : ''}gatehouse_setup_${linkId}`;

/** The binding cookie: HttpOnly, SameSite=Strict (never sent on a cross-site request), until the link expires. */
export function setupLinkCookieOptions(config: Pick<Config, 'secureCookies'>, expires: Date) {
  return { httpOnly: true, sameSite: 'Strict' as const, secure: config.secureCookies, path: '/', expires };
}

export const MIN_HOURS = 1;
export const MAX_HOURS = 168;
export const DEFAULT_HOURS = 24;
/** last_used_at is written at most this often (not on every API call). */
const TOUCH_EVERY_MS = 60_000;

export type SetupLinkStatus = 'active' | 'expired' | 'revoked';

export interface SetupLinkView {
  id: string;
  organizationId: string;
  scope: SetupLinkScope[];
  status: SetupLinkStatus;
  expiresAt: string;
  createdAt: string;
  createdBy: { id: string; email: string | null } | null;
  boundAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export type OpenResult =
  | { ok: true; link: SetupLinkView; organization: { id: string; name: string; slug: string }; cookie: { name: string; value: string; expires: Date } | null }
  | { ok: false; reason: 'unknown' | 'expired' | 'revoked' | 'bound_elsewhere' };

function scopeOf(row: SetupLinkRow): SetupLinkScope[] {
  const parsed = JSON.parse(row.scope) as unknown;
  return Array.isArray(parsed) ? parsed.filter((s): s is SetupLinkScope => (SETUP_LINK_SCOPES as readonly unknown[]).includes(s)) : [];
}

function statusOf(row: SetupLinkRow, now: Date): SetupLinkStatus {
  if (row.revoked_at) return 'revoked';
  return new Date(row.expires_at).getTime() <= now.getTime() ? 'expired' : 'active';
}

function view(row: SetupLinkRow & { creator_email?: string | null }, now: Date): SetupLinkView {
  return {
    id: row.id,
    organizationId: row.organization_id,
    scope: scopeOf(row),
    status: statusOf(row, now),
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    createdBy: row.created_by ? { id: row.created_by, email: row.creator_email ?? null } : null,
    boundAt: row.bound_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

/** `{linkId}.{secret}` → the secret, when the cookie is this link's. */
function cookieSecret(value: string | undefined, linkId: string): string | null {
  if (!value) return null;
  const dot = value.indexOf('.');
  return dot > 0 && value.slice(0, dot) === linkId ? value.slice(dot + 1) : null;
}

export function createSetupLinkService(deps: { db: Db; clock: Clock; config: Pick<Config, 'baseUrl' | 'secureCookies'>; audit: AuditService; organizations: OrganizationService }) {
  const { db, clock } = deps;

  /** Whether this browser holds the link (its binding cookie's secret matches the stored hash). */
  function bound(row: SetupLinkRow, cookieValue: string | undefined): boolean {
    const secret = cookieSecret(cookieValue, row.id);
    return row.binding_hash !== null && secret !== null && safeEqual(sha256(secret), row.binding_hash);
  }

  const cookieName = (linkId: string) => setupLinkCookieName(linkId, deps.config.secureCookies);

  /** The link of a token, if it is active, with its organization. */
  async function live(token: string): Promise<{ ok: true; row: SetupLinkRow & { creator_email: string | null }; organization: { id: string; name: string; slug: string } } | { ok: false; reason: 'unknown' | 'expired' | 'revoked' }> {
    const row = token.startsWith('gsl_') && token.length < 100 ? await findSetupLinkByTokenHash(db, sha256(token)) : undefined;
    if (!row) return { ok: false, reason: 'unknown' };
    const status = statusOf(row, clock.now());
    if (status !== 'active') return { ok: false, reason: status };
    const organization = await findOrganization(db, row.organization_id);
    if (!organization) return { ok: false, reason: 'unknown' };
    if (!(await stillGranted(row))) return { ok: false, reason: 'revoked' };
    // The page names who sent the link (its creator exists: stillGranted checked).
    const creator = row.created_by ? await findUserById(db, row.created_by) : undefined;
    return { ok: true, row: { ...row, creator_email: creator?.email ?? null }, organization: { id: organization.id, name: organization.name, slug: organization.slug } };
  }

  /**
   * A link lives only while its creator could still make it: the user removed, demoted or deleted,
   * or the API key it was made with revoked or expired, and it is revoked for good (written, so a
   * later promotion does not bring it back and the list tells the truth).
   */
  async function stillGranted(row: SetupLinkRow): Promise<boolean> {
    if (await creatorStillGrants(row)) return true;
    await db.transaction().execute(async (tx) => {
      if (await revokeSetupLink(tx, row.organization_id, row.id, clock.now().toISOString())) {
        await deps.audit.record(tx, systemCtx, { action: 'setup_link.revoked', organizationId: row.organization_id, target: { type: 'setup_link', id: row.id }, metadata: { reason: 'creator_lost_access' } });
      }
    });
    return false;
  }

  async function creatorStillGrants(row: SetupLinkRow): Promise<boolean> {
    if (!row.created_by) return false;
    if (row.created_by_api_key_id) {
      const key = await findApiKey(db, row.created_by, row.created_by_api_key_id);
      if (!key || key.revoked_at || (key.expires_at && new Date(key.expires_at).getTime() <= clock.now().getTime())) return false;
    }
    const user = await findUserById(db, row.created_by);
    if (!user) return false;
    if (user.is_superadmin === 1) return true;
    const membership = await findMembership(db, row.organization_id, row.created_by);
    return membership !== undefined && scopeOf(row).every((s) => roleAllows(membership.role, SCOPE_PERMISSION[s]) && roleAllows(membership.role, 'setup_links:manage'));
  }

  async function touch(row: SetupLinkRow, now: Date): Promise<void> {
    if (!row.last_used_at || now.getTime() - new Date(row.last_used_at).getTime() > TOUCH_EVERY_MS) await touchSetupLink(db, row.id, now.toISOString());
  }

  return {
    async create(ctx: Ctx, organizationId: string, input: { scope: SetupLinkScope[]; expiresInHours?: number | undefined }): Promise<SetupLinkView & { url: string }> {
      await deps.organizations.requireAccess(ctx, organizationId, 'setup_links:manage');
      const scope = [...new Set(input.scope)].sort();
      // A link grants no more than its creator holds: an admin (who cannot configure SSO) cannot send a link that can.
      for (const s of scope) await deps.organizations.requireAccess(ctx, organizationId, SCOPE_PERMISSION[s]);
      const hours = input.expiresInHours ?? DEFAULT_HOURS;
      const now = clock.now();
      const token = randomToken(32, 'gsl_');
      const row: SetupLinkRow = {
        id: newId(),
        organization_id: organizationId,
        token_hash: sha256(token),
        scope: JSON.stringify(scope),
        created_by: ctx.principal?.user.id ?? null,
        created_by_api_key_id: ctx.principal?.kind === 'api_key' ? ctx.principal.apiKey.id : null,
        binding_hash: null,
        bound_at: null,
        last_used_at: null,
        expires_at: new Date(now.getTime() + hours * 3600_000).toISOString(),
        revoked_at: null,
        created_at: now.toISOString(),
      };
      await db.transaction().execute(async (tx) => {
        await insertSetupLink(tx, row);
        await deps.audit.record(tx, ctx, { action: 'setup_link.created', organizationId, target: { type: 'setup_link', id: row.id }, metadata: { scope, expiresAt: row.expires_at } });
      });
      const email = ctx.principal?.user.email ?? null;
      return { ...view({ ...row, creator_email: email }, now), url: `${deps.config.baseUrl}/setup/${token}` };
    },

    async list(ctx: Ctx, organizationId: string, params: PageParams): Promise<Page<SetupLinkView>> {
      await deps.organizations.requireAccess(ctx, organizationId, 'setup_links:manage');
      const now = clock.now();
      const rows = await listSetupLinks(db, organizationId, params);
      // A live link whose creator lost the right to make it is revoked now, so the list says so.
      const dead = new Set<string>();
      for (const r of rows.slice(0, params.limit)) if (statusOf(r, now) === 'active' && !(await stillGranted(r))) dead.add(r.id);
      return paginate(rows, params.limit, (r) => (dead.has(r.id) ? view({ ...r, revoked_at: now.toISOString() }, now) : view(r, now)));
    },

    async revoke(ctx: Ctx, organizationId: string, id: string): Promise<void> {
      await deps.organizations.requireAccess(ctx, organizationId, 'setup_links:manage');
      await db.transaction().execute(async (tx) => {
        if (!(await revokeSetupLink(tx, organizationId, id, clock.now().toISOString()))) {
          const row = await findSetupLink(tx, id);
          if (!row || row.organization_id !== organizationId) throw notFound('Setup link');
          throw new AppError('CONFLICT', 'This setup link is already revoked');
        }
        await deps.audit.record(tx, ctx, { action: 'setup_link.revoked', organizationId, target: { type: 'setup_link', id } });
      });
    },

    /**
     * `GET /setup/{token}`: whether the link is live and this browser may use it, binding nothing
     * (a mail scanner or chat preview that fetches the URL must not take the link). `unbound`: no
     * browser holds it yet, so the page asks the visitor to start, which calls `open`.
     */
    async preview(token: string, cookies: (name: string) => string | undefined): Promise<OpenResult | { ok: true; unbound: true; link: SetupLinkView; organization: { id: string; name: string; slug: string } }> {
      const found = await live(token);
      if (!found.ok) return found;
      const { row, organization } = found;
      const now = clock.now();
      if (row.binding_hash === null) return { ok: true, unbound: true, link: view(row, now), organization };
      if (!bound(row, cookies(cookieName(row.id)))) return { ok: false, reason: 'bound_elsewhere' };
      await touch(row, now);
      return { ok: true, link: view(row, now), organization, cookie: null };
    },

    /**
     * Start (`POST /setup/{token}`): the link, if it is live and this browser may use it. The first
     * browser to start it is bound (`cookie` is then the binding cookie to set); any other is refused.
     */
    async open(token: string, cookies: (name: string) => string | undefined, meta: RequestMeta): Promise<OpenResult> {
      const found = await live(token);
      if (!found.ok) return found;
      const { row, organization: org } = found;
      const now = clock.now();
      const name = cookieName(row.id);
      if (row.binding_hash !== null) {
        if (!bound(row, cookies(name))) return { ok: false, reason: 'bound_elsewhere' };
        await touch(row, now);
        return { ok: true, link: view(row, now), organization: org, cookie: null };
      }
      const secret = randomToken(32);
      const bindingHash = sha256(secret);
      const actor: SetupLinkActor = { id: row.id, organizationId: row.organization_id, scope: scopeOf(row) };
      const won = await db.transaction().execute(async (tx) => {
        if (!(await bindSetupLink(tx, row.id, bindingHash, now.toISOString()))) return false;
        await deps.audit.record(tx, { ...meta, principal: null, setupLink: actor }, { action: 'setup_link.opened', organizationId: row.organization_id, target: { type: 'setup_link', id: row.id } });
        return true;
      });
      // Two first opens at the same moment: the other one bound it.
      if (!won) return { ok: false, reason: 'bound_elsewhere' };
      const boundRow = { ...row, binding_hash: bindingHash, bound_at: now.toISOString(), last_used_at: now.toISOString() };
      return { ok: true, link: view(boundRow, now), organization: org, cookie: { name, value: `${row.id}.${secret}`, expires: new Date(row.expires_at) } };
    },

    /** The API credential: `X-Setup-Link: {id}` with that link's binding cookie. Null when dead, unknown or not this browser's. */
    async authenticate(linkId: string, cookies: (name: string) => string | undefined): Promise<SetupLinkActor | null> {
      if (!/^[0-9A-HJKMNP-TV-Z]{26}$/.test(linkId)) return null;
      const row = await findSetupLink(db, linkId);
      const now = clock.now();
      if (!row || statusOf(row, now) !== 'active' || !bound(row, cookies(cookieName(row.id))) || !(await stillGranted(row))) return null;
      await touch(row, now);
      return { id: row.id, organizationId: row.organization_id, scope: scopeOf(row) };
    },

  };
}

export type SetupLinkService = ReturnType<typeof createSetupLinkService>;

/** For requireAccess: a setup link acts only on its organization, only with what its scope grants. */
export function setupLinkGrants(actor: SetupLinkActor, organization: OrganizationRow | undefined, permission: Permission): 'ok' | 'not_found' | 'forbidden' {
  if (!organization || organization.id !== actor.organizationId) return 'not_found';
  return actor.scope.some((s) => SCOPE_PERMISSION[s] === permission) ? 'ok' : 'forbidden';
}
