import { claimCounts, claimUnverifiedAccount, ssoSubjectForProof } from '../users/claim.js';
import { DAY, MINUTE, type Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Ctx, RequestMeta } from '../context.js';
import { isUniqueViolation, type Db, type Executor } from '../db/database.js';
import type { OneTimeTokenPurpose, SessionRow, UserRow } from '../db/schema.js';
import { randomToken, sha256 } from '../crypto/tokens.js';
import type { PasswordHasher } from '../crypto/passwords.js';
import type { AuditService } from '../audit/service.js';
import type { Mail, Mailer } from '../email/mailer.js';
import { emailVerificationMail, magicLinkMail, passwordResetMail, passwordResetSsoMail } from '../email/templates.js';
import { AppError } from '../http/errors.js';
import type { AccountLimits } from './account-limits.js';
import type { RateLimits } from '../http/rate-limit.js';
import { checkReturnTo } from '../http/return-to.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import type { PolicyService } from '../policy/service.js';
import type { SessionService } from '../sessions/service.js';
import { findUserByEmail, findUserById, insertUser, normalizeEmail, updateUser } from '../users/store.js';
import {
  consumeOneTimeToken, findUsableToken, insertOneTimeToken, invalidateUserTokens, serializeTokenData, tokenData, type OneTimeTokenRow, type TokenData,
} from './one-time-tokens.js';
import type { SessionCacheDrops } from '../sessions/cache.js';

/** SPEC §4.1: magic links and reset links live 15 minutes, verification links 24 hours. */
export const MAGIC_LINK_TTL_MS = 15 * MINUTE;
export const PASSWORD_RESET_TTL_MS = 15 * MINUTE;
export const EMAIL_VERIFY_TTL_MS = DAY;

/** 32 random bytes = 256 bits, base64url (43 characters). */
const TOKEN_BYTES = 32;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{20,128}$/;

export const magicLinkVerifyPath = '/api/auth/magic-link/verify';
export const emailVerifyPath = '/api/auth/email/verify';
/** The small server-rendered page that posts the reset token and the new password to the API. */
export const resetPasswordPagePath = '/reset-password';

/** The same answer for every accepted request, whether or not the email has an account (no enumeration). */
export const MAGIC_LINK_SENT = 'If this email address can receive mail, a sign-in link is on its way. It expires in 15 minutes.';
export const RESET_REQUESTED = 'If an account uses this email address, we sent it instructions to reset the password. Links expire in 15 minutes.';

const invalidToken = (what: string) => new AppError('INVALID_TOKEN', `This ${what} link is invalid, already used or expired. Ask for a new one.`);

interface JoinRequestsPort {
  autoJoin(exec: Executor, ctx: Ctx, user: UserRow): Promise<void>;
}

export interface EmailLinkDeps {
  db: Db;
  clock: Clock;
  sessionCache: SessionCacheDrops;
  config: Pick<Config, 'baseUrl' | 'trustedOrigins'>;
  mailer: Mailer;
  logger: Logger;
  passwords: PasswordHasher;
  rateLimits: RateLimits;
  accountLimits: AccountLimits;
  audit: AuditService;
  sessions: SessionService;
  policy: Pick<PolicyService, 'assertNoSsoRequirement' | 'ssoRequirement' | 'initialMfaState'>;
  joinRequests: JoinRequestsPort;
}

export interface MagicLinkSignIn {
  user: UserRow;
  session: SessionRow;
  /** The session cookie value (shown once). */
  token: string;
  returnTo: string;
  created: boolean;
}

/**
 * Sign-in by emailed link, password reset by email and email verification (SPEC §4.1, §6, §7, §11).
 * Every link carries a random 256-bit token stored only as its SHA-256, of one purpose, used once
 * (conditional UPDATE), with an expiry read from the injected clock.
 */
export function createEmailLinkService(deps: EmailLinkDeps) {
  const { db, clock, config } = deps;
  const pending = new Set<Promise<void>>();

  /**
   * Run after the answer is sent, so an anonymous caller cannot tell from the response time
   * whether an account exists or a mail went out. Tracked, so tests and shutdown can wait with
   * idle(); a failure is logged (a mail's body is never logged: it holds the link).
   */
  function detached(kind: string, work: () => Promise<void>): void {
    const p = work()
      .catch((err: unknown) => deps.logger.error({ err, kind }, 'background email work failed'))
      .finally(() => pending.delete(p));
    pending.add(p);
  }

  function deliverDetached(mail: Mail, kind: string): void {
    detached(kind, () => deps.mailer.send(mail));
  }

  async function issueToken(exec: Executor, input: { purpose: OneTimeTokenPurpose; email: string; userId: string | null; ttlMs: number; data?: TokenData }) {
    const token = randomToken(TOKEN_BYTES);
    const now = clock.now();
    await insertOneTimeToken(exec, {
      id: newId(),
      token_hash: sha256(token),
      purpose: input.purpose,
      user_id: input.userId,
      email: input.email,
      data: input.data ? serializeTokenData(input.data) : null,
      expires_at: new Date(now.getTime() + input.ttlMs).toISOString(),
      used_at: null,
      created_at: now.toISOString(),
    });
    return token;
  }

  const anonymous = (meta: RequestMeta): Ctx => ({ principal: null, ip: meta.ip, userAgent: meta.userAgent, requestId: meta.requestId });
  const wellFormed = (token: string | undefined): token is string => typeof token === 'string' && TOKEN_SHAPE.test(token);

  /** The returnTo kept with the link, re-checked against today's trusted origins (no longer trusted → '/'). */
  function storedReturnTo(row: Pick<OneTimeTokenRow, 'data'>): string {
    try {
      return checkReturnTo(tokenData(row).returnTo, config.trustedOrigins);
    } catch {
      return '/';
    }
  }

  /** A verification token and its audit record, in one transaction; returns the mail to send. */
  async function createVerification(ctx: Ctx, user: UserRow): Promise<Mail> {
    const token = await db.transaction().execute(async (tx) => {
      const t = await issueToken(tx, { purpose: 'email_verify', email: user.email, userId: user.id, ttlMs: EMAIL_VERIFY_TTL_MS });
      await deps.audit.record(tx, ctx, { action: 'user.email_verification_requested', target: { type: 'user', id: user.id } });
      return t;
    });
    const link = `${config.baseUrl}${emailVerifyPath}?token=${token}`;
    return { to: user.email, ...emailVerificationMail({ link, baseUrl: config.baseUrl, expiresInMinutes: EMAIL_VERIFY_TTL_MS / MINUTE }) };
  }

  async function verifyMagicLinkOnce(ctx: Ctx, token: string): Promise<MagicLinkSignIn> {
    const nowIso = clock.now().toISOString();
    return db.transaction().execute(async (tx) => {
      const row = await consumeOneTimeToken(tx, sha256(token), 'magic_link', nowIso);
      if (!row) throw invalidToken('sign-in');
      const existing = await findUserByEmail(tx, row.email);
      // The holder of the mailbox has proved the address: memberships now count too (SPEC §6) —
      // those of an account that had proved it before; an unverified account's go with the claim.
      await deps.policy.assertNoSsoRequirement(tx, ssoSubjectForProof(row.email, existing));

      let user: UserRow;
      let created = false;
      if (!existing) {
        user = await insertUser(tx, { id: newId(), email: row.email, name: null, passwordHash: null, emailVerified: true, now: nowIso });
        created = true;
      } else if (existing.email_verified !== 1) {
        // Pre-account-takeover defence: an unverified account may have been registered by someone
        // else with this address and a password they know. The mailbox owner is signing in now,
        // so a password set before the address was proven, and sessions opened with it, go.
        const claim = await claimUnverifiedAccount(tx, { service: deps.audit, ctx, sessionCache: deps.sessionCache }, existing, nowIso);
        user = { ...existing, email_verified: 1, password_hash: null, updated_at: nowIso };
        await deps.audit.record(tx, ctx, {
          action: 'user.email_verified',
          target: { type: 'user', id: user.id },
          // (no key with 'password' in it: the audit scrubber drops such keys)
          metadata: { method: 'magic_link', clearedUnverifiedLogin: claim.hadPassword, ...claimCounts(claim) },
        });
      } else {
        user = existing;
      }

      const mfaState = await deps.policy.initialMfaState(tx, user.id);
      const { token: cookie, session } = await deps.sessions.create(tx, user, { authMethod: 'magic_link', mfaState }, ctx);
      const signedIn: Ctx = { ...ctx, principal: { kind: 'session', user, session } };
      if (created) {
        await deps.audit.record(tx, signedIn, { action: 'user.signed_up', target: { type: 'user', id: user.id }, metadata: { method: 'magic_link' } });
      }
      await deps.audit.record(tx, signedIn, { action: 'user.signed_in', target: { type: 'user', id: user.id }, metadata: { method: 'magic_link' } });
      await deps.joinRequests.autoJoin(tx, signedIn, user);
      return { user, session, token: cookie, returnTo: storedReturnTo(row), created };
    });
  }

  /** The per-account part of POST /api/auth/password/forgot (run detached). */
  async function issuePasswordReset(meta: RequestMeta, email: string): Promise<void> {
    const user = await findUserByEmail(db, email);
    if (!user) return;
    // A member of an organization that requires SSO gets a mail pointing there, and no token —
    // unless the account never proved the address: its memberships are the unproven holder's
    // doing (the claim removes them), and must not send the real owner to that holder's IdP.
    const sso = await deps.policy.ssoRequirement(db, ssoSubjectForProof(email, user));
    if (sso) {
      await deps.audit.record(db, anonymous(meta), {
        action: 'user.password_reset_refused',
        organizationId: sso.organizationId,
        target: { type: 'user', id: user.id },
        metadata: { reason: 'sso_required' },
      });
      deliverDetached({ to: email, ...passwordResetSsoMail({ ssoUrl: `${config.baseUrl}${sso.ssoUrl}`, organizationName: sso.name, baseUrl: config.baseUrl }) }, 'password_reset_sso');
      return;
    }
    const token = await db.transaction().execute(async (tx) => {
      const t = await issueToken(tx, { purpose: 'password_reset', email, userId: user.id, ttlMs: PASSWORD_RESET_TTL_MS });
      await deps.audit.record(tx, anonymous(meta), { action: 'user.password_reset_requested', target: { type: 'user', id: user.id } });
      return t;
    });
    const link = `${config.baseUrl}${resetPasswordPagePath}?token=${token}`;
    deliverDetached({ to: email, ...passwordResetMail({ link, baseUrl: config.baseUrl, expiresInMinutes: PASSWORD_RESET_TTL_MS / MINUTE }) }, 'password_reset');
  }

  return {
    /**
     * POST /api/auth/magic-link. returnTo is checked first (400 before anything else); a domain
     * that requires SSO is refused (the domain is public, memberships are not revealed). Known and
     * unknown emails get the same answer; both get a link (verifying it creates the account).
     */
    async requestMagicLink(meta: RequestMeta, input: { email: string; returnTo?: string | undefined }): Promise<void> {
      const returnTo = checkReturnTo(input.returnTo, config.trustedOrigins);
      const email = normalizeEmail(input.email);
      await deps.rateLimits.consumeIp('magic-link:ip', meta.ip);
      await deps.accountLimits.consume('magic-link', meta, { email });
      await deps.policy.assertNoSsoRequirement(db, { email });
      // Everything that differs between known and unknown addresses happens after the answer,
      // so neither the answer nor its timing tells whether an account exists.
      detached('magic_link', async () => {
        const user = await findUserByEmail(db, email);
        const token = await db.transaction().execute(async (tx) => {
          const t = await issueToken(tx, { purpose: 'magic_link', email, userId: user?.id ?? null, ttlMs: MAGIC_LINK_TTL_MS, data: { returnTo } });
          if (user) {
            await deps.audit.record(tx, anonymous(meta), { action: 'user.magic_link_requested', target: { type: 'user', id: user.id } });
          }
          return t;
        });
        const link = `${config.baseUrl}${magicLinkVerifyPath}?token=${token}`;
        deliverDetached({ to: email, ...magicLinkMail({ link, baseUrl: config.baseUrl, expiresInMinutes: MAGIC_LINK_TTL_MS / MINUTE }) }, 'magic_link');
      });
    },

    /**
     * GET /api/auth/magic-link/verify (SPEC §12): what the link would do, without spending it —
     * mail scanners fetch links before the recipient does. Answers the address the link signs in
     * as; an unknown, used or expired token is INVALID_TOKEN, and the SSO rules that will refuse
     * the POST refuse here already (read-only: nothing is consumed, created or claimed).
     */
    async previewMagicLink(token: string | undefined): Promise<{ email: string; expiresAt: string }> {
      if (!wellFormed(token)) throw invalidToken('sign-in');
      const row = await findUsableToken(db, sha256(token), 'magic_link', clock.now().toISOString());
      if (!row) throw invalidToken('sign-in');
      const existing = await findUserByEmail(db, row.email);
      await deps.policy.assertNoSsoRequirement(db, ssoSubjectForProof(row.email, existing));
      return { email: row.email, expiresAt: row.expires_at };
    },

    /** POST /api/auth/magic-link/verify: consume the link, sign in (creating the user if unknown). */
    async verifyMagicLink(ctx: Ctx, token: string | undefined): Promise<MagicLinkSignIn> {
      if (!wellFormed(token)) throw invalidToken('sign-in');
      try {
        return await verifyMagicLinkOnce(ctx, token);
      } catch (e) {
        // Two links for the same new address used at the same moment: the loser's transaction
        // rolled back (its token unconsumed); once more finds the user the winner created.
        if (isUniqueViolation(e)) return verifyMagicLinkOnce(ctx, token);
        throw e;
      }
    },

    /**
     * POST /api/auth/password/forgot. Same answer for known and unknown emails; unknown ones get
     * no mail. A known user whom an organization requires to use SSO (by membership) gets a mail
     * pointing to the SSO login and no reset token.
     */
    async forgotPassword(meta: RequestMeta, input: { email: string }): Promise<void> {
      const email = normalizeEmail(input.email);
      await deps.rateLimits.consumeIp('password-reset:ip', meta.ip);
      await deps.accountLimits.consume('password-reset', meta, { email });
      await deps.policy.assertNoSsoRequirement(db, { email });
      // As for magic links: the per-account work happens after the answer (no timing difference).
      detached('password_reset', () => issuePasswordReset(meta, email));
    },

    /**
     * POST /api/auth/password/reset: consume the token, re-check SSO (now with memberships), set the
     * new password, mark the email verified, revoke every session. Does not sign in.
     */
    async resetPassword(meta: RequestMeta, input: { token: string; password: string }): Promise<void> {
      if (!wellFormed(input.token)) throw invalidToken('password reset');
      const tokenHash = sha256(input.token);
      // Hash (deliberately slow) only for a token that exists, so garbage tokens cost no argon2 run.
      if (!(await findUsableToken(db, tokenHash, 'password_reset', clock.now().toISOString()))) throw invalidToken('password reset');
      const passwordHash = await deps.passwords.hash(input.password);
      const nowIso = clock.now().toISOString();
      const email = await db.transaction().execute(async (tx) => {
        const row = await consumeOneTimeToken(tx, tokenHash, 'password_reset', nowIso);
        if (!row || !row.user_id) throw invalidToken('password reset');
        const user = await findUserById(tx, row.user_id);
        // The account's address changed since the link was sent: the link no longer proves it.
        if (!user || user.email !== row.email) throw invalidToken('password reset');
        await deps.policy.assertNoSsoRequirement(tx, ssoSubjectForProof(user.email, user));
        let metadata: Record<string, unknown>;
        if (user.email_verified !== 1) {
          // The address is proven only now: whatever was set up on the account before goes.
          const claim = await claimUnverifiedAccount(tx, { service: deps.audit, ctx: anonymous(meta), sessionCache: deps.sessionCache }, user, nowIso, { newPasswordHash: passwordHash });
          metadata = { ...claimCounts(claim), claimedUnverifiedAccount: true };
        } else {
          await updateUser(tx, user.id, { password_hash: passwordHash, updated_at: nowIso }, deps.sessionCache);
          metadata = { sessionsRevoked: await deps.sessions.revokeAllForUser(tx, anonymous(meta), user.id, 'password_reset') };
        }
        await invalidateUserTokens(tx, user.id, 'password_reset', nowIso);
        await deps.audit.record(tx, anonymous(meta), { action: 'user.password_reset', target: { type: 'user', id: user.id }, metadata });
        return user.email;
      });
      // The mailbox owner just proved themselves: forget failed sign-in attempts on the account.
      await deps.accountLimits.resetCeiling('sign-in', { email });
    },

    /** POST /api/auth/email/verify-request: send a verification link unless already verified. */
    async requestEmailVerification(ctx: Ctx, user: UserRow): Promise<{ alreadyVerified: boolean }> {
      if (user.email_verified === 1) return { alreadyVerified: true };
      await deps.rateLimits.consume('email-verify:account', user.id);
      const mail = await createVerification(ctx, user);
      try {
        await deps.mailer.send(mail);
      } catch (err) {
        deps.logger.error({ err, mail: { kind: 'email_verify', subject: mail.subject } }, 'email delivery failed');
        throw new AppError('SERVICE_UNAVAILABLE', 'The verification email could not be sent; try again later');
      }
      return { alreadyVerified: false };
    },

    /**
     * Sent at sign-up (called by the account service). Never throws: the account exists either way,
     * and a failed delivery is logged; the user can ask again with POST /api/auth/email/verify-request.
     */
    async sendEmailVerification(meta: RequestMeta, user: UserRow): Promise<void> {
      if (user.email_verified === 1) return;
      try {
        const mail = await createVerification(anonymous(meta), user);
        deliverDetached(mail, 'email_verify');
      } catch (err) {
        deps.logger.error({ err, userId: user.id }, 'could not create the email verification link');
      }
    },

    /** GET /api/auth/email/verify: mark the address verified, then auto-join (SPEC §7). */
    async verifyEmail(ctx: Ctx, token: string | undefined): Promise<UserRow> {
      if (!wellFormed(token)) throw invalidToken('verification');
      const nowIso = clock.now().toISOString();
      return db.transaction().execute(async (tx) => {
        // Two proofs, not one: the mailbox (the link) and the account (a session of it in this
        // browser). Otherwise a mailbox owner who clicks a link they did not ask for would verify
        // — and auto-join to their organization — an account someone else registered with their
        // address. Without the session the link is left unused and the browser is sent to sign in.
        const usable = await findUsableToken(tx, sha256(token), 'email_verify', nowIso);
        if (!usable || !usable.user_id) throw invalidToken('verification');
        const p = ctx.principal;
        if (!p || p.kind !== 'session' || p.user.id !== usable.user_id) {
          throw new AppError('UNAUTHENTICATED', 'Sign in to the account this link was sent for, then open the link again to finish verifying the email address', {
            signInUrl: `/sign-in?email=${encodeURIComponent(usable.email)}&returnTo=${encodeURIComponent(`/api/auth/email/verify?token=${token}`)}`,
          });
        }
        const row = await consumeOneTimeToken(tx, sha256(token), 'email_verify', nowIso);
        if (!row || !row.user_id) throw invalidToken('verification');
        const found = await findUserById(tx, row.user_id);
        if (!found || found.email !== row.email) throw invalidToken('verification');
        const user: UserRow = found.email_verified === 1 ? found : { ...found, email_verified: 1, updated_at: nowIso };
        if (found.email_verified !== 1) {
          await updateUser(tx, user.id, { email_verified: 1, updated_at: nowIso }, deps.sessionCache);
          await deps.audit.record(tx, ctx, { action: 'user.email_verified', target: { type: 'user', id: user.id }, metadata: { method: 'link' } });
        }
        await deps.joinRequests.autoJoin(tx, ctx, user);
        return user;
      });
    },

    /** Resolves once every mail handed to the mailer so far has been delivered or has failed (tests, shutdown). */
    async idle(): Promise<void> {
      while (pending.size) await Promise.allSettled([...pending]);
    },
  };
}

export type EmailLinkService = ReturnType<typeof createEmailLinkService>;
