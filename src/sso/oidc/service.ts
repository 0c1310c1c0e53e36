import type { Clock } from '../../clock.js';
import type { Config } from '../../config.js';
import type { RequestMeta } from '../../context.js';
import type { Db } from '../../db/database.js';
import { isDatabaseUnavailable } from '../../db/faults.js';
import type { Logger } from '../../logger.js';
import type { OrganizationRow } from '../../db/schema.js';
import { sha256 } from '../../crypto/tokens.js';
import { checkReturnTo } from '../../http/return-to.js';
import { findOrganization } from '../../organizations/store.js';
import type { OutboundFetch } from '../outbound.js';
import { isTemplatedIssuer, parseConnection, redirectUriModeOf, sameIssuer, type Connection } from '../connections/model.js';
import type { ConnectionService } from '../connections/service.js';
import { findActiveConnectionBySlug, findConnectionWithOrganization, type ConnectionWithOrganization } from '../connections/store.js';
import { SsoLoginError } from '../errors.js';
import { FLOW_TTL_MS, FlowError, type FlowRow, type FlowService } from '../flows.js';
import type { SsoProfile } from '../provisioning.js';
import type { SsoCompletion, SsoLoginResult } from '../completion.js';
import {
  checkBrowserBinding, checkCallbackPath, checkCodePresent, checkConnectionCurrent, checkFlowProtocol, checkIdpError,
  checkIssParameter, checkIssRequired, checkStatePresent, type ArrivedAt, type CallbackQuery,
} from './callback-checks.js';
import { verifyIdToken } from './id-token.js';
import { MetadataError, type OidcMetadata } from './metadata.js';
import { pushAuthorizationRequest, shouldPush } from './par.js';
import { exchangeCode, fetchUserInfo } from './token.js';
import { oidcRedirectUri } from './urls.js';
import { offlineAccessParams } from '../idp-tokens/offline-access.js';

export type { CallbackQuery } from './callback-checks.js';

/** Claims kept on the identity: the profile, never token material. */
const NOT_CACHED = new Set(['nonce', 'at_hash', 'c_hash', 'auth_time', 'exp', 'iat', 'nbf', 'jti', 'sid', 'uti', 'rh']);

export function profileFromClaims(connection: Connection, claims: Record<string, unknown>): SsoProfile {
  const ev = claims.email_verified;
  let emailVerified: boolean | null = ev === true || ev === 'true' ? true : ev === false || ev === 'false' ? false : null;
  emailVerified = entraEmailVerified(connection, claims, emailVerified);
  const email = typeof claims.email === 'string' ? claims.email : null;
  const given = typeof claims.given_name === 'string' ? claims.given_name : '';
  const family = typeof claims.family_name === 'string' ? claims.family_name : '';
  const name = typeof claims.name === 'string' && claims.name ? claims.name : `${given} ${family}`.trim() || null;
  const cached = Object.fromEntries(Object.entries(claims).filter(([k]) => !NOT_CACHED.has(k)));
  return { subject: String(claims.sub), email, emailVerified, name, claims: cached };
}

/**
 * SPEC §12: an Entra ID email counts as verified for linking only when the token says
 * `xms_edov: true` (the tenant verified the email's domain) or the issuer is a single tenant's.
 * On a multi-tenant (templated) issuer anyone can create a tenant and give a user any email, so
 * without `xms_edov: true` the email is unverified whatever `email_verified` says. `xms_edov: false`
 * is honoured everywhere. A templated issuer is Entra's by construction, whatever `provider` says.
 */
export function entraEmailVerified(connection: Connection, claims: Record<string, unknown>, emailVerified: boolean | null): boolean | null {
  const edov = claims.xms_edov === true || claims.xms_edov === 'true' ? true : claims.xms_edov === false || claims.xms_edov === 'false' ? false : null;
  if (isTemplatedIssuer(connection.issuer)) return edov === true ? emailVerified : false;
  if (connection.provider === 'azure' && edov === false) return false;
  return emailVerified;
}

export function createOidcLogin(deps: {
  db: Db;
  clock: Clock;
  logger: Logger;
  config: Pick<Config, 'baseUrl' | 'trustedOrigins' | 'oidcRedirectMode' | 'oidcSharedRedirect'>;
  outbound: OutboundFetch;
  oidcMetadata: OidcMetadata;
  connections: ConnectionService;
  flows: FlowService;
  completion: SsoCompletion;
}) {
  const { db } = deps;
  const modeOf = (connection: Connection) => redirectUriModeOf(connection.oidc!, deps.config);
  /** The one redirect URI of a connection (SPEC §12): sent in the authorization request and again in the token request. */
  const redirectUri = (connection: Connection) => oidcRedirectUri(deps.config.baseUrl, modeOf(connection), connection.organizationId);

  /** `read`: the caller's own read of the same slug's active connection (see connections.activeForSlug). */
  async function activeOidcConnection(slug: string, read?: ConnectionWithOrganization): Promise<{ org: OrganizationRow; connection: Connection }> {
    const found = read ?? (await findActiveConnectionBySlug(db, slug));
    if (!found) throw new SsoLoginError('sso_not_configured', `No SSO is configured for "${slug}"`);
    const org = found.organization;
    const connection = parseConnection(found.connection);
    if (!connection.enabled) throw new SsoLoginError('connection_disabled', `SSO for ${org.name} is disabled by its administrator`);
    if (connection.protocol !== 'oidc' || !connection.oidc) throw new SsoLoginError('sso_not_configured', `SSO for ${org.name} does not use OIDC`);
    return { org, connection };
  }

  async function discover(connection: Connection) {
    try {
      return await deps.oidcMetadata.discover(connection.oidc!.issuerUrl);
    } catch (e) {
      if (e instanceof MetadataError) throw new SsoLoginError(e.check === 'issuer' ? 'discovery_issuer_mismatch' : 'discovery_failed', e.message, { cause: e });
      throw e;
    }
  }

  /**
   * Create the flow and the authorization URL (code flow, PKCE S256, state, nonce), with the
   * redirect URI of the connection's mode; pushed to the IdP first (RFC 9126) when par.ts says so.
   */
  async function begin(org: OrganizationRow, connection: Connection, returnTo: string, loginHint: string | null, browserBinding: string) {
    const discovery = await discover(connection);
    const { handle, codeVerifier, nonce } = await deps.flows.start(connection, { returnTo, loginHint, browserBinding });
    const params: Record<string, string> = {
      response_type: 'code',
      client_id: connection.oidc!.clientId,
      redirect_uri: redirectUri(connection),
      scope: connection.oidc!.scopes.join(' '),
      // SPEC §9: asking for offline access when the connection keeps the IdP's tokens.
      ...(connection.storeIdpTokens ? offlineAccessParams(connection.provider, connection.oidc!.scopes) : {}),
      state: handle,
      nonce,
      code_challenge: sha256Base64Url(codeVerifier),
      code_challenge_method: 'S256',
    };
    if (loginHint) params.login_hint = loginHint;
    if (shouldPush(discovery, modeOf(connection))) {
      const client = { clientId: connection.oidc!.clientId, clientSecret: deps.connections.clientSecret(connection) };
      return { url: await pushAuthorizationRequest(deps.outbound, discovery, client, params), organizationId: org.id };
    }
    const url = new URL(discovery.authorization_endpoint);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return { url: url.toString(), organizationId: org.id };
  }

  return {
    /** `browserBinding` is the random value of the browser's SSO cookie; the callback must present it again. */
    async startLogin(slug: string, input: { returnTo?: string | undefined; loginHint?: string | undefined }, browserBinding: string, read?: ConnectionWithOrganization) {
      const returnTo = checkReturnTo(input.returnTo, deps.config.trustedOrigins);
      const { org, connection } = await activeOidcConnection(slug, read);
      return begin(org, connection, returnTo, input.loginHint?.slice(0, 320) || null, browserBinding);
    },

    /** Login initiated by the IdP (OIDC Core §4): `iss` must be this connection's issuer, the target trusted. */
    async initiate(slug: string, input: { iss?: string | undefined; targetLinkUri?: string | undefined; loginHint?: string | undefined }, browserBinding: string) {
      const { org, connection } = await activeOidcConnection(slug);
      if (!input.iss || !(sameIssuer(input.iss, connection.issuer) || sameIssuer(input.iss, connection.oidc!.issuerUrl))) {
        throw new SsoLoginError('issuer_mismatch', `The login was initiated by "${input.iss ?? '(no iss)'}", which is not this organization's IdP`);
      }
      let returnTo: string;
      try {
        returnTo = checkReturnTo(input.targetLinkUri, deps.config.trustedOrigins, 'target_link_uri');
      } catch {
        throw new SsoLoginError('untrusted_target', 'target_link_uri is not a trusted destination');
      }
      return begin(org, connection, returnTo, input.loginHint?.slice(0, 320) || null, browserBinding);
    },

    /**
     * A redirect URI (`arrived`: the shared one, or an organization's dedicated one): the checks
     * of callback-checks.ts in order, then the token request, the ID token, provisioning, the session.
     */
    async callback(query: CallbackQuery, arrived: ArrivedAt, browserBinding: string | undefined, meta: RequestMeta): Promise<SsoLoginResult> {
      let organizationId: string | null = null;
      let misdelivered = false;
      // Consumed first, atomically, so a second callback with this state (a double click, another
      // instance) is refused before its code reaches the IdP; given back on a server-side failure.
      let flow: FlowRow | undefined;
      try {
        const state = checkStatePresent(query);
        try {
          flow = await deps.flows.consume(state);
        } catch (e) {
          if (e instanceof FlowError) throw new SsoLoginError(e.reason, e.message);
          throw e;
        }
        organizationId = flow.organization_id;
        checkFlowProtocol(flow);
        checkBrowserBinding(flow, browserBinding);
        // The organization comes along; deleting one deletes its connections (and flows) too.
        const found = await findConnectionWithOrganization(db, flow.connection_id);
        const connection = found ? parseConnection(found.connection) : null;
        checkConnectionCurrent(flow, connection);
        const org = found!.organization; // found: checkConnectionCurrent passed
        misdelivered = arrived.organizationId !== null && arrived.organizationId !== flow.organization_id;
        checkCallbackPath(flow, modeOf(connection), arrived);
        checkIssParameter(query, connection);
        checkIdpError(query);
        const code = checkCodePresent(query);
        const discovery = await discover(connection);
        checkIssRequired(query, discovery);
        const tokens = await exchangeCode(deps.outbound, discovery, { clientId: connection.oidc!.clientId, clientSecret: deps.connections.clientSecret(connection) }, { code, redirectUri: redirectUri(connection), codeVerifier: flow.code_verifier! });
        const claims = await verifyIdToken(tokens.idToken, {
          issuer: connection.issuer,
          allowedTenants: connection.oidc!.allowedTenants ?? null,
          clientId: connection.oidc!.clientId,
          nonce: flow.nonce!,
          now: deps.clock.now(),
          loadJwks: (refresh) => deps.oidcMetadata.jwks(discovery.jwks_uri, { refresh }),
        });
        let merged: Record<string, unknown> = claims;
        if (discovery.userinfo_endpoint && tokens.accessToken) {
          const info = await fetchUserInfo(deps.outbound, discovery.userinfo_endpoint, tokens.accessToken, claims.sub);
          merged = { ...info, ...claims }; // UserInfo fills gaps, never overrides the ID token (nor its sub)
        }
        const profile = profileFromClaims(connection, merged);
        // SPEC §8: the IdP session this login came from — `sid` for back-channel logout, the ID
        // token (sealed on the session) as id_token_hint when signing out of the IdP.
        const sid = typeof claims.sid === 'string' && claims.sid.length > 0 && claims.sid.length <= 255 ? claims.sid : null;
        const idpSession = { sessionId: sid, logoutHint: { protocol: 'oidc' as const, idToken: tokens.idToken } };
        const { idToken: _idToken, ...idpTokens } = tokens;
        return await deps.completion.signIn(meta, { connection, org, profile, returnTo: flow.return_to, idpSession, idpTokens });
      } catch (e) {
        if (flow && !(e instanceof SsoLoginError)) await giveBack(flow, e);
        await deps.completion.recordFailure(meta, 'oidc', e, { organizationId });
        // A mix-up shows in the log of the organization whose redirect URI received the answer (its
        // IdP issued the code), not only in that of the flow's organization (the attacker's).
        if (misdelivered && arrived.organizationId && (await findOrganization(db, arrived.organizationId))) {
          await deps.completion.recordFailure(meta, 'oidc', e, { organizationId: arrived.organizationId });
        }
        throw e;
      }
    },
  };

  /**
   * SPEC §12: only a protocol refusal or a success spends the flow. After a server-side failure
   * the reload may try again (it succeeds when the failure came before the code exchange; the
   * IdP refuses a code used twice). With the database away the release fails too (and that
   * failure must not hide the first one): it is then retried in the background until the
   * database is back or the flow expires, so the reload after the outage is not refused as
   * `replayed` (found by test/fault/instances-faults.test.ts).
   */
  async function giveBack(flow: FlowRow, cause: unknown) {
    try {
      await deps.flows.release(flow);
    } catch (err) {
      deps.logger.warn({ err, cause, flowId: flow.id }, 'could not release the SSO flow after a server-side failure; retrying while the database is away');
      if (isDatabaseUnavailable(err)) retryRelease(flow);
    }
  }

  function retryRelease(flow: FlowRow, delayMs = 100) {
    const until = Date.now() + FLOW_TTL_MS;
    const attempt = (delay: number) => {
      setTimeout(() => {
        if (Date.now() > until || flow.expires_at <= deps.clock.now().toISOString()) return;
        deps.flows.release(flow).then(
          () => {},
          (err: unknown) => {
            if (isDatabaseUnavailable(err)) attempt(Math.min(delay * 2, 200));
          },
        );
      }, delay).unref();
    };
    attempt(delayMs);
  }
}

function sha256Base64Url(value: string): string {
  return Buffer.from(sha256(value), 'hex').toString('base64url');
}

export type OidcLogin = ReturnType<typeof createOidcLogin>;
