/**
 * Every audit action Gatehouse writes (SPEC §12 "Stable words are typed"), with what it records.
 * `AuditEntry.action` is typed by this registry, so a misspelt or undocumented word does not
 * compile; the README's table is compared with it by a test. Shipped words stay; no synonyms.
 */
export const AUDIT_ACTIONS = {
  // accounts and sign-in
  'user.signed_up': 'an account was created by sign-up (`metadata.method` absent for a password, `magic_link` for a first magic-link sign-in)',
  'user.created': 'SSO created an account just in time (`metadata.via: "sso"`)',
  'user.created_superadmin': 'the CLI created a platform superadmin',
  'user.promoted_superadmin': 'the CLI promoted an existing account to platform superadmin, after revoking its sessions and API keys (`sessionsRevoked`, `apiKeysRevoked`; `claimedUnverifiedAccount`)',
  'user.updated': 'the user changed their profile',
  'user.signed_in': 'a password or magic-link sign-in succeeded (`metadata.method`)',
  'user.sign_in_failed': 'a password sign-in failed (wrong password or unknown email)',
  'user.sign_in_refused': 'a sign-in was refused by a sign-in policy (`metadata.reason`; `rule`: the verified `domain` or a `membership`)',
  'user.magic_link_requested': 'a magic link was mailed',
  'user.password_reset_requested': 'a password-reset link was mailed',
  'user.password_reset': 'the password was reset through an emailed link (every session revoked)',
  'user.password_reset_refused': 'a password reset was refused by a sign-in policy',
  'user.email_verification_requested': 'an email-verification link was mailed',
  'user.email_verified': 'the email address was proven (verification link, magic link, reset or SSO link), with what the claim of an unverified account removed',
  'session.revoked': 'a session ended, one event per session (`metadata.reason`: the session end reasons below; `userId`)',
  // session tokens (SPEC §8, POST /api/auth/token)
  'session_token.issued': 'a session exchanged its cookie for an access and refresh token (`metadata.familyId`; `organizationId` when asked for one)',
  'session_token.reuse_detected': 'a spent refresh token was presented again: its family was revoked and its session ended (`familyId`, `revokedCount`, `sessionEnded`)',
  'session_token.revoked': 'a refresh token was revoked (POST /api/auth/token/revoke, or its user left the organization): its whole family (`familyId`, `reason`)',
  // API keys
  'api_key.created': 'an API key was created (name, prefix, scopes, pin; never the key)',
  'api_key.revoked': 'an API key was revoked',
  // MFA
  'mfa.enrollment_started': 'a TOTP enrolment began',
  'mfa.enrolled': 'a TOTP factor was confirmed',
  'mfa.enrollment_cancelled': 'an unconfirmed TOTP enrolment was removed',
  'mfa.disabled': 'the confirmed TOTP factor was removed',
  'mfa.verified': 'the second factor was verified (TOTP code or recovery code)',
  'mfa.verify_failed': 'a wrong TOTP or recovery code was entered',
  'mfa.recovery_code_used': 'a recovery code was spent',
  'mfa.recovery_codes_regenerated': 'a new set of recovery codes replaced the old one',
  // organizations, members, invitations, join requests
  'organization.created': 'an organization was created',
  'organization.updated': 'an organization was renamed or its slug changed (before and after)',
  'organization.deleted': 'an organization was deleted',
  'organization.security_updated': 'the sign-in policy changed (before, after, `direction`; `reason` when Gatehouse lowered it itself)',
  'member.added': 'a user joined an organization',
  'member.auto_joined': 'a user joined through auto-join at a verified domain',
  'member.role_changed': "a member's role changed",
  'member.removed': 'a member was removed (by an admin, or by the claim of an unverified account: `reason: "unverified_account_claimed"`, `lastOwner`)',
  'member.left': 'a member left the organization',
  'invitation.created': 'an invitation was sent',
  'invitation.accepted': 'an invitation was accepted',
  'invitation.revoked': 'an invitation was revoked',
  'join_request.created': 'auto-join with approval created a join request',
  'join_request.approved': 'a join request was approved',
  'join_request.rejected': 'a join request was rejected',
  // domains
  'setup_link.created': 'an owner or admin created a setup link (`scope`, `expiresAt`; never the token)',
  'setup_link.opened': 'a setup link was opened for the first time and bound to that browser (actor: the link)',
  'setup_link.revoked': 'a setup link was revoked (by an owner or admin; or by Gatehouse, `reason: "creator_lost_access"`, when its creator left, lost the role, or the API key it was made with ended)',
  'domain.added': 'a domain was claimed (pending)',
  'domain.verified': "the domain's DNS TXT record was found",
  'domain.verification_failed': 'a verification attempt failed (what DNS answered)',
  'domain.settings_updated': 'auto-join settings of a domain changed',
  'domain.removed': 'a domain was removed',
  // SSO
  'sso.connection_created': 'an SSO connection was created (or replaced another IdP)',
  'sso.connection_updated': 'the SSO connection was updated in place (config version bumped)',
  'sso.connection_deleted': 'the SSO connection was removed',
  'sso.login_succeeded': 'an SSO login succeeded (`metadata.outcome`: existing, linked or created)',
  'sso.login_failed': 'an SSO login failed (`metadata.reason`, one of the SSO failure reasons)',
  'sso.single_logout_failed': 'a SAML Single Logout message from the IdP was refused (`metadata.reason`, one of the SSO failure reasons; `metadata.message`: LogoutRequest or LogoutResponse)',
  'sso.identity_created': 'SSO created a user just in time with this identity',
  'sso.identity_linked': 'SSO linked an identity to an existing account',
  'sso.backchannel_logout': "the IdP's OIDC back-channel logout token was accepted and named something of this connection — a session or the identity (`connectionId`, `sessionsEnded`, `by`: `sid` or `sub`; `identityId` when `sub` named one); each session ended is its own `session.revoked`",
  'sso.identity_unlinked': 'an SSO identity was unlinked, and the SSO sessions it opened ended (`sessionsRevoked`)',
  'sso.universal_logout': 'the IdP ended a user\'s sessions by Okta Universal Logout (`connectionId`, `format`, `scope`: organization or all, `sessionsEnded`, `idpVaultRevoked`)',
  'sso.idp_token_read': "the app's backend (an owner/admin session or an API key with `sso:idp-tokens`) was given a user's IdP access token (`userId`, `connectionId`, `refreshed`, `expiresAt`, `scopes`; never the token)",
  'sso.idp_token_refresh_failed': 'the IdP refused to refresh an identity\'s stored tokens; they were erased and the identity shows `refresh_failed` (`userId`, `connectionId`, the IdP\'s `error` and `description`)',
  // OpenID Provider clients (platform-wide: no organization)
  'oauth_client.created': 'a platform superadmin (or the CLI) registered an OpenID Provider client (its settings; never the secret)',
  'oauth_client.updated': 'a client\'s settings changed (`changed`, `before`, `after`; `dropped: ["clientSecret"]` when a switch to `none` or `private_key_jwt` removed its secret)',
  'oauth_client.secret_rotated': 'a new client secret was issued and the old one stopped working (`reason`: `rotate_requested`, or `auth_method_changed` on a switch to a secret-based method)',
  'oauth_client.deleted': 'a client was deleted (`name`)',
} as const satisfies Record<string, string>;

export type AuditAction = keyof typeof AUDIT_ACTIONS;
