import type { RequestMeta } from '../context.js';
import type { Db, Executor } from '../db/database.js';
import type { OrganizationRow, SessionRow, SsoProtocol, UserRow } from '../db/schema.js';
import type { AuditService } from '../audit/service.js';
import type { SessionService } from '../sessions/service.js';
import type { IdpLogoutHint } from '../sessions/idp-session.js';
import type { RateLimits } from '../http/rate-limit.js';
import type { Connection } from './connections/model.js';
import { SsoLoginError } from './errors.js';
import type { Provisioning, SsoProfile } from './provisioning.js';
import type { GrantedTokens } from './oidc/token.js';
import type { IdpTokenVault } from './idp-tokens/vault.js';

export interface SsoLoginResult {
  token: string;
  session: SessionRow;
  user: UserRow;
  returnTo: string;
  organizationId: string;
}

/**
 * The end of every SSO login, whatever the protocol: once the protocol's checks passed,
 * provision (SPEC §4.5), create the SSO session and audit the success, in one transaction;
 * and the one way a failure is audited.
 */
export function createSsoCompletion(deps: { db: Db; provisioning: Provisioning; sessions: SessionService; audit: AuditService; rateLimits: RateLimits; idpTokens: Pick<IdpTokenVault, 'storeAtLogin'> }) {
  return {
    async signIn(
      meta: RequestMeta,
      login: {
        connection: Connection;
        org: OrganizationRow;
        profile: SsoProfile;
        returnTo: string;
        details?: Record<string, unknown>;
        /**
         * Spend the login's one-time values (SAML: the assertion ID and the pending request) in
         * this transaction, first: they are spent if and only if the login succeeds (SPEC §12),
         * and the conditional writes decide between two concurrent logins with the same values.
         */
        consume?: (tx: Executor) => Promise<void>;
        /** The IdP session the login came from (OIDC `sid` and ID token; SAML NameID and SessionIndex), kept on the session for logout. */
        idpSession?: { sessionId: string | null; logoutHint: IdpLogoutHint | null };
        /** OIDC: the IdP's tokens, kept for the app when the connection stores them (SPEC §9). */
        idpTokens?: GrantedTokens;
      },
    ): Promise<SsoLoginResult> {
      const { connection, org, profile } = login;
      return deps.db.transaction().execute(async (tx) => {
        if (login.consume) await login.consume(tx);
        const { user, identityId, outcome } = await deps.provisioning.provision(tx, { ...meta, principal: null }, connection, org, profile);
        if (connection.storeIdpTokens && login.idpTokens) {
          await deps.idpTokens.storeAtLogin(tx, { identityId, connection, userId: user.id, tokens: login.idpTokens, requestedScopes: connection.oidc?.scopes ?? [] });
        }
        const { token, session } = await deps.sessions.create(tx, user, {
          authMethod: 'sso',
          connectionId: connection.id,
          organizationId: org.id,
          mfaState: 'none',
          idp: { identityId, sessionId: login.idpSession?.sessionId ?? null, logoutHint: login.idpSession?.logoutHint ?? null },
        }, meta);
        await deps.audit.record(tx, { ...meta, principal: { kind: 'session', user, session } }, {
          action: 'sso.login_succeeded',
          organizationId: org.id,
          target: { type: 'sso_identity', id: identityId },
          metadata: { connectionId: connection.id, protocol: connection.protocol, outcome, subject: profile.subject, ...login.details },
        });
        return { token, session, user, returnTo: login.returnTo, organizationId: org.id };
      });
    },

    /**
     * Audit an SSO login failure (only SsoLoginError: anything else is a server error, logged as
     * such). Failures are counted per IP first: past the limit the caller answers 429 and nothing
     * more is written, so nobody can fill an organization's audit log with forged posts.
     */
    async recordFailure(meta: RequestMeta, protocol: SsoProtocol, e: unknown, where: { organizationId: string | null; connectionId?: string | null }): Promise<void> {
      if (!(e instanceof SsoLoginError)) return;
      await deps.rateLimits.consumeIp('sso-failure:ip', meta.ip);
      await deps.audit.record(deps.db, { ...meta, principal: null }, {
        action: 'sso.login_failed',
        organizationId: where.organizationId,
        metadata: { protocol, reason: e.reason, code: e.code, message: e.message, ...(where.connectionId ? { connectionId: where.connectionId } : {}) },
      });
    },
  };
}

export type SsoCompletion = ReturnType<typeof createSsoCompletion>;
