import { Counter, Histogram, type Registry } from 'prom-client';
import type { AuthMethod, SsoProtocol } from '../db/schema.js';
import { DEFAULT_LIMITS, type LimitName } from '../http/rate-limit.js';

/**
 * The metrics Gatehouse counts as it works (docs/metrics.md lists each with its labels). Every
 * label value comes from a closed set — a route pattern, a registry word, a limit name — never
 * from a request: a path, an email or a token can never become a label.
 */

/** How a sign-in was attempted: the session's auth method, SSO split by protocol (only the methods served today). */
export const SIGN_IN_METHODS = ['password', 'magic_link', 'sso_oidc', 'sso_saml'] as const satisfies readonly (Exclude<AuthMethod, 'sso'> | `sso_${SsoProtocol}`)[];
export type SignInMethod = (typeof SIGN_IN_METHODS)[number];

/**
 * How a sign-in ended: `success` (a session), `mfa_required` (a session whose second factor is
 * pending), `failure` (wrong password, spent link, any SSO login failure), `sso_required`
 * (refused by a sign-in policy), `rate_limited` (refused before any check), `error` (a server-side
 * fault: the database away, a bug).
 */
export const SIGN_IN_RESULTS = ['success', 'mfa_required', 'failure', 'sso_required', 'rate_limited', 'error'] as const;
export type SignInResult = (typeof SIGN_IN_RESULTS)[number];

/** Latency buckets (seconds) of the HTTP histogram: a session check takes ~1 ms, an SSO callback tens to hundreds. */
export const HTTP_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The counters and the histogram, registered on `registry` only (never prom-client's global one). */
export function defineMetrics(registry: Registry) {
  const registers = [registry];
  const signIns = new Counter({
    name: 'gatehouse_sign_ins_total',
    help: 'Sign-in attempts by method (password, magic_link, sso_oidc, sso_saml) and result (success, mfa_required, failure, sso_required, rate_limited, error)',
    labelNames: ['method', 'result'] as const,
    registers,
  });
  // Every served method × result starts at 0, so rate() and increase() see the first attempt.
  for (const method of SIGN_IN_METHODS) for (const result of SIGN_IN_RESULTS) signIns.inc({ method, result }, 0);
  const rateLimitRefusals = new Counter({
    name: 'gatehouse_rate_limit_refusals_total',
    help: 'Attempts refused with 429 RATE_LIMITED, by limit name (src/http/rate-limit.ts)',
    labelNames: ['limit'] as const,
    registers,
  });
  for (const limit of Object.keys(DEFAULT_LIMITS) as LimitName[]) rateLimitRefusals.inc({ limit }, 0);
  return {
    httpRequests: new Counter({
      name: 'gatehouse_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern (unmatched: no route) and status code',
      labelNames: ['method', 'route', 'status'] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by method and route pattern',
      labelNames: ['method', 'route'] as const,
      buckets: HTTP_DURATION_BUCKETS,
      registers,
    }),
    signIns,
    ssoFailures: new Counter({
      name: 'gatehouse_sso_failures_total',
      help: 'Failed SSO logins (OIDC callback, SAML ACS) by protocol and stable reason (src/sso/errors.ts)',
      labelNames: ['protocol', 'reason'] as const,
      registers,
    }),
    ssoLoginStartFailures: new Counter({
      name: 'gatehouse_sso_login_start_failures_total',
      help: 'SSO logins refused before the browser went to the IdP (SP-initiated start, IdP-initiated initiate) by protocol and stable reason',
      labelNames: ['protocol', 'reason'] as const,
      registers,
    }),
    rateLimitRefusals,
  };
}
