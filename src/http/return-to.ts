import { AppError } from './errors.js';

/**
 * SPEC §11 returnTo: a relative path (`/x`, never `//x` or `/\x`) or a URL whose origin is
 * trusted. Anything else is refused at the start of the flow, never silently replaced.
 */
export function checkReturnTo(value: string | undefined | null, trustedOrigins: readonly string[], field = 'returnTo'): string {
  if (value === undefined || value === null || value === '') return '/';
  const refuse = () =>
    new AppError('VALIDATION_FAILED', `${field} must be a relative path or a URL on a trusted origin`, {
      issues: [{ path: field, code: 'untrusted_redirect', message: 'must be a relative path or a URL on a trusted origin' }],
    });
  if (value.length > 2048 || /[\u0000-\u001f\\]/.test(value)) throw refuse();
  if (value.startsWith('/')) {
    if (value.startsWith('//')) throw refuse();
    return value;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw refuse();
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || !trustedOrigins.includes(url.origin) || url.username || url.password) throw refuse();
  return url.toString();
}
