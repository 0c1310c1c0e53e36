import type { OidcRedirectMode } from '../../config.js';

/**
 * The OIDC URLs of an organization (SPEC §4.3, §4.4, §12), all built here from the base URL.
 *
 * Redirect URIs: `dedicated` (the default) gives every organization its own,
 * `{base}/api/auth/sso/callback/{organizationId}`, so an IdP can only ever send a code to the
 * organization whose application registered that URI (RFC 9700 §4.4.2, distinct redirect URIs);
 * `shared` is the one `{base}/api/auth/sso/callback` of every organization.
 */
export const OIDC_SHARED_CALLBACK_PATH = '/api/auth/sso/callback';
/** Hono route pattern of the dedicated callback. */
export const OIDC_DEDICATED_CALLBACK_ROUTE = `${OIDC_SHARED_CALLBACK_PATH}/:organizationId`;

export const oidcDedicatedCallbackPath = (organizationId: string) => `${OIDC_SHARED_CALLBACK_PATH}/${organizationId}`;

/** The redirect URI of a connection in the given mode: what the admin pastes into the IdP, and what every request sends. */
export function oidcRedirectUri(baseUrl: string, mode: OidcRedirectMode, organizationId: string): string {
  return `${baseUrl}${mode === 'dedicated' ? oidcDedicatedCallbackPath(organizationId) : OIDC_SHARED_CALLBACK_PATH}`;
}

export function oidcLoginUrls(baseUrl: string, slug: string) {
  return {
    loginUrl: `${baseUrl}/api/auth/sso/${slug}/login`,
    initiateLoginUri: `${baseUrl}/api/auth/sso/${slug}/initiate`,
  };
}
