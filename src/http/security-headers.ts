import type { MiddlewareHandler } from 'hono';

/**
 * The security headers of every answer of the Hono app (and of the session check's fast path,
 * auth/session-check.ts): Hono's secure-headers defaults, less Cross-Origin-Resource-Policy and
 * Cross-Origin-Opener-Policy (the hosted pages and the OpenID Provider's endpoints are reached
 * cross-origin by design). One list, so the two ways of answering cannot drift apart.
 */
export const SECURITY_HEADERS: readonly (readonly [string, string])[] = [
  ['Origin-Agent-Cluster', '?1'],
  ['Referrer-Policy', 'no-referrer'],
  ['Strict-Transport-Security', 'max-age=15552000; includeSubDomains'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-DNS-Prefetch-Control', 'off'],
  ['X-Download-Options', 'noopen'],
  ['X-Frame-Options', 'SAMEORIGIN'],
  ['X-Permitted-Cross-Domain-Policies', 'none'],
  ['X-XSS-Protection', '0'],
];

/** Sets SECURITY_HEADERS on the answer once the route has made it (over anything the route set). */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    for (const [name, value] of SECURITY_HEADERS) c.res.headers.set(name, value);
  };
}
