import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes, RateLimiterSQLite, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { DatabaseHandle } from '../db/database.js';
import { ipBucket } from './client-ip.js';
import { AppError } from './errors.js';

/**
 * Named rate limits, stored in the shared database (table `rate_limits`), so they hold across
 * every instance that shares it. Each limit has a number of attempts per window.
 */
export const DEFAULT_LIMITS = {
  'sign-in:ip': { points: 30, duration: 300 },
  // Account limits come in pairs (auth/account-limits.ts, SPEC §12): per account and IP, tight;
  // per account, a far higher ceiling for distributed guessing that the owner's own address skips.
  'sign-in:account-ip': { points: 10, duration: 900 },
  'sign-in:account': { points: 100, duration: 3600 },
  'sign-up:ip': { points: 10, duration: 3600 },
  'magic-link:ip': { points: 10, duration: 900 },
  'magic-link:account-ip': { points: 5, duration: 900 },
  'magic-link:account': { points: 20, duration: 3600 },
  'password-reset:ip': { points: 10, duration: 900 },
  'password-reset:account-ip': { points: 5, duration: 900 },
  'password-reset:account': { points: 20, duration: 3600 },
  'mfa-verify:ip': { points: 30, duration: 900 },
  'mfa-verify:account-ip': { points: 10, duration: 900 },
  'mfa-verify:account': { points: 50, duration: 3600 },
  'email-verify:account': { points: 5, duration: 3600 },
  'domain-verify:organization': { points: 20, duration: 3600 },
  // SSO tests (saved settings or a dry run of a body, from the dashboard or a setup link): each
  // fetches an IdP's discovery and keys; bounded so a test is no free probe of other hosts.
  'sso-test:organization': { points: 60, duration: 3600 },
  'sso-failure:ip': { points: 60, duration: 600 },
  // OIDC back-channel logout from an IdP (server to server): a valid token costs a signature check.
  'backchannel-logout:ip': { points: 120, duration: 60 },
  // SAML Single Logout messages (Redirect or POST): each may cost an inflate, a parse and a signature check.
  'saml-slo:ip': { points: 120, duration: 60 },
  // Session tokens (POST /api/auth/token, its refresh grant and /token/revoke): every request counts.
  // A refresh token is 256 bits, so this bounds load, not guessing; an app refreshes every few minutes.
  'token:ip': { points: 300, duration: 60 },
  // Okta Universal Logout (server to server, signed tokens): bounds load from one address.
  'universal-logout:ip': { points: 120, duration: 60 },
  // SPEC §12: invitation mails carry an organization's free-text name; cap them per
  // organization and per inviter so nobody sends branded phishing in bulk.
  'invitation:organization': { points: 100, duration: 3600 },
  'invitation:inviter': { points: 50, duration: 3600 },
} satisfies Record<string, { points: number; duration: number }>;

export type LimitName = keyof typeof DEFAULT_LIMITS;
/** The limits keyed by the client address alone; counted through `consumeIp`, which buckets the address. */
export type IpLimitName = Extract<LimitName, `${string}:ip`>;
export type LimitSettings = Record<LimitName, { points: number; duration: number }>;

export interface RateLimits {
  /** Count one attempt; throws 429 RATE_LIMITED (with retryAfter seconds) once the limit is spent. */
  consume(name: Exclude<LimitName, IpLimitName>, key: string): Promise<void>;
  /** Count one attempt of the client at `ip`, in its bucket (an IPv6 client is its /64: ipBucket). */
  consumeIp(name: IpLimitName, ip: string | null): Promise<void>;
  /** Forget the attempts of a key (e.g. after a successful sign-in). */
  reset(name: LimitName, key: string): Promise<void>;
  /** Give back one attempt (an attempt that turned out to be a success, not a failure). */
  refund(name: LimitName, key: string): Promise<void>;
}

export interface RateLimitOptions {
  /** Told of every refused attempt (metrics: gatehouse_rate_limit_refusals_total). */
  onRefused?: (name: LimitName) => void;
}

export function createRateLimits(handle: DatabaseHandle | null, overrides: Partial<LimitSettings> = {}, options: RateLimitOptions = {}): RateLimits {
  const limiters = new Map<LimitName, RateLimiterAbstract>();
  for (const name of Object.keys(DEFAULT_LIMITS) as LimitName[]) {
    const { points, duration } = overrides[name] ?? DEFAULT_LIMITS[name];
    const opts = { keyPrefix: name, points, duration, tableName: 'rate_limits', tableCreated: true, clearExpiredByTimeout: false };
    let limiter: RateLimiterAbstract;
    if (!handle) limiter = new RateLimiterMemory(opts);
    else if (handle.raw.kind === 'sqlite')
      limiter = new RateLimiterSQLite({ ...opts, storeClient: handle.raw.client, storeType: 'better-sqlite3' });
    else limiter = new RateLimiterPostgres({ ...opts, storeClient: handle.raw.client, storeType: 'pool' });
    limiters.set(name, limiter);
  }
  const get = (name: LimitName) => {
    const l = limiters.get(name);
    if (!l) throw new Error(`unknown rate limit ${name}`);
    return l;
  };
  const consume = async (name: LimitName, key: string) => {
    try {
      await get(name).consume(key.toLowerCase());
    } catch (e) {
      if (e instanceof RateLimiterRes) {
        options.onRefused?.(name);
        const retryAfter = Math.max(1, Math.ceil(e.msBeforeNext / 1000));
        throw new AppError('RATE_LIMITED', 'Too many attempts. Try again later.', { retryAfter });
      }
      throw e;
    }
  };
  return {
    consume,
    consumeIp: (name, ip) => consume(name, ipBucket(ip)),
    async reset(name, key) {
      await get(name).delete(key.toLowerCase());
    },
    async refund(name, key) {
      await get(name).reward(key.toLowerCase(), 1);
    },
  };
}
