import type { SessionRow } from '../db/schema.js';

/**
 * The session's authentication methods as RFC 8176 values (access tokens and the OpenID
 * Provider's ID tokens):
 *   password → pwd; magic link → otp (a one-time secret delivered by mail: RFC 8176 has no mail
 *   value, otp is the nearest); passkey → hwk (proof of possession of a key) and user (user
 *   presence); social and SSO sign-in → fed (federated: the provider authenticated the person and
 *   Gatehouse cannot tell how; not an RFC 8176 value, a Gatehouse word).
 *   A completed second factor (TOTP or a recovery code) adds otp and mfa.
 */
export function amrOf(session: Pick<SessionRow, 'auth_method' | 'mfa_state'>): string[] {
  const first: Record<SessionRow['auth_method'], string[]> = {
    password: ['pwd'],
    magic_link: ['otp'],
    passkey: ['hwk', 'user'],
    social: ['fed'],
    sso: ['fed'],
  };
  const amr = [...first[session.auth_method]];
  if (session.mfa_state === 'complete' && session.auth_method !== 'sso') {
    if (!amr.includes('otp')) amr.push('otp');
    amr.push('mfa');
  }
  return amr;
}
