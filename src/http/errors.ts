/**
 * One error type for the whole service: a stable `code`, the HTTP `status`, a human message and
 * optional `details`. Codes are part of the API contract (SPEC §3): add, never rename.
 */
export const ERROR_CODES = {
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  CSRF_REJECTED: 403,
  INVALID_CREDENTIALS: 401,
  LAST_OWNER: 409,
  SSO_REQUIRED: 403,
  MFA_REQUIRED: 403,
  MFA_ENROLLMENT_REQUIRED: 403,
  SSO_NOT_CONFIGURED: 409,
  SSO_TEST_FAILED: 422,
  SSO_LOGIN_FAILED: 400,
  SSO_DOMAIN_NOT_ALLOWED: 403,
  SSO_USER_NOT_PROVISIONED: 403,
  SSO_ACCOUNT_LINK_REQUIRED: 403,
  DOMAIN_NOT_VERIFIED: 409,
  DOMAIN_VERIFICATION_FAILED: 422,
  DOMAIN_TAKEN: 409,
  GENERIC_DOMAIN: 422,
  INVALID_TOKEN: 400,
  MFA_CODE_INVALID: 400,
  UNSUPPORTED_SUBJECT_FORMAT: 400,
  LOGOUT_NOT_POSSIBLE: 422,
  IDP_TOKEN_UNAVAILABLE: 409,
  IDP_UNAVAILABLE: 502,
  INTERNAL: 500,
  SERVICE_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** What each code means, for the README and the OpenAPI description. */
export const ERROR_DESCRIPTIONS: Record<ErrorCode, string> = {
  VALIDATION_FAILED: 'The body, query or path failed validation (unknown fields included); `details.issues` lists each problem.',
  UNAUTHENTICATED: 'No valid session cookie, API key or bearer token.',
  FORBIDDEN: 'Authenticated, but not allowed (role too low, API key scope or organization pin).',
  NOT_FOUND: 'No such route or resource — or an organization the caller is not a member of.',
  METHOD_NOT_ALLOWED: 'The route exists but not with this method.',
  CONFLICT: 'The write conflicts with existing data (duplicate email, slug, membership…).',
  PAYLOAD_TOO_LARGE: 'The body exceeds 1 MiB.',
  UNSUPPORTED_MEDIA_TYPE: 'The body must be application/json.',
  RATE_LIMITED: 'Too many attempts; `Retry-After` says when to try again.',
  CSRF_REJECTED: 'A cookie-authenticated write without an Origin from GATEHOUSE_TRUSTED_ORIGINS.',
  INVALID_CREDENTIALS: 'Wrong email or password (the same answer for an unknown email).',
  LAST_OWNER: 'The last owner of an organization can be neither removed nor demoted.',
  SSO_REQUIRED: "This organization requires signing in with its SSO; `details.ssoUrl` starts it.",
  MFA_REQUIRED: 'The session must complete MFA first (POST /api/auth/mfa/verify).',
  MFA_ENROLLMENT_REQUIRED: 'The organization requires MFA and the user has no factor yet.',
  SSO_NOT_CONFIGURED: 'The organization has no enabled SSO connection.',
  SSO_TEST_FAILED: 'The SSO configuration test failed; `details.checks` says which check and why.',
  SSO_LOGIN_FAILED: 'An SSO login failed a protocol or verification check; `details.reason` names it.',
  SSO_DOMAIN_NOT_ALLOWED: "The IdP returned an email outside the connection's allowed domains.",
  SSO_USER_NOT_PROVISIONED: 'Just-in-time provisioning is off and the user is neither a member nor invited.',
  SSO_ACCOUNT_LINK_REQUIRED: 'An account with this email exists and cannot be linked automatically.',
  DOMAIN_NOT_VERIFIED: 'The domain must be verified first.',
  DOMAIN_VERIFICATION_FAILED: 'The DNS TXT record was not found or holds another value; `details` says what was found.',
  DOMAIN_TAKEN: 'Another organization has verified this domain.',
  GENERIC_DOMAIN: 'A public suffix or free mailbox provider cannot be claimed.',
  INVALID_TOKEN: 'The token is unknown, used or expired.',
  MFA_CODE_INVALID: 'The TOTP code or recovery code is wrong, outside the ±30 s window or already used; `details.reason` is `invalid` or `replayed`.',
  UNSUPPORTED_SUBJECT_FORMAT: 'Universal Logout: the subject format is neither `email` nor `iss_sub`; `details.supported` lists them.',
  LOGOUT_NOT_POSSIBLE: 'Universal Logout: the subject is well-formed but cannot be acted on (an `iss_sub` of an IdP that is not the connection\'s); `details.reason` says why.',
  IDP_TOKEN_UNAVAILABLE: 'IdP token vault: no usable IdP token for this identity; `details.status` is `none` (not stored: storeIdpTokens off or no login since), `expired` (no refresh token), `refresh_failed` (the IdP refused the refresh) or `revoked` (Universal Logout). The user must sign in with SSO again.',
  IDP_UNAVAILABLE: "IdP token vault: the access token has expired and the IdP's token endpoint could not refresh it now (unreachable, slow or a bad answer); nothing changed, try again later.",
  INTERNAL: 'Unexpected server error; the log has it under the request id.',
  SERVICE_UNAVAILABLE: 'A dependency (the database) is unreachable.',
};

export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = options?.status ?? ERROR_CODES[code];
  }
}

export const notFound = (what = 'Resource') => new AppError('NOT_FOUND', `${what} not found`);
export const forbidden = (message = 'You are not allowed to do this') => new AppError('FORBIDDEN', message);
export const conflict = (message: string, details?: Record<string, unknown>) => new AppError('CONFLICT', message, details);
