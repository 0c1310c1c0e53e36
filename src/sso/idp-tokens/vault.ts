import { randomUUID } from 'node:crypto';
import { MINUTE, type Clock } from '../../clock.js';
import type { Ctx } from '../../context.js';
import type { Db, Executor } from '../../db/database.js';
import type { Logger } from '../../logger.js';
import type { KeyRing } from '../../crypto/keyring.js';
import { SEALED_COLUMNS, sealContext, type SealedColumn } from '../../crypto/sealed-columns.js';
import { AppError, notFound } from '../../http/errors.js';
import type { AuditService } from '../../audit/service.js';
import type { OrganizationService } from '../../organizations/service.js';
import { DEFAULT_TIMEOUT_MS, type OutboundFetch } from '../outbound.js';
import { parseConnection, type Connection } from '../connections/model.js';
import type { ConnectionService } from '../connections/service.js';
import { findConnection } from '../connections/store.js';
import { findIdentityInOrganization } from '../identities/store.js';
import type { OidcMetadata } from '../oidc/metadata.js';
import { refreshGrant, type GrantedTokens, type RefreshOutcome } from '../oidc/token.js';
import { claimIdpTokens, findIdpTokens, finishIdpRefresh, revokeIdpTokensOfUser, upsertIdpTokens, type IdpTokenRow } from './store.js';

/**
 * The IdP token vault (SPEC §9): the access and refresh tokens an OIDC IdP issued at a user's
 * login, sealed per identity, refreshed before they expire (refresher.ts) and on use, and handed
 * to the SaaS's backend — never shown in any other answer, log line or audit entry.
 *
 * One refresh token is sent to the IdP by one caller at a time, cluster-wide: a caller first
 * claims the row (a conditional update that holds it for the outbound timeout plus a margin);
 * another caller on the same instance joins the refresh in progress, and one on another instance
 * waits for the holder's result. An IdP that rotates refresh tokens would otherwise see the old
 * one twice and, rightly, revoke the grant.
 */

export const IDP_TOKEN_STATUSES = ['valid', 'expired', 'refresh_failed', 'revoked'] as const;
export type IdpTokenStatus = (typeof IDP_TOKEN_STATUSES)[number];

/** What an identity shows of its tokens: never a token. */
export interface IdpTokensView {
  status: IdpTokenStatus;
  accessTokenExpiresAt: string | null;
  scopes: string[];
  obtainedAt: string;
  lastRefreshedAt: string | null;
  /** Why the last refresh did not succeed (the IdP's error, never a token), or null. */
  lastRefreshError: string | null;
}

/**
 * A token handed to the app must be good for at least a minute — or half its lifetime, for
 * tokens that live under two minutes; closer to its expiry it is refreshed first.
 */
export const REFRESH_ON_USE_MARGIN_MS = MINUTE;
export function refreshMarginOf(row: Pick<IdpTokenRow, 'access_token_expires_at' | 'obtained_at' | 'last_refreshed_at'>): number {
  if (!row.access_token_expires_at) return 0;
  const lifetime = Date.parse(row.access_token_expires_at) - Date.parse(row.last_refreshed_at ?? row.obtained_at);
  return Math.max(0, Math.min(REFRESH_ON_USE_MARGIN_MS, lifetime / 2));
}
/** Expiries beyond a year are taken as a year (a wrong clock or a bogus `expires_in`). */
const MAX_LIFETIME_S = 365 * 24 * 3600;
/** Retry delays after the nth failure to reach the IdP in a row (the first: at the next sweep). */
const BACKOFF_MS = [0, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 30 * MINUTE];
const backoffAfter = (failures: number) => BACKOFF_MS[Math.min(failures, BACKOFF_MS.length) - 1] ?? 30 * MINUTE;

type TokenColumn = Extract<SealedColumn, { table: 'sso_idp_tokens' }>;
const column = (name: TokenColumn['column']): TokenColumn => SEALED_COLUMNS.find((c): c is TokenColumn => c.table === 'sso_idp_tokens' && c.column === name)!;
const ACCESS = column('access_token_enc');
const REFRESH = column('refresh_token_enc');

export type RefreshResult =
  /** `row` is what the table holds after the attempt (undefined: the identity or its tokens are gone). */
  { outcome: 'refreshed' | 'refused' | 'failed' | 'skipped' | 'waited'; row: IdpTokenRow | undefined; detail?: string };

export interface IdpTokenVaultDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  keyring: KeyRing;
  outbound: OutboundFetch;
  oidcMetadata: OidcMetadata;
  audit: Pick<AuditService, 'record'>;
  organizations: Pick<OrganizationService, 'requireAccess'>;
  connections: Pick<ConnectionService, 'clientSecret'>;
}

type StatusFields = Pick<IdpTokenRow, 'status' | 'access_token_expires_at' | 'scopes' | 'obtained_at' | 'last_refreshed_at' | 'last_error'>;

export function statusOf(row: Pick<IdpTokenRow, 'status' | 'access_token_expires_at'>, now: Date): IdpTokenStatus {
  if (row.status !== 'valid') return row.status;
  return row.access_token_expires_at !== null && Date.parse(row.access_token_expires_at) <= now.getTime() ? 'expired' : 'valid';
}

export function viewOf(row: StatusFields, now: Date): IdpTokensView {
  return {
    status: statusOf(row, now),
    accessTokenExpiresAt: row.access_token_expires_at,
    scopes: JSON.parse(row.scopes) as string[],
    obtainedAt: row.obtained_at,
    lastRefreshedAt: row.last_refreshed_at,
    lastRefreshError: row.last_error,
  };
}

const unavailable = (status: IdpTokenStatus | 'none', message: string) => new AppError('IDP_TOKEN_UNAVAILABLE', message, { status });

export function createIdpTokenVault(deps: IdpTokenVaultDeps, options: { leaseMs?: number; holder?: string } = {}) {
  const { db, clock, keyring } = deps;
  /**
   * Longer than one refresh can take: discovery on a cache miss and up to two POSTs to the token
   * endpoint (basic, then post after `invalid_client`), each bounded by the outbound timeout.
   */
  const leaseMs = options.leaseMs ?? 3 * DEFAULT_TIMEOUT_MS + 10_000;
  /** This instance, as the holder of row leases. */
  const holder = options.holder ?? randomUUID();
  const inflight = new Map<string, Promise<RefreshResult>>();

  const seal = (col: TokenColumn, id: string, value: string) => keyring.encrypt(value, sealContext(col, id));
  const unseal = (col: TokenColumn, id: string, sealed: string) => keyring.decrypt(sealed, sealContext(col, id));
  const expiryOf = (now: Date, expiresIn: number | null) => (expiresIn === null ? null : new Date(now.getTime() + Math.min(expiresIn, MAX_LIFETIME_S) * 1000).toISOString());

  /** The connection of a token row, when it still keeps IdP tokens (active, OIDC, storeIdpTokens on); else null. */
  async function keepingConnection(exec: Executor, connectionId: string): Promise<Connection | null> {
    const connRow = await findConnection(exec, connectionId);
    const connection = connRow ? parseConnection(connRow) : null;
    return connection?.oidc && connection.status === 'active' && connection.storeIdpTokens ? connection : null;
  }

  /** Ask the IdP; whatever goes wrong before an answer (discovery, the connection gone, a sealed value that no longer opens) is a failure to retry. */
  async function askIdp(row: IdpTokenRow): Promise<RefreshOutcome> {
    try {
      const connection = await keepingConnection(db, row.connection_id);
      if (!connection) return { kind: 'failed', detail: 'The connection of this identity is no longer active or no longer keeps IdP tokens' };
      const discovery = await deps.oidcMetadata.discover(connection.oidc!.issuerUrl);
      const client = { clientId: connection.oidc!.clientId, clientSecret: deps.connections.clientSecret(connection) };
      return await refreshGrant(deps.outbound, discovery, client, unseal(REFRESH, row.id, row.refresh_token_enc!));
    } catch (err) {
      return { kind: 'failed', detail: err instanceof Error ? err.message.slice(0, 300) : 'unknown error' };
    }
  }

  /** Another instance holds the row: wait until it wrote its result (or its lease ran out), then read what is there. */
  async function waitForHolder(id: string, claimed: IdpTokenRow): Promise<IdpTokenRow | undefined> {
    const deadline = Date.now() + leaseMs + 1000;
    for (;;) {
      const row = await findIdpTokens(db, id);
      if (!row || row.generation !== claimed.generation || row.lease_until === null || Date.parse(row.lease_until) <= clock.now().getTime()) return row;
      if (Date.now() > deadline) return row;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function refreshRow(id: string, seenGeneration: number | undefined): Promise<RefreshResult> {
    const row = await findIdpTokens(db, id);
    if (!row || row.status !== 'valid' || !row.refresh_token_enc) return { outcome: 'skipped', row };
    // Refreshed since the caller read it (by a refresh that finished in between): that answer is the one to use.
    if (seenGeneration !== undefined && row.generation !== seenGeneration) return { outcome: 'waited', row };
    const now = clock.now();
    if (!(await claimIdpTokens(db, row, holder, now.toISOString(), new Date(now.getTime() + leaseMs).toISOString()))) {
      return { outcome: 'waited', row: await waitForHolder(id, row) };
    }
    const outcome = await askIdp(row);
    const done = clock.now();
    const doneIso = done.toISOString();
    const log = { identityId: id, connectionId: row.connection_id, organizationId: row.organization_id };
    if (outcome.kind === 'refreshed') {
      const t = outcome.tokens;
      const written = await finishIdpRefresh(db, row, holder, {
        access_token_enc: seal(ACCESS, id, t.accessToken),
        // A refresh token the IdP rotated replaces the old one; otherwise the old one stays good.
        refresh_token_enc: t.refreshToken ? seal(REFRESH, id, t.refreshToken) : row.refresh_token_enc,
        access_token_expires_at: expiryOf(done, t.expiresIn),
        scopes: t.scopes ? JSON.stringify(t.scopes) : row.scopes,
        failures: 0, next_attempt_at: null, last_error: null, last_refreshed_at: doneIso, updated_at: doneIso,
      }, true);
      if (!written) deps.logger.info(log, 'IdP tokens changed during their refresh (a new login or an erasure); the refreshed ones are dropped');
      else deps.logger.info({ ...log, rotated: t.refreshToken !== null }, 'IdP tokens refreshed');
      return { outcome: written ? 'refreshed' : 'skipped', row: await findIdpTokens(db, id) };
    }
    if (outcome.kind === 'refused') {
      // The IdP says the grant is gone: keep nothing; the app asks the user to sign in again.
      const error = outcome.description ? `${outcome.error}: ${outcome.description}` : outcome.error;
      const written = await db.transaction().execute(async (tx) => {
        const ok = await finishIdpRefresh(tx, row, holder, {
          status: 'refresh_failed', access_token_enc: null, refresh_token_enc: null, next_attempt_at: null, last_error: error, updated_at: doneIso,
        }, true);
        if (ok) {
          await deps.audit.record(tx, { ip: null, userAgent: null, requestId: null, principal: null }, {
            action: 'sso.idp_token_refresh_failed',
            organizationId: row.organization_id,
            target: { type: 'sso_identity', id },
            metadata: { userId: row.user_id, connectionId: row.connection_id, error: outcome.error, description: outcome.description },
          });
        }
        return ok;
      });
      if (written) deps.logger.warn({ ...log, error: outcome.error }, 'the IdP refused the refresh token; the identity is marked refresh_failed');
      return { outcome: written ? 'refused' : 'skipped', row: await findIdpTokens(db, id) };
    }
    const failures = row.failures + 1;
    await finishIdpRefresh(db, row, holder, {
      failures, next_attempt_at: new Date(done.getTime() + backoffAfter(failures)).toISOString(), last_error: outcome.detail.slice(0, 300), updated_at: doneIso,
    }, false);
    deps.logger.warn({ ...log, failures, err: outcome.detail }, 'IdP token refresh failed; nothing changed, it is retried later');
    return { outcome: 'failed', row: await findIdpTokens(db, id), detail: outcome.detail };
  }

  /**
   * One refresh per identity at a time in this process: a second caller joins the first.
   * `seenGeneration`: the generation of the row the caller found due; a row refreshed since is not refreshed again.
   */
  function refresh(id: string, seenGeneration?: number): Promise<RefreshResult> {
    const running = inflight.get(id);
    if (running) return running;
    const p = refreshRow(id, seenGeneration).finally(() => inflight.delete(id));
    inflight.set(id, p);
    return p;
  }

  return {
    refresh,
    holder,

    /**
     * Keep the tokens of a login (in its transaction), replacing the identity's previous ones. A
     * login that brings no refresh token (Google gives one only at the first consent) keeps the
     * stored one, unless that was revoked or refused.
     */
    async storeAtLogin(tx: Executor, login: { identityId: string; connection: Connection; userId: string; tokens: GrantedTokens; requestedScopes: string[] }): Promise<void> {
      const { identityId: id, tokens } = login;
      if (!tokens.accessToken) return;
      // The connection as it is now, in this transaction: a save during the login (replaced,
      // storing turned off, another client) erased tokens the login must not bring back.
      const current = await keepingConnection(tx, login.connection.id);
      if (!current || current.configVersion !== login.connection.configVersion) {
        deps.logger.info({ identityId: id, connectionId: login.connection.id }, 'the connection changed during the login; its IdP tokens are not kept');
        return;
      }
      const now = clock.now();
      const nowIso = now.toISOString();
      const previous = await findIdpTokens(tx, id);
      const keptRefresh = previous?.status === 'valid' && previous.connection_id === login.connection.id ? previous.refresh_token_enc : null;
      await upsertIdpTokens(tx, {
        id,
        organization_id: login.connection.organizationId,
        connection_id: login.connection.id,
        user_id: login.userId,
        status: 'valid',
        access_token_enc: seal(ACCESS, id, tokens.accessToken),
        refresh_token_enc: tokens.refreshToken ? seal(REFRESH, id, tokens.refreshToken) : keptRefresh,
        access_token_expires_at: expiryOf(now, tokens.expiresIn),
        scopes: JSON.stringify(tokens.scopes ?? login.requestedScopes),
        generation: 1,
        // A refresh in flight with the kept refresh token keeps its hold (one request per token at a time).
        lease_holder: keptRefresh && !tokens.refreshToken ? previous!.lease_holder : null,
        lease_until: keptRefresh && !tokens.refreshToken ? previous!.lease_until : null,
        failures: 0, next_attempt_at: null, last_error: null,
        obtained_at: nowIso, last_refreshed_at: null, updated_at: nowIso,
      });
    },

    /** Universal Logout of a user: erase the tokens (in one organization, or everywhere), keeping `revoked` on the identities. */
    revokeForUser(tx: Executor, userId: string, organizationId: string | null): Promise<number> {
      return revokeIdpTokensOfUser(tx, userId, organizationId, clock.now().toISOString());
    },

    /**
     * The app's backend asks for a user's IdP access token (owner/admin; an API key needs
     * `sso:idp-tokens`, checked by the middleware and again here). Refreshed first when it expires within a
     * minute; audited without the token.
     */
    async getForApp(ctx: Ctx, organizationId: string, identityId: string): Promise<{ accessToken: string; expiresAt: string | null; scopes: string[] }> {
      // The middleware asks API keys for the scope by path; checked here again, whatever path led here.
      const p = ctx.principal;
      if (p?.kind === 'api_key' && !(p.scopes ?? []).includes('sso:idp-tokens')) {
        throw new AppError('FORBIDDEN', 'This API key lacks the scope sso:idp-tokens', { requiredScope: 'sso:idp-tokens' });
      }
      await deps.organizations.requireAccess(ctx, organizationId, 'sso_idp_tokens:read');
      const identity = await findIdentityInOrganization(db, organizationId, identityId);
      if (!identity) throw notFound('SSO identity');
      let row = await findIdpTokens(db, identityId);
      if (!row || row.organization_id !== organizationId || !(await keepingConnection(db, row.connection_id))) {
        throw unavailable('none', 'No IdP tokens are stored for this identity: turn on storeIdpTokens for the SSO connection, then the user signs in again');
      }
      let refreshed = false;
      const needsRefresh = (r: IdpTokenRow) => r.access_token_expires_at !== null && Date.parse(r.access_token_expires_at) - clock.now().getTime() < refreshMarginOf(r);
      if (row.status === 'valid' && needsRefresh(row) && row.refresh_token_enc) {
        const result = await refresh(identityId, row.generation);
        refreshed = result.outcome === 'refreshed' || result.outcome === 'waited';
        if (!result.row) throw unavailable('none', 'The IdP tokens of this identity were erased meanwhile');
        row = result.row;
        if (result.outcome === 'failed' && statusOf(row, clock.now()) === 'expired') {
          throw new AppError('IDP_UNAVAILABLE', `The access token has expired and the IdP could not refresh it now (${result.detail ?? 'no answer'}); try again later`);
        }
      }
      const status = statusOf(row, clock.now());
      if (status === 'refresh_failed') throw unavailable(status, 'The IdP refused to refresh this identity\'s tokens (revoked, expired or the user lost access): the user must sign in with SSO again');
      if (status === 'revoked') throw unavailable(status, 'The IdP tokens of this identity were erased by a Universal Logout: the user must sign in with SSO again');
      if (status === 'expired' || !row.access_token_enc) throw unavailable('expired', 'The access token has expired and there is no refresh token: the user must sign in with SSO again');
      const scopes = JSON.parse(row.scopes) as string[];
      const accessToken = unseal(ACCESS, row.id, row.access_token_enc);
      await deps.audit.record(db, ctx, {
        action: 'sso.idp_token_read',
        organizationId,
        target: { type: 'sso_identity', id: identityId },
        metadata: { userId: row.user_id, connectionId: row.connection_id, refreshed, expiresAt: row.access_token_expires_at, scopes },
      });
      return { accessToken, expiresAt: row.access_token_expires_at, scopes };
    },
  };
}

export type IdpTokenVault = ReturnType<typeof createIdpTokenVault>;
