import type { OidcRedirectMode } from '../../config.js';
import { SsoLoginError } from '../errors.js';
import type { OutboundFetch } from '../outbound.js';
import type { Discovery } from './metadata.js';
import { postWithClientAuth, type ClientCredentials } from './token.js';

/**
 * Pushed authorization requests (RFC 9126). The authorization request goes from Gatehouse to
 * the IdP directly (client-authenticated, through the SSRF-guarded client), and the browser is
 * sent with only `client_id` and the `request_uri` the IdP handed back. An IdP application that
 * requires PAR then accepts no authorization request Gatehouse did not push itself — which is
 * what stops a mix-up IdP from bouncing a browser to it with a request of its own (SPEC §12).
 */

/** When Gatehouse pushes: in shared mode whenever the IdP offers PAR, and in any mode when it requires it. */
export function shouldPush(discovery: Discovery, mode: OidcRedirectMode): boolean {
  if (!discovery.pushed_authorization_request_endpoint) return false;
  return mode === 'shared' || discovery.require_pushed_authorization_requests === true;
}

/** Push `params` and return the authorization URL to send the browser to (RFC 9126 §4). */
export async function pushAuthorizationRequest(
  outbound: OutboundFetch,
  discovery: Discovery,
  client: ClientCredentials,
  params: Record<string, string>,
): Promise<string> {
  const endpoint = discovery.pushed_authorization_request_endpoint!;
  const result = await postWithClientAuth(outbound, discovery, endpoint, client, params, (detail, cause) =>
    new SsoLoginError('par_failed', `The IdP's pushed authorization request endpoint could not be reached: ${detail}`, { cause }));
  const requestUri = result.body.request_uri;
  if ((result.status !== 201 && result.status !== 200) || typeof requestUri !== 'string' || !requestUri || requestUri.length > 2048) {
    const error = result.error ?? `HTTP ${result.status}`;
    const hint = error === 'invalid_client' ? ' Check the client ID and client secret.' : error === 'invalid_redirect_uri' || error === 'invalid_request' ? ' Check that the redirect URI registered at the IdP is exactly the one GET settings/sso shows.' : '';
    throw new SsoLoginError('par_failed', `The IdP refused the pushed authorization request (${error}).${hint}`);
  }
  const url = new URL(discovery.authorization_endpoint);
  url.searchParams.set('client_id', client.clientId);
  url.searchParams.set('request_uri', requestUri);
  return url.toString();
}
