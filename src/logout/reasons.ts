/**
 * Why a session ended (SPEC §8 "Propagation": the audit log says why). Every `session.revoked`
 * event carries one of these as `metadata.reason`; the README lists them from this registry.
 * Shipped words stay; no synonyms.
 */
export const SESSION_END_REASONS = {
  sign_out: 'the user signed out (POST /api/auth/sign-out)',
  revoked: 'the user revoked the session from their list of sessions',
  password_reset: 'the password was reset through an emailed link: every session of the account ends',
  mfa_enrolled: 'a second factor was enrolled: the sessions opened before it end',
  unverified_account_claimed: 'the real owner proved an unverified address: what the unproven holder set up goes',
  superadmin_promoted: '`gatehouse admin create` promoted an existing account: its sessions end first',
  identity_unlinked: 'an admin unlinked the SSO identity the session came from',
  member_removed: 'the user left or was removed from the organization the session signed in to',
  session_token_reuse: 'a spent session refresh token was presented again (token theft)',
  oidc_refresh_token_reuse: "a spent OpenID Provider refresh token was presented again (token theft)",
  oidc_rp_logout: "an app signed the user out through the OpenID Provider's end_session_endpoint",
  universal_logout: 'Okta Universal Logout (Global Token Revocation) for the user',
  idp_backchannel_logout: "the IdP's OIDC back-channel logout token named the session",
  saml_single_logout: "the IdP's SAML LogoutRequest named the session (IdP-initiated Single Logout)",
} as const;

export type SessionEndReason = keyof typeof SESSION_END_REASONS;
