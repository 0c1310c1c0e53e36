import type { ErrorCode } from '../http/errors.js';

/**
 * The `details.reason` words of a failed SSO login (SPEC §11, §12 "Stable words are typed"):
 * every word any protocol may answer, with what it means. The README's table is compared with
 * this registry by a test; a word missing here does not type-check where it is thrown. Shipped
 * words stay; no synonyms are added.
 */
export const SSO_FAILURE_REASONS = {
  // -- shared by OIDC and SAML: the flow, the connection, the browser
  state_invalid: { protocols: ['oidc'], meaning: "no state, an unknown state, a state of another protocol, an organization that no longer exists, or an answer on a redirect URI that is not its flow's (mix-up)" },
  flow_expired: { protocols: ['oidc'], meaning: 'the sign-in took longer than 10 minutes' },
  replayed: { protocols: ['oidc', 'saml'], meaning: 'the flow (OIDC state) or the assertion ID (SAML) was already used' },
  browser_mismatch: { protocols: ['oidc', 'saml'], meaning: 'the sign-in was started in another browser (the binding cookie is missing or differs; SAML binds on https deployments)' },
  config_changed: { protocols: ['oidc'], meaning: 'the SSO settings changed while the sign-in was in progress' },
  connection_disabled: { protocols: ['oidc', 'saml'], meaning: 'the connection is disabled by its administrator' },
  sso_not_configured: { protocols: ['oidc'], meaning: 'no active OIDC connection for this organization slug' },
  connection_not_found: { protocols: ['saml'], meaning: 'no active SAML connection for this organization slug' },
  untrusted_target: { protocols: ['oidc'], meaning: 'an IdP-initiated login named a target_link_uri that is not a trusted destination' },
  // -- OIDC: authorization response, discovery, code exchange, ID token, UserInfo
  iss_missing: { protocols: ['oidc'], meaning: 'the IdP announces RFC 9207 (authorization_response_iss_parameter_supported) but this answer has no iss' },
  par_failed: { protocols: ['oidc'], meaning: 'the pushed authorization request (RFC 9126) endpoint was refused by the SSRF guard, unreachable, or refused the request (at login start)' },
  idp_error: { protocols: ['oidc'], meaning: 'the IdP answered the authorization request with an error' },
  code_missing: { protocols: ['oidc'], meaning: 'the callback carries no authorization code' },
  discovery_failed: { protocols: ['oidc'], meaning: "the IdP's discovery document or JWKS could not be fetched or is invalid" },
  discovery_issuer_mismatch: { protocols: ['oidc'], meaning: "discovery's issuer differs from the configured issuerUrl" },
  token_exchange_failed: { protocols: ['oidc'], meaning: "the token endpoint refused the code or could not be reached" },
  id_token_missing: { protocols: ['oidc'], meaning: 'the token response has no ID token' },
  id_token_malformed: { protocols: ['oidc'], meaning: 'the ID token is not a JWT, or its payload is not a JSON object' },
  alg_not_allowed: { protocols: ['oidc'], meaning: 'the ID token is unsigned (alg none) or signed with a symmetric algorithm' },
  unknown_kid: { protocols: ['oidc'], meaning: "the ID token's kid is not in the IdP's JWKS, even after one refetch" },
  kid_ambiguous: { protocols: ['oidc'], meaning: 'the ID token names no kid and the JWKS has several keys (or none that fits)' },
  signature_invalid: { protocols: ['oidc', 'saml'], meaning: 'a signature does not verify against the IdP keys (OIDC JWKS) or the pinned certificates (SAML)' },
  issuer_mismatch: { protocols: ['oidc', 'saml'], meaning: "OIDC: the ID token iss, the RFC 9207 iss or an IdP-initiated iss is not the connection's issuer, or an Entra token's tid is not in allowedTenants; SAML: the Issuer is not idpEntityId" },
  audience_mismatch: { protocols: ['oidc', 'saml'], meaning: 'OIDC: aud/azp is not this client ID; SAML: no AudienceRestriction names this SP entity ID exactly' },
  token_expired: { protocols: ['oidc'], meaning: 'the ID token exp has passed (beyond the clock skew)' },
  iat_invalid: { protocols: ['oidc'], meaning: 'the ID token has no iat, or one in the future' },
  nonce_mismatch: { protocols: ['oidc'], meaning: "the ID token's nonce is not this flow's (replay)" },
  sub_missing: { protocols: ['oidc'], meaning: 'the ID token has no sub' },
  userinfo_failed: { protocols: ['oidc'], meaning: 'UserInfo could not be reached, did not answer 200, or is not a JSON object' },
  userinfo_sub_mismatch: { protocols: ['oidc'], meaning: 'the UserInfo sub differs from the ID token sub (token substitution)' },
  // -- SAML: the ACS checks (src/sso/saml/acs-checks.ts, in order)
  response_too_large: { protocols: ['saml'], meaning: 'the POST body is over 512 KiB (not read); Single Logout: the message is over 64 KiB' },
  malformed: { protocols: ['saml'], meaning: 'no SAMLResponse, not base64, not well-formed XML, not a SAML Response, or a bad time value' },
  doctype_refused: { protocols: ['saml'], meaning: 'the XML carries a DOCTYPE or ENTITY declaration' },
  status_not_success: { protocols: ['saml'], meaning: 'the top-level StatusCode is not Success' },
  assertion_count: { protocols: ['saml'], meaning: 'zero or several assertions anywhere in the document, or one that is not a child of the Response' },
  decryption_failed: { protocols: ['saml'], meaning: 'the encrypted assertion is not RSA-OAEP or does not decrypt with the SP key' },
  algorithm_refused: { protocols: ['saml'], meaning: 'SHA-1, #WithComments or an unsupported algorithm in a signature' },
  signature_missing: { protocols: ['saml'], meaning: 'neither the Response nor the assertion is signed' },
  destination_mismatch: { protocols: ['saml'], meaning: 'the Response Destination is not this ACS URL (or missing on a signed Response)' },
  recipient_mismatch: { protocols: ['saml'], meaning: 'no bearer SubjectConfirmationData names this ACS URL as Recipient' },
  expired: { protocols: ['saml'], meaning: 'NotOnOrAfter (Conditions or SubjectConfirmationData) has passed, beyond 60 s of skew, or is absent' },
  not_yet_valid: { protocols: ['saml'], meaning: 'NotBefore is in the future, beyond 60 s of skew' },
  subject_missing: { protocols: ['saml'], meaning: 'the assertion has no NameID' },
  in_response_to_unknown: { protocols: ['saml'], meaning: 'InResponseTo names no pending request of this connection and config version' },
  nameid_unknown: { protocols: ['saml'], meaning: "Single Logout: the LogoutRequest's NameID (with its Format and qualifiers) is no identity of this connection" },
  unsolicited_not_allowed: { protocols: ['saml'], meaning: 'no InResponseTo and the connection does not allow IdP-initiated login' },
  // -- provisioning and linking (SPEC §4.5), both protocols
  email_missing: { protocols: ['oidc', 'saml'], meaning: 'a new identity without an email (no email claim; SAML: NameID not emailAddress and no mapped email attribute)' },
  domain_not_allowed: { protocols: ['oidc', 'saml'], meaning: "403 SSO_DOMAIN_NOT_ALLOWED: the email's domain is not in allowedDomains" },
  user_not_provisioned: { protocols: ['oidc', 'saml'], meaning: '403 SSO_USER_NOT_PROVISIONED: JIT is off and the user is neither a member nor invited' },
  account_link_required: { protocols: ['oidc', 'saml'], meaning: '403 SSO_ACCOUNT_LINK_REQUIRED: an account with this email exists and cannot be linked automatically' },
  user_missing: { protocols: ['oidc', 'saml'], meaning: "the identity's account was deleted while the sign-in was in progress" },
} as const satisfies Record<string, { protocols: readonly ('oidc' | 'saml')[]; meaning: string }>;

export type SsoFailureReason = keyof typeof SSO_FAILURE_REASONS;

/** The words a SAML ACS check may fail with (a subset of the registry, for the ACS's own helper). */
export type SamlFailureReason = {
  [K in SsoFailureReason]: 'saml' extends (typeof SSO_FAILURE_REASONS)[K]['protocols'][number] ? K : never;
}[SsoFailureReason];

/**
 * An SSO login that failed. `reason` is the stable snake_case word of SPEC §11
 * (`details.reason`); `code` is SSO_LOGIN_FAILED (400) for protocol and verification failures,
 * or the provisioning code (403) of SPEC §4.5. The message is written for the admin who has to
 * fix it, and never contains a token.
 */
export class SsoLoginError extends Error {
  override name = 'SsoLoginError';
  readonly code: ErrorCode;
  readonly status: number;
  constructor(
    readonly reason: SsoFailureReason,
    message: string,
    options: { code?: 'SSO_LOGIN_FAILED' | 'SSO_DOMAIN_NOT_ALLOWED' | 'SSO_USER_NOT_PROVISIONED' | 'SSO_ACCOUNT_LINK_REQUIRED'; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code ?? 'SSO_LOGIN_FAILED';
    this.status = this.code === 'SSO_LOGIN_FAILED' ? 400 : 403;
  }
}
