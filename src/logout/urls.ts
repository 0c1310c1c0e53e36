/** The logout endpoints' paths and URLs (SPEC §8), built here and nowhere else. */
export const UNIVERSAL_LOGOUT_PATH = '/api/auth/sso/universal-logout';
export const BACKCHANNEL_LOGOUT_PATH = '/api/auth/sso/backchannel-logout';
/** Where an IdP sends the browser back after signing it out (`post_logout_redirect_uri`, SAML LogoutResponse landing). */
export const SIGNED_OUT_PATH = '/signed-out';
/** Hono route pattern of the SAML Single Logout service. */
export const SAML_SLO_ROUTE = '/api/auth/sso/:slug/saml/slo';

export function logoutUrls(baseUrl: string) {
  return {
    universalLogoutUri: `${baseUrl}${UNIVERSAL_LOGOUT_PATH}`,
    backchannelLogoutUri: `${baseUrl}${BACKCHANNEL_LOGOUT_PATH}`,
    postLogoutRedirectUri: `${baseUrl}${SIGNED_OUT_PATH}`,
  };
}
