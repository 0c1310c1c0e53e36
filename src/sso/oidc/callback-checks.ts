/**
 * The OIDC callback's checks (SPEC §4.4, §12), one small function each, run in this order by
 * oidc/service.ts. Steps 1–9 use nothing but the request and the database: a callback that fails
 * one of them is refused before any request leaves Gatehouse (no discovery, no token request).
 *
 *  1. checkStatePresent      state_invalid       the IdP sent a state
 *     (the flow is found by the state's hash and consumed once: state_invalid / replayed / flow_expired)
 *  2. checkFlowProtocol      state_invalid       the flow is an OIDC one
 *  3. checkBrowserBinding    browser_mismatch    the browser that started the flow brings it back
 *  4. checkConnectionCurrent config_changed      the connection is the one, at the config version, the flow started with
 *                            connection_disabled
 *  5. checkCallbackPath      state_invalid       mix-up: the answer arrived on the redirect URI the flow sent
 *                                                (a dedicated flow only on its own organization's path, a shared one only on the shared path)
 *  6. checkIssParameter      issuer_mismatch     mix-up: an RFC 9207 `iss`, when present, is the flow's issuer
 *  7. checkIdpError          idp_error           the IdP did not answer with an error
 *  8. checkCodePresent       code_missing        the IdP sent a code
 *     (discovery, from the cache or the flow's own IdP)
 *  9. checkIssRequired       iss_missing         mix-up: an IdP that announces RFC 9207 must send `iss`
 *     (then the token request, the ID token checks of id-token.ts, UserInfo)
 */
import type { OidcRedirectMode } from '../../config.js';
import { safeEqual, sha256 } from '../../crypto/tokens.js';
import type { Connection } from '../connections/model.js';
import { SsoLoginError } from '../errors.js';
import type { FlowRow } from '../flows.js';
import { acceptedIssuers } from './id-token.js';
import type { Discovery } from './metadata.js';

export interface CallbackQuery {
  code?: string | undefined;
  state?: string | undefined;
  error?: string | undefined;
  error_description?: string | undefined;
  /** RFC 9207 authorization response issuer identifier. */
  iss?: string | undefined;
}

/** Which redirect URI the answer arrived on: the shared one (null) or an organization's dedicated one. */
export interface ArrivedAt {
  organizationId: string | null;
}

export function checkStatePresent(query: CallbackQuery): string {
  if (!query.state) throw new SsoLoginError('state_invalid', 'The IdP sent no state: start the sign-in from Gatehouse');
  return query.state;
}

export function checkFlowProtocol(flow: FlowRow): void {
  if (flow.protocol !== 'oidc') throw new SsoLoginError('state_invalid', 'This state does not belong to an OIDC sign-in');
}

export function checkBrowserBinding(flow: FlowRow, browserBinding: string | undefined): void {
  if (!flow.browser_binding_hash || !browserBinding || !safeEqual(sha256(browserBinding), flow.browser_binding_hash)) {
    throw new SsoLoginError('browser_mismatch', 'This sign-in was started in another browser (or its cookie was lost). Start the sign-in again from this browser.');
  }
}

export function checkConnectionCurrent(flow: FlowRow, connection: Connection | null): asserts connection is Connection {
  if (!connection || connection.status !== 'active' || connection.configVersion !== flow.config_version || !connection.oidc) {
    throw new SsoLoginError('config_changed', 'The SSO configuration changed while this sign-in was in progress. Start the sign-in again.');
  }
  if (!connection.enabled) throw new SsoLoginError('connection_disabled', 'SSO for this organization is disabled by its administrator');
}

/**
 * Mix-up defence 1 (distinct redirect URIs, RFC 9700 §4.4.2): the flow sent one redirect URI, and
 * only an answer on that URI belongs to it. Corp's IdP redirects only to Corp's registered URI, so
 * Corp's code arriving with the state of Evil's flow lands on Corp's path, not Evil's: refused.
 */
export function checkCallbackPath(flow: FlowRow, mode: OidcRedirectMode, arrived: ArrivedAt): void {
  const fits = mode === 'dedicated' ? arrived.organizationId === flow.organization_id : arrived.organizationId === null;
  if (!fits) {
    throw new SsoLoginError(
      'state_invalid',
      mode === 'dedicated'
        ? "This answer arrived on another redirect URI than the one of the sign-in it names (possible mix-up attack). The IdP application's redirect URI must be exactly the one Gatehouse's SSO settings show."
        : "This answer arrived on an organization's dedicated redirect URI, but the sign-in it names uses the shared one (possible mix-up attack).",
    );
  }
}

/**
 * Mix-up defence 2 (RFC 9207): an authorization response that names its issuer must name the
 * issuer of the flow. Corp's IdP puts `iss=Corp` on Corp's code; in Evil's flow that is refused.
 */
export function checkIssParameter(query: CallbackQuery, connection: Connection): void {
  if (query.iss === undefined) return;
  const accepted = acceptedIssuers(connection.issuer, connection.oidc?.allowedTenants ?? null);
  if (!accepted(query.iss)) {
    throw new SsoLoginError('issuer_mismatch', `The answer says it comes from "${query.iss.slice(0, 200)}", not from this sign-in's IdP "${connection.issuer}" (possible mix-up attack)`);
  }
}

export function checkIdpError(query: CallbackQuery): void {
  if (!query.error) return;
  const description = (query.error_description ?? '').replace(/[^\x20-\x7e]/g, '').slice(0, 200);
  throw new SsoLoginError('idp_error', `The IdP refused the sign-in: ${query.error.slice(0, 64)}${description ? ` (${description})` : ''}`);
}

export function checkCodePresent(query: CallbackQuery): string {
  if (!query.code) throw new SsoLoginError('code_missing', 'The IdP sent no authorization code');
  return query.code;
}

/** RFC 9207 §2.4: a client that knows the IdP sends `iss` must refuse an answer without it. */
export function checkIssRequired(query: CallbackQuery, discovery: Discovery): void {
  if (discovery.authorization_response_iss_parameter_supported === true && query.iss === undefined) {
    throw new SsoLoginError('iss_missing', 'The IdP announces that it names itself in every answer (RFC 9207 "iss"), but this answer does not (possible mix-up attack)');
  }
}
