import type { SessionRow } from '../db/schema.js';

/**
 * How a session was authenticated, as RFC 8176 `amr` values (access tokens and ID tokens):
 * password → `pwd`; magic link → `otp` (a one-time code sent to the user's mailbox); passkey →
 * `hwk`; social and SSO → `fed` (the user's IdP authenticated them; RFC 8176 registers no value for a
 * federated sign-in, so this one is Gatehouse's own); a completed second factor adds
 * `otp` and `mfa`.
 */
export function amrOf(session: Pick<SessionRow, 'auth_method' | 'mfa_state'>): string[] {
  const first: Record<SessionRow['auth_method'], string> = { password: 'pwd', magic_link: 'otp', passkey: 'hwk', social: 'fed', sso: 'fed' };
  const amr = [first[session.auth_method]];
  if (session.mfa_state === 'complete' && session.auth_method !== 'sso') {
    if (!amr.includes('otp')) amr.push('otp');
    amr.push('mfa');
  }
  return amr;
}
