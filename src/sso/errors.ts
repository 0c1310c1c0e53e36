import type { ErrorCode } from '../http/errors.js';

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
    readonly reason: string,
    message: string,
    options: { code?: 'SSO_LOGIN_FAILED' | 'SSO_DOMAIN_NOT_ALLOWED' | 'SSO_USER_NOT_PROVISIONED' | 'SSO_ACCOUNT_LINK_REQUIRED'; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code ?? 'SSO_LOGIN_FAILED';
    this.status = this.code === 'SSO_LOGIN_FAILED' ? 400 : 403;
  }
}

/**
 * The `details.reason` words of a failed SAML ACS (SPEC §4.4, §11), with their meaning. The
 * OIDC callback's words are in src/sso/oidc/service.ts and src/sso/flows.ts; provisioning's
 * (`email_missing`, `domain_not_allowed`, `user_not_provisioned`, `account_link_required`) are
 * shared by both protocols.
 */
export const SAML_FAILURE_REASONS = {
  connection_not_found: 'no active SAML connection for this organization slug',
  connection_disabled: 'the SAML connection is disabled',
  response_too_large: 'the POST body is over 512 KiB (not read)',
  malformed: 'no SAMLResponse, not base64, not well-formed XML, not a SAML Response, or a bad time value',
  doctype_refused: 'the XML carries a DOCTYPE or ENTITY declaration',
  status_not_success: 'the top-level StatusCode is not Success',
  assertion_count: 'zero or several assertions anywhere in the document, or one that is not a child of the Response',
  decryption_failed: 'the encrypted assertion is not RSA-OAEP or does not decrypt with the SP key',
  algorithm_refused: 'SHA-1, #WithComments or an unsupported algorithm in a signature',
  signature_missing: 'neither the Response nor the assertion is signed',
  signature_invalid: 'a signature does not verify against the pinned IdP certificate(s)',
  issuer_mismatch: 'the Issuer of the response or the assertion is not the configured idpEntityId',
  destination_mismatch: 'the Response Destination is not this ACS URL (or missing on a signed Response)',
  recipient_mismatch: 'no bearer SubjectConfirmationData names this ACS URL as Recipient',
  audience_mismatch: 'an AudienceRestriction does not name this SP entity ID exactly (or none is present)',
  expired: 'NotOnOrAfter (Conditions or SubjectConfirmationData) has passed, beyond 60 s of skew, or is absent',
  not_yet_valid: 'NotBefore is in the future, beyond 60 s of skew',
  subject_missing: 'the assertion has no NameID',
  email_missing: 'a new identity without an email (NameID not emailAddress, no mapped email attribute)',
  replayed: 'this assertion ID was already accepted for this connection',
  in_response_to_unknown: 'InResponseTo names no pending request of this connection and config version',
  unsolicited_not_allowed: 'no InResponseTo and the connection does not allow IdP-initiated login',
  browser_mismatch: 'the SP-initiated sign-in was started in another browser (https deployments bind it with a cookie)',
} as const;

export type SamlFailureReason = keyof typeof SAML_FAILURE_REASONS;
