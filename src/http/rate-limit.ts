import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes, RateLimiterSQLite, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { DatabaseHandle } from '../db/database.js';
import { AppError } from './errors.js';

/**
 * Named rate limits, stored in the shared database (table `rate_limits`), so they hold across
 * every instance that shares it. Each limit has a number of attempts per window.
 */
export const DEFAULT_LIMITS = {
  'sign-in:ip': { points: 30, duration: 300 },
  'sign-in:account': { points: 10, duration: 900 },
  'sign-up:ip': { points: 10, duration: 3600 },
  'magic-link:ip': { points: 10, duration: 900 },
  'magic-link:account': { points: 5, duration: 900 },
  'password-reset:ip': { points: 10, duration: 900 },
  'password-reset:account': { points: 5, duration: 900 },
  'mfa-verify:ip': { points: 30, duration: 900 },
  'mfa-verify:account': { points: 10, duration: 900 },
  'email-verify:account': { points: 5, duration: 3600 },
  'domain-verify:organization': { points: 20, duration: 3600 },
  'sso-failure:ip': { points: 60, duration: 600 },
} satisfies Record<string, { points: number; duration: number }>;

export type LimitName = keyof typeof DEFAULT_LIMITS;
export type LimitSettings = Record<LimitName, { points: number; duration: number }>;

export interface RateLimits {
  /** Count one attempt; throws 429 RATE_LIMITED (with retryAfter seconds) once the limit is spent. */
  consume(name: LimitName, key: string): Promise<void>;
  /** Forget the attempts of a key (e.g. after a successful sign-in). */
  reset(name: LimitName, key: string): Promise<void>;
}

export function createRateLimits(handle: DatabaseHandle | null, overrides: Partial<LimitSettings> = {}): RateLimits {
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
  return {
    async consume(name, key) {
      try {
        await get(name).consume(key.toLowerCase());
      } catch (e) {
        if (e instanceof RateLimiterRes) {
          const retryAfter = Math.max(1, Math.ceil(e.msBeforeNext / 1000));
          throw new AppError('RATE_LIMITED', 'Too many attempts. Try again later.', { retryAfter });
        }
        throw e;
      }
    },
    async reset(name, key) {
      await get(name).delete(key.toLowerCase());
    },
  };
}
