import type { Clock } from '../clock.js';
import type { Ctx, RequestMeta } from '../context.js';
import type { Db } from '../db/database.js';
import type { UserRow } from '../db/schema.js';
import type { PasswordHasher } from '../crypto/passwords.js';
import { AppError, conflict } from '../http/errors.js';
import type { AccountLimits } from '../auth/account-limits.js';
import type { RateLimits } from '../http/rate-limit.js';
import { newId } from '../ids.js';
import type { AuditService } from '../audit/service.js';
import type { SessionService } from '../sessions/service.js';
import type { JoinRequestService } from '../organizations/join-requests.js';
import type { PolicyService } from '../policy/service.js';
import type { EmailLinkService } from '../auth/email-links.js';
import { isUniqueViolation } from '../db/database.js';
import { promoteToSuperadmin } from './promote.js';
import { ssoRequiredError } from '../policy/enforce.js';
import { findUserByEmail, insertUser, normalizeEmail, updateUser } from './store.js';
import type { SessionCacheDrops } from '../sessions/cache.js';

export interface UserView {
  id: string;
  email: string;
  name: string | null;
  emailVerified: boolean;
  isSuperadmin?: boolean;
  createdAt?: string;
}

export function userView(u: UserRow, full = false): UserView {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    emailVerified: u.email_verified === 1,
    ...(full ? { isSuperadmin: u.is_superadmin === 1, createdAt: u.created_at } : {}),
  };
}

const invalidCredentials = () => new AppError('INVALID_CREDENTIALS', 'Wrong email or password');

export function createAccountService(deps: {
  db: Db;
  clock: Clock;
  sessionCache: SessionCacheDrops;
  passwords: PasswordHasher;
  rateLimits: RateLimits;
  accountLimits: AccountLimits;
  audit: AuditService;
  sessions: SessionService;
  policy: PolicyService;
  joinRequests: JoinRequestService;
  emailLinks: Pick<EmailLinkService, 'sendEmailVerification'>;
}) {
  const { db, clock } = deps;

  const refusedSso = (meta: RequestMeta, userId: string | null, organizationId: string, rule: 'domain' | 'membership') =>
    deps.audit.record(db, { ...meta, principal: null }, {
      action: 'user.sign_in_refused',
      organizationId,
      target: userId ? { type: 'user', id: userId } : null,
      metadata: { method: 'password', reason: 'sso_required', rule },
    });

  /**
   * The verified-domain SSO rule of password sign-in (SPEC §12 "SSO_REQUIRED by domain is
   * public"): when the email's domain belongs to an organization requiring SSO, the answer is
   * 403 SSO_REQUIRED whatever the password, users created by SSO (no password) included — except
   * for the documented break-glass (SPEC §6): a platform superadmin whose right password is
   * given signs in. Everyone at the domain costs one argon2 run (a dummy one for non-superadmins),
   * so neither the answer nor its timing tells whether an address there is a superadmin; a wrong
   * superadmin password gets the same SSO_REQUIRED as anyone (audited as a failed sign-in).
   * Returns 'superadmin' when the break-glass applies, null when the domain requires nothing.
   */
  async function domainSsoGate(meta: RequestMeta, email: string, user: UserRow | undefined, password: string): Promise<'superadmin' | null> {
    const byDomain = await deps.policy.ssoRequirement(db, { email });
    if (!byDomain) return null;
    const breakGlass = user?.is_superadmin === 1 && user.password_hash !== null;
    const ok = breakGlass ? await deps.passwords.verify(user.password_hash!, password) : (await deps.passwords.verifyDummy(password), false);
    if (ok) return 'superadmin';
    if (breakGlass) {
      await deps.audit.record(db, { ...meta, principal: null }, { action: 'user.sign_in_failed', target: { type: 'user', id: user.id } });
    } else {
      await refusedSso(meta, user?.id ?? null, byDomain.organizationId, 'domain');
    }
    throw ssoRequiredError({ id: byDomain.organizationId, slug: byDomain.slug, name: byDomain.name }, email);
  }

  /** The session of a password sign-in that passed every check. */
  async function openPasswordSession(meta: RequestMeta, user: UserRow) {
    return db.transaction().execute(async (tx) => {
      const mfaState = await deps.policy.initialMfaState(tx, user.id);
      const { token, session } = await deps.sessions.create(tx, user, { authMethod: 'password', mfaState }, meta);
      await deps.joinRequests.autoJoin(tx, { ...meta, principal: { kind: 'session', user, session } }, user);
      await deps.audit.record(tx, { ...meta, principal: { kind: 'session', user, session } }, {
        action: 'user.signed_in',
        target: { type: 'user', id: user.id },
        metadata: { method: 'password' },
      });
      return { user, session, token };
    });
  }

  return {
    async signUp(meta: RequestMeta, input: { email: string; password: string; name?: string | undefined }) {
      await deps.rateLimits.consumeIp('sign-up:ip', meta.ip);
      const email = normalizeEmail(input.email);
      // SPEC §4.1: an organization that verified this domain and requires SSO owns these sign-ups.
      await deps.policy.assertNoSsoRequirement(db, { email });
      if (await findUserByEmail(db, email)) throw conflict('An account with this email already exists', { field: 'email' });
      const passwordHash = await deps.passwords.hash(input.password);
      const now = clock.now().toISOString();
      let created;
      try {
        created = await db.transaction().execute(async (tx) => {
          const user = await insertUser(tx, { id: newId(), email, name: input.name?.trim() || null, passwordHash, emailVerified: false, now });
          const { token, session } = await deps.sessions.create(tx, user, { authMethod: 'password', mfaState: 'none' }, meta);
          await deps.audit.record(tx, { ...meta, principal: { kind: 'session', user, session } }, {
            action: 'user.signed_up',
            target: { type: 'user', id: user.id },
          });
          return { user, session, token };
        });
      } catch (e) {
        if (isUniqueViolation(e)) throw conflict('An account with this email already exists', { field: 'email' });
        throw e;
      }
      // SPEC §4.1: the verification link is also sent at sign-up (a delivery failure is logged, not fatal).
      await deps.emailLinks.sendEmailVerification(meta, created.user);
      return created;
    },

    /**
     * Password sign-in. An unknown email, an account without a password and a wrong password
     * all answer INVALID_CREDENTIALS after one argon2 verification, so neither the answer nor
     * its timing tells whether the account exists.
     */
    async signIn(meta: RequestMeta, input: { email: string; password: string }) {
      const email = normalizeEmail(input.email);
      await deps.rateLimits.consumeIp('sign-in:ip', meta.ip);
      const attempt = await deps.accountLimits.consume('sign-in', meta, { email });
      const user = await findUserByEmail(db, email);
      // SPEC §12: the SSO requirement of the email's verified domain is public (discovery says as
      // much), so it answers whatever the password — before it is checked (see domainSsoGate).
      const domainGate = await domainSsoGate(meta, email, user, input.password);
      if (domainGate === 'superadmin') {
        await deps.accountLimits.succeeded(attempt);
        return openPasswordSession(meta, user!);
      }
      const ok = user?.password_hash
        ? await deps.passwords.verify(user.password_hash, input.password)
        : await deps.passwords.verifyDummy(input.password);
      if (!user || !ok) {
        await deps.audit.record(db, { ...meta, principal: null }, {
          action: 'user.sign_in_failed',
          target: user ? { type: 'user', id: user.id } : null,
        });
        throw invalidCredentials();
      }
      await deps.accountLimits.succeeded(attempt);
      // A requirement that comes from membership is checked only after the password proved who
      // this is, so an anonymous caller cannot learn someone's memberships. Superadmins keep the
      // password path (SPEC §6: they must always be able to lower a policy).
      if (user.is_superadmin !== 1) {
        // The domain's requirement was asked above (domainSsoGate): only memberships are left.
        const byMembership = await deps.policy.ssoRequirementByMembership(db, { email, userId: user.id });
        if (byMembership) {
          await refusedSso(meta, user.id, byMembership.organizationId, 'membership');
          throw ssoRequiredError({ id: byMembership.organizationId, slug: byMembership.slug, name: byMembership.name }, email);
        }
      }
      return openPasswordSession(meta, user);
    },

    async updateProfile(ctx: Ctx, user: UserRow, input: { name?: string | null | undefined }): Promise<UserRow> {
      const now = clock.now().toISOString();
      const name = input.name === undefined ? user.name : input.name?.trim() || null;
      await db.transaction().execute(async (tx) => {
        await updateUser(tx, user.id, { name, updated_at: now }, deps.sessionCache);
        await deps.audit.record(tx, ctx, { action: 'user.updated', target: { type: 'user', id: user.id }, metadata: { name } });
      });
      return { ...user, name, updated_at: now };
    },

    /**
     * CLI: create a platform superadmin, or promote an existing account (setting its password).
     * Promotion first ends every session and API key of the account, and claims an unverified
     * one (see promote.ts): nothing its earlier holder set up becomes a superadmin's.
     */
    async createSuperadmin(input: { email: string; password: string; name?: string }): Promise<{ user: UserRow; created: boolean; revoked: { sessions: number; apiKeys: number } }> {
      const email = normalizeEmail(input.email);
      const passwordHash = await deps.passwords.hash(input.password);
      const now = clock.now().toISOString();
      const cli: Ctx = { principal: null, ip: null, userAgent: null, requestId: null };
      return db.transaction().execute(async (tx) => {
        const existing = await findUserByEmail(tx, email);
        if (existing) {
          const { user, metadata } = await promoteToSuperadmin(tx, { service: deps.audit, ctx: cli, sessionCache: deps.sessionCache }, existing, passwordHash, now);
          await deps.audit.record(tx, cli, { action: 'user.promoted_superadmin', target: { type: 'user', id: user.id }, metadata });
          return { user, created: false, revoked: { sessions: Number(metadata.sessionsRevoked), apiKeys: Number(metadata.apiKeysRevoked) } };
        }
        const user = await insertUser(tx, { id: newId(), email, name: input.name ?? null, passwordHash, emailVerified: true, superadmin: true, now });
        await deps.audit.record(tx, cli, { action: 'user.created_superadmin', target: { type: 'user', id: user.id } });
        return { user, created: true, revoked: { sessions: 0, apiKeys: 0 } };
      });
    },
  };
}

export type AccountService = ReturnType<typeof createAccountService>;
