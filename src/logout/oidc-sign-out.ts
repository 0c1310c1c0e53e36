import type { Config } from '../config.js';
import { randomToken } from '../crypto/tokens.js';
import type { OidcMetadata } from '../sso/oidc/metadata.js';
import type { ProtocolSignOut } from './idp-sign-out.js';
import { logoutUrls } from './urls.js';

/**
 * SPEC §8 "Signing out of the IdP", OIDC: OpenID Connect RP-Initiated Logout 1.0 at the IdP's
 * `end_session_endpoint` (from discovery, through the metadata cache), with the session's own ID
 * token as `id_token_hint`, `post_logout_redirect_uri` = `{base}/signed-out` (to be registered at
 * the IdP), `client_id` and a fresh `state` (the signed-out page reads nothing from it). An IdP
 * that announces no end_session_endpoint cannot be signed out of: null, and the Gatehouse
 * session ends alone.
 */
export function createOidcSignOut(deps: { config: Pick<Config, 'baseUrl' | 'allowLoopbackIdps'>; oidcMetadata: OidcMetadata }): ProtocolSignOut<'oidc'> {
  return async ({ connection, hint }) => {
    if (!connection.oidc) return null;
    const discovery = await deps.oidcMetadata.discover(connection.oidc.issuerUrl);
    if (!discovery.end_session_endpoint) return null;
    let url: URL;
    try {
      url = new URL(discovery.end_session_endpoint);
    } catch {
      return null;
    }
    // The browser is sent there with the ID token in the URL: https only (http for local testing
    // with GATEHOUSE_ALLOW_LOOPBACK_IDPS), never a javascript:, data: or other scheme from discovery.
    if (url.protocol !== 'https:' && !(deps.config.allowLoopbackIdps && url.protocol === 'http:')) return null;
    url.searchParams.set('id_token_hint', hint.idToken);
    url.searchParams.set('post_logout_redirect_uri', logoutUrls(deps.config.baseUrl).postLogoutRedirectUri);
    url.searchParams.set('client_id', connection.oidc.clientId);
    url.searchParams.set('state', randomToken(16));
    return url.toString();
  };
}
