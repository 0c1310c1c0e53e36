import type { OidcRedirectMode } from '../../config.js';
import type { Discovery } from './metadata.js';

/**
 * What keeps this connection's authorization codes from being redeemed through another
 * organization's flow (OAuth mix-up, RFC 9700 §4.4; SPEC §12), as GET settings/sso reports it:
 *
 * - `dedicated`: the connection has its own redirect URI; the IdP sends its codes only there, and
 *   the callback refuses an answer whose path is not the flow's (callback-checks.ts, step 5).
 * - `iss`: shared redirect URI, and the IdP announces RFC 9207 — every answer names its issuer,
 *   and an answer that names another issuer than its flow's is refused (step 6).
 * - `par`: shared redirect URI, the IdP offers pushed authorization requests (RFC 9126) and
 *   Gatehouse pushes every request. This protects only when the IdP application *requires* PAR
 *   (then a request made up by another IdP is refused by this IdP); the test endpoint says
 *   whether discovery shows that requirement.
 * - `none`: shared redirect URI and neither: an IdP run by another organization's owner could
 *   have this IdP's codes sent to its own token endpoint. The test endpoint warns.
 */
export const MIX_UP_PROTECTIONS = ['dedicated', 'iss', 'par', 'none'] as const;
export type MixUpProtection = (typeof MIX_UP_PROTECTIONS)[number];

/** `discovery` null: the IdP could not be asked; nothing the IdP would do is counted. */
export function mixUpProtection(mode: OidcRedirectMode, discovery: Discovery | null): MixUpProtection {
  if (mode === 'dedicated') return 'dedicated';
  if (discovery?.authorization_response_iss_parameter_supported === true) return 'iss';
  if (discovery?.pushed_authorization_request_endpoint) return 'par';
  return 'none';
}
