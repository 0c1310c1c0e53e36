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
