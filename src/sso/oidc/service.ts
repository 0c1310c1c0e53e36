import type { Clock } from '../../clock.js';
import type { Config } from '../../config.js';
import type { RequestMeta } from '../../context.js';
import type { Db } from '../../db/database.js';
import type { Logger } from '../../logger.js';
import type { OrganizationRow } from '../../db/schema.js';
import { sha256, safeEqual } from '../../crypto/tokens.js';
import { checkReturnTo } from '../../http/return-to.js';
import { findOrganization, findOrganizationBySlug } from '../../organizations/store.js';
import type { OutboundFetch } from '../outbound.js';
import { parseConnection, sameIssuer, type Connection } from '../connections/model.js';
import type { ConnectionService } from '../connections/service.js';
import { findActiveConnection, findConnection } from '../connections/store.js';
import { SsoLoginError } from '../errors.js';
import { FlowError, type FlowRow, type FlowService } from '../flows.js';
import type { SsoProfile } from '../provisioning.js';
import type { SsoCompletion, SsoLoginResult } from '../completion.js';
import { verifyIdToken } from './id-token.js';
import { MetadataError, type OidcMetadata } from './metadata.js';
import { exchangeCode, fetchUserInfo } from './token.js';

export interface CallbackQuery {
  code?: string | undefined;
  state?: string | undefined;
  error?: string | undefined;
  error_description?: string | undefined;
}

/** Claims kept on the identity: the profile, never token material. */
const NOT_CACHED = new Set(['nonce', 'at_hash', 'c_hash', 'auth_time', 'exp', 'iat', 'nbf', 'jti', 'sid', 'uti', 'rh']);

export function profileFromClaims(connection: Connection, claims: Record<string, unknown>): SsoProfile {
  const ev = claims.email_verified;
  let emailVerified: boolean | null = ev === true || ev === 'true' ? true : ev === false || ev === 'false' ? false : null;
  // Entra ID: xms_edov=false says the email's domain is not verified by the tenant.
  if (connection.provider === 'azure' && (claims.xms_edov === false || claims.xms_edov === 'false')) emailVerified = false;
  const email = typeof claims.email === 'string' ? claims.email : null;
  const given = typeof claims.given_name === 'string' ? claims.given_name : '';
  const family = typeof claims.family_name === 'string' ? claims.family_name : '';
  const name = typeof claims.name === 'string' && claims.name ? claims.name : `${given} ${family}`.trim() || null;
  const cached = Object.fromEntries(Object.entries(claims).filter(([k]) => !NOT_CACHED.has(k)));
  return { subject: String(claims.sub), email, emailVerified, name, claims: cached };
}

export function createOidcLogin(deps: {
  db: Db;
  clock: Clock;
  logger: Logger;
  config: Pick<Config, 'baseUrl' | 'trustedOrigins'>;
  outbound: OutboundFetch;
  oidcMetadata: OidcMetadata;
  connections: ConnectionService;
  flows: FlowService;
  completion: SsoCompletion;
}) {
  const { db } = deps;
  const redirectUri = () => `${deps.config.baseUrl}/api/auth/sso/callback`;

  async function activeOidcConnection(slug: string): Promise<{ org: OrganizationRow; connection: Connection }> {
    const org = await findOrganizationBySlug(db, slug);
    const row = org ? await findActiveConnection(db, org.id) : undefined;
    if (!org || !row) throw new SsoLoginError('sso_not_configured', `No SSO is configured for "${slug}"`);
    const connection = parseConnection(row);
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

  /** Create the flow and the authorization URL (code flow, PKCE S256, state, nonce). */
  async function begin(org: OrganizationRow, connection: Connection, returnTo: string, loginHint: string | null, browserBinding: string) {
    const discovery = await discover(connection);
    const { handle, codeVerifier, nonce } = await deps.flows.start(connection, { returnTo, loginHint, browserBinding });
    const url = new URL(discovery.authorization_endpoint);
    const params: Record<string, string> = {
      response_type: 'code',
      client_id: connection.oidc!.clientId,
      redirect_uri: redirectUri(),
      scope: connection.oidc!.scopes.join(' '),
      state: handle,
      nonce,
      code_challenge: sha256Base64Url(codeVerifier),
      code_challenge_method: 'S256',
    };
    if (loginHint) params.login_hint = loginHint;
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return { url: url.toString(), organizationId: org.id };
  }

  return {
    /** `browserBinding` is the random value of the browser's SSO cookie; the callback must present it again. */
    async startLogin(slug: string, input: { returnTo?: string | undefined; loginHint?: string | undefined }, browserBinding: string) {
      const returnTo = checkReturnTo(input.returnTo, deps.config.trustedOrigins);
      const { org, connection } = await activeOidcConnection(slug);
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

    /** The shared redirect URI: every check in order, then provisioning and the session. */
    async callback(query: CallbackQuery, browserBinding: string | undefined, meta: RequestMeta): Promise<SsoLoginResult> {
      let organizationId: string | null = null;
      // Consumed first, atomically, so a second callback with this state (a double click, another
      // instance) is refused before its code reaches the IdP; given back on a server-side failure.
      let flow: FlowRow | undefined;
      try {
        if (!query.state) throw new SsoLoginError('state_invalid', 'The IdP sent no state: start the sign-in from Gatehouse');
        try {
          flow = await deps.flows.consume(query.state);
        } catch (e) {
          if (e instanceof FlowError) throw new SsoLoginError(e.reason, e.message);
          throw e;
        }
        organizationId = flow.organization_id;
        if (flow.protocol !== 'oidc') throw new SsoLoginError('state_invalid', 'This state does not belong to an OIDC sign-in');
        if (!flow.browser_binding_hash || !browserBinding || !safeEqual(sha256(browserBinding), flow.browser_binding_hash)) {
          throw new SsoLoginError('browser_mismatch', 'This sign-in was started in another browser (or its cookie was lost). Start the sign-in again from this browser.');
        }
        if (query.error) {
          const description = (query.error_description ?? '').replace(/[^\x20-\x7e]/g, '').slice(0, 200);
          throw new SsoLoginError('idp_error', `The IdP refused the sign-in: ${query.error.slice(0, 64)}${description ? ` (${description})` : ''}`);
        }
        if (!query.code) throw new SsoLoginError('code_missing', 'The IdP sent no authorization code');
        const row = await findConnection(db, flow.connection_id);
        const connection = row ? parseConnection(row) : null;
        if (!connection || connection.status !== 'active' || connection.configVersion !== flow.config_version) {
          throw new SsoLoginError('config_changed', 'The SSO configuration changed while this sign-in was in progress. Start the sign-in again.');
        }
        if (!connection.enabled) throw new SsoLoginError('connection_disabled', 'SSO for this organization is disabled by its administrator');
        const discovery = await discover(connection);
        const tokens = await exchangeCode(deps.outbound, discovery, { clientId: connection.oidc!.clientId, clientSecret: deps.connections.clientSecret(connection) }, { code: query.code, redirectUri: redirectUri(), codeVerifier: flow.code_verifier! });
        const claims = await verifyIdToken(tokens.idToken, {
          issuer: connection.issuer,
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
        const org = await findOrgById(flow.organization_id);
        return await deps.completion.signIn(meta, { connection, org, profile, returnTo: flow.return_to });
      } catch (e) {
        if (flow && !(e instanceof SsoLoginError)) await giveBack(flow, e);
        await deps.completion.recordFailure(meta, 'oidc', e, { organizationId });
        throw e;
      }
    },
  };

  /**
   * SPEC §12: only a protocol refusal or a success spends the flow. After a server-side failure
   * the reload may try again (it succeeds when the failure came before the code exchange; the
   * IdP refuses a code used twice). Best effort: with the database away the release fails too,
   * and that failure must not hide the first one.
   */
  async function giveBack(flow: FlowRow, cause: unknown) {
    try {
      await deps.flows.release(flow);
    } catch (err) {
      deps.logger.warn({ err, cause, flowId: flow.id }, 'could not release the SSO flow after a server-side failure; it stays consumed');
    }
  }

  async function findOrgById(id: string): Promise<OrganizationRow> {
    const org = await findOrganization(db, id);
    if (!org) throw new SsoLoginError('state_invalid', 'The organization of this sign-in no longer exists');
    return org;
  }
}

function sha256Base64Url(value: string): string {
  return Buffer.from(sha256(value), 'hex').toString('base64url');
}

export type OidcLogin = ReturnType<typeof createOidcLogin>;
