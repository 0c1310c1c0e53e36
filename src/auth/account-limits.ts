import { DAY, type Clock } from '../clock.js';
import type { Db } from '../db/database.js';
import type { RequestMeta } from '../context.js';
import { ipBucket } from '../http/client-ip.js';
import type { LimitName, RateLimits } from '../http/rate-limit.js';
import { hasRecentSessionFromAddress } from '../sessions/store.js';

/**
 * Per-account rate limits a stranger cannot turn against the owner (SPEC §12).
 *
 * A limit keyed by the account alone lets anyone lock the owner out: ten wrong passwords from
 * ten addresses and the owner's own right password is refused for fifteen minutes. So every
 * account limit has two counters:
 *
 * 1. `<flow>:account-ip` — per account AND client IP, tight (what the account limit used to
 *    be). A stranger spends only their own addresses' budget.
 * 2. `<flow>:account` — per account, a far higher ceiling for distributed guessing (many
 *    addresses, one account). The owner's own address is exempt from the ceiling: an address
 *    this account had a session from in the last 30 days (for MFA verify: a session that
 *    completed MFA), so a botnet that spends the ceiling still does not lock the owner out
 *    from where they usually sign in. A new address of the owner is subject to the ceiling.
 *
 * Both are consumed before the secret is checked, so a limited caller learns nothing, even
 * with the right password.
 */
export const KNOWN_ADDRESS_WINDOW_MS = 30 * DAY;

export const ACCOUNT_LIMITS = {
  'sign-in': { perAddress: 'sign-in:account-ip', ceiling: 'sign-in:account' },
  'magic-link': { perAddress: 'magic-link:account-ip', ceiling: 'magic-link:account' },
  'password-reset': { perAddress: 'password-reset:account-ip', ceiling: 'password-reset:account' },
  'mfa-verify': { perAddress: 'mfa-verify:account-ip', ceiling: 'mfa-verify:account' },
} as const satisfies Record<string, { perAddress: LimitName; ceiling: LimitName }>;

export type AccountFlow = keyof typeof ACCOUNT_LIMITS;

/** The account (lower-cased email or user id) as the flow keys it. */
export type Account = { email: string } | { userId: string };

/** One counted attempt, as `consume` returns it. */
export interface AccountAttempt {
  flow: AccountFlow;
  who: Account;
  ip: string | null;
  ceilingCharged: boolean;
}

const accountKey = (who: Account) => ('email' in who ? who.email : who.userId);
/** Per account and client address bucket (an IPv6 client counts as its /64: ipBucket). */
const addressKey = (who: Account, ip: string | null) => `${accountKey(who)}|${ipBucket(ip)}`;

export function createAccountLimits(deps: { db: Db; clock: Clock; rateLimits: RateLimits }) {
  return {
    /**
     * Count one attempt on `who` from `meta.ip`; throws 429 RATE_LIMITED once either counter is
     * spent. Returns what `succeeded` needs to give the attempt back if it was not a failure.
     */
    async consume(flow: AccountFlow, meta: Pick<RequestMeta, 'ip'>, who: Account): Promise<AccountAttempt> {
      const names = ACCOUNT_LIMITS[flow];
      await deps.rateLimits.consume(names.perAddress, addressKey(who, meta.ip));
      const since = new Date(deps.clock.now().getTime() - KNOWN_ADDRESS_WINDOW_MS).toISOString();
      const known = meta.ip !== null && (await hasRecentSessionFromAddress(deps.db, who, meta.ip, since, { mfaComplete: flow === 'mfa-verify' }));
      if (!known) await deps.rateLimits.consume(names.ceiling, accountKey(who));
      return { flow, who, ip: meta.ip, ceilingCharged: !known };
    },

    /**
     * The attempt succeeded: forget this address's failures, and give back what it took from the
     * ceiling (the ceiling counts failures; other addresses' failures are left to expire).
     */
    async succeeded(attempt: AccountAttempt): Promise<void> {
      const names = ACCOUNT_LIMITS[attempt.flow];
      await deps.rateLimits.reset(names.perAddress, addressKey(attempt.who, attempt.ip));
      if (attempt.ceilingCharged) await deps.rateLimits.refund(names.ceiling, accountKey(attempt.who));
    },

    /** The owner proved the mailbox (password reset): forget every failure of the flow on the account. */
    async resetCeiling(flow: AccountFlow, who: Account): Promise<void> {
      await deps.rateLimits.reset(ACCOUNT_LIMITS[flow].ceiling, accountKey(who));
    },
  };
}

export type AccountLimits = ReturnType<typeof createAccountLimits>;
