import { randomBytes } from 'node:crypto';
import type { AuditService } from '../audit/service.js';
import type { Clock } from '../clock.js';
import type { Ctx } from '../context.js';
import type { KeyRing } from '../crypto/keyring.js';
import { sealContext } from '../crypto/sealed-columns.js';
import { sha256 } from '../crypto/tokens.js';
import type { Db } from '../db/database.js';
import type { SessionRow, UserRow } from '../db/schema.js';
import { AppError, conflict, notFound } from '../http/errors.js';
import type { AccountLimits } from '../auth/account-limits.js';
import type { RateLimits } from '../http/rate-limit.js';
import { newId } from '../ids.js';
import type { SessionService } from '../sessions/service.js';
import {
  claimTimeStep, confirmFactor, countUnusedRecoveryCodes, deleteFactors, deleteRecoveryCodes, deleteUnconfirmedFactors,
  findConfirmedFactor, findPendingFactor, insertFactor, insertRecoveryCodes, lockUserForMfa, useRecoveryCode,
  type MfaFactorRow, type RecoveryCodeRow,
} from './store.js';
import { base32Decode, base32Encode, generateTotpSecret, matchingSteps, otpauthUrl } from './totp.js';

export const RECOVERY_CODE_COUNT = 10;
/** 10 random bytes = 80 bits, shown as 16 Base32 characters in four groups: `abcd-efgh-ijkl-mnop`. */
const RECOVERY_CODE_BYTES = 10;
const SECRET_COLUMN = { table: 'mfa_factors', column: 'secret_enc' } as const;

/** A new recovery code, as shown to the user. */
export function generateRecoveryCode(): string {
  return base32Encode(randomBytes(RECOVERY_CODE_BYTES)).toLowerCase().match(/.{4}/g)!.join('-');
}

/** The canonical form that is hashed: lower case, without the group separators or spaces. */
export function normalizeRecoveryCode(code: string): string {
  return code.replace(/[\s-]/g, '').toLowerCase();
}

/** A TOTP code as typed: apps show it as `123 456`. */
const normalizeTotpCode = (code: string) => code.replace(/\s/g, '');

export const hashRecoveryCode = (code: string) => sha256(normalizeRecoveryCode(code));

export interface MfaStatus {
  totp: { enrolled: boolean; confirmedAt: string | null; enrollmentPending: boolean };
  recoveryCodesRemaining: number;
}

const invalidCode = (message = 'The code is wrong or has expired', reason = 'invalid') =>
  new AppError('MFA_CODE_INVALID', message, { reason });

export function createMfaService(deps: {
  db: Db;
  clock: Clock;
  keyring: KeyRing;
  rateLimits: RateLimits;
  accountLimits: AccountLimits;
  audit: AuditService;
  sessions: SessionService;
}) {
  const { db, clock, keyring } = deps;

  const secretOf = (factor: MfaFactorRow) => base32Decode(keyring.decrypt(factor.secret_enc, sealContext(SECRET_COLUMN, factor.id)));

  function newRecoveryCodes(userId: string, now: string): { codes: string[]; rows: RecoveryCodeRow[] } {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, generateRecoveryCode);
    const rows = codes.map((code) => ({ id: newId(), user_id: userId, code_hash: hashRecoveryCode(code), used_at: null, created_at: now }));
    return { codes, rows };
  }

  function requireMfaComplete(session: SessionRow, what: string) {
    if (session.mfa_state !== 'complete') {
      throw new AppError('MFA_REQUIRED', `Verify with your authenticator app or a recovery code first (POST /api/auth/mfa/verify) to ${what}`);
    }
  }

  return {
    async status(userId: string): Promise<MfaStatus> {
      const [confirmed, pending, remaining] = await Promise.all([
        findConfirmedFactor(db, userId),
        findPendingFactor(db, userId),
        countUnusedRecoveryCodes(db, userId),
      ]);
      return {
        totp: { enrolled: confirmed !== undefined, confirmedAt: confirmed?.confirmed_at ?? null, enrollmentPending: pending !== undefined && !confirmed },
        recoveryCodesRemaining: confirmed ? remaining : 0,
      };
    },

    /**
     * Start (or restart) a TOTP enrollment: a new secret, sealed at rest, in an unconfirmed
     * factor that replaces any earlier unconfirmed one. Refused while a confirmed factor exists.
     */
    async enroll(ctx: Ctx, user: UserRow): Promise<{ secret: string; otpauthUrl: string; qrCodeSvg: string }> {
      const secret = generateTotpSecret();
      const id = newId();
      await db.transaction().execute(async (tx) => {
        await lockUserForMfa(tx, user.id);
        if (await findConfirmedFactor(tx, user.id)) {
          throw conflict('A TOTP factor is already enabled; disable it first (DELETE /api/auth/mfa/totp)');
        }
        await deleteUnconfirmedFactors(tx, user.id);
        await insertFactor(tx, {
          id,
          user_id: user.id,
          type: 'totp',
          secret_enc: keyring.encrypt(secret, sealContext(SECRET_COLUMN, id)),
          confirmed_at: null,
          last_used_step: null,
          created_at: clock.now().toISOString(),
        });
        await deps.audit.record(tx, ctx, { action: 'mfa.enrollment_started', target: { type: 'mfa_factor', id }, metadata: { type: 'totp' } });
      });
      const url = otpauthUrl(user.email, secret);
      return { secret, otpauthUrl: url, qrCodeSvg: await (await import('qrcode')).default.toString(url, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 }) };
    },

    /**
     * Finish the enrollment with a code from the app: the factor becomes confirmed (the code's
     * time step is consumed), ten recovery codes replace any earlier ones (only their SHA-256 is
     * stored; the plain codes are returned this once), and the current session is MFA-complete.
     */
    async confirm(ctx: Ctx, user: UserRow, session: SessionRow, code: string): Promise<{ recoveryCodes: string[] }> {
      return db.transaction().execute(async (tx) => {
        await lockUserForMfa(tx, user.id);
        if (await findConfirmedFactor(tx, user.id)) throw conflict('A TOTP factor is already enabled');
        const pending = await findPendingFactor(tx, user.id);
        if (!pending) throw conflict('No TOTP enrollment in progress; start one with POST /api/auth/mfa/totp/enroll');
        const step = matchingSteps(secretOf(pending), normalizeTotpCode(code), clock.now())[0];
        if (step === undefined) throw invalidCode('The code does not match the secret; check the app and the device clock');
        const now = clock.now().toISOString();
        if (!(await confirmFactor(tx, pending.id, step, now))) throw conflict('The enrollment changed meanwhile; start again');
        await deleteUnconfirmedFactors(tx, user.id);
        await deleteRecoveryCodes(tx, user.id);
        const { codes, rows } = newRecoveryCodes(user.id, now);
        await insertRecoveryCodes(tx, rows);
        await deps.sessions.markMfaComplete(tx, session.id);
        // Sessions opened before the factor existed never faced a second step (one may be a
        // stolen one): they end, and the next sign-in asks for the code.
        const otherSessionsRevoked = await deps.sessions.revokeAllForUser(tx, ctx, user.id, 'mfa_enrolled', session.id);
        await deps.audit.record(tx, ctx, { action: 'mfa.enrolled', target: { type: 'mfa_factor', id: pending.id }, metadata: { type: 'totp', otherSessionsRevoked } });
        return { recoveryCodes: codes };
      });
    },

    /**
     * Second step of a sign-in: a TOTP code (±1 step; each time step accepted once, never an
     * older one after a newer one) or an unused recovery code (then used up). Rate-limited per
     * account; success resets the limit and makes the current session MFA-complete.
     */
    async verify(ctx: Ctx, user: UserRow, session: SessionRow, input: { code?: string | undefined; recoveryCode?: string | undefined }): Promise<SessionRow> {
      await deps.rateLimits.consumeIp('mfa-verify:ip', ctx.ip);
      const attempt = await deps.accountLimits.consume('mfa-verify', ctx, { userId: user.id });
      const factor = await findConfirmedFactor(db, user.id);
      if (!factor) throw conflict('This account has no TOTP factor; enroll one with POST /api/auth/mfa/totp/enroll');
      const method = input.code !== undefined ? 'totp' : 'recovery_code';
      const failed = async (error: AppError, reason: string): Promise<never> => {
        await deps.audit.record(db, ctx, { action: 'mfa.verify_failed', target: { type: 'user', id: user.id }, metadata: { method, reason } });
        throw error;
      };
      const now = clock.now().toISOString();

      if (input.code !== undefined) {
        const steps = matchingSteps(secretOf(factor), normalizeTotpCode(input.code), clock.now());
        if (steps.length === 0) return failed(invalidCode(), 'invalid');
        const last = factor.last_used_step;
        const step = steps.find((s) => last === null || s > last);
        const replayed = invalidCode('This code was already used; wait for the next one', 'replayed');
        if (step === undefined) return failed(replayed, 'replayed');
        const accepted = await db.transaction().execute(async (tx) => {
          if (!(await claimTimeStep(tx, factor.id, step))) return false;
          await deps.sessions.markMfaComplete(tx, session.id);
          await deps.audit.record(tx, ctx, { action: 'mfa.verified', target: { type: 'session', id: session.id }, metadata: { method } });
          return true;
        });
        if (!accepted) return failed(replayed, 'replayed');
      } else {
        const hash = hashRecoveryCode(input.recoveryCode ?? '');
        const accepted = await db.transaction().execute(async (tx) => {
          if (!(await useRecoveryCode(tx, user.id, hash, now))) return false;
          const remaining = await countUnusedRecoveryCodes(tx, user.id);
          await deps.sessions.markMfaComplete(tx, session.id);
          await deps.audit.record(tx, ctx, { action: 'mfa.recovery_code_used', target: { type: 'user', id: user.id }, metadata: { remaining } });
          await deps.audit.record(tx, ctx, { action: 'mfa.verified', target: { type: 'session', id: session.id }, metadata: { method } });
          return true;
        });
        if (!accepted) return failed(invalidCode('The recovery code is unknown or was already used'), 'invalid');
      }
      await deps.accountLimits.succeeded(attempt);
      return { ...session, mfa_state: 'complete', mfa_completed_at: now };
    },

    /**
     * Remove the TOTP factor and the recovery codes. A confirmed factor can only be removed from
     * a session that completed MFA; an enrollment that was never confirmed can always be dropped.
     */
    async disable(ctx: Ctx, user: UserRow, session: SessionRow): Promise<void> {
      await db.transaction().execute(async (tx) => {
        await lockUserForMfa(tx, user.id);
        const confirmed = await findConfirmedFactor(tx, user.id);
        if (confirmed) requireMfaComplete(session, 'disable MFA');
        const removed = await deleteFactors(tx, user.id);
        if (removed === 0) throw notFound('TOTP factor');
        await deleteRecoveryCodes(tx, user.id);
        await deps.audit.record(tx, ctx, {
          action: confirmed ? 'mfa.disabled' : 'mfa.enrollment_cancelled',
          target: { type: 'user', id: user.id },
          metadata: { type: 'totp' },
        });
      });
    },

    /** Replace every recovery code with ten new ones (shown once); needs an MFA-complete session. */
    async regenerateRecoveryCodes(ctx: Ctx, user: UserRow, session: SessionRow): Promise<{ recoveryCodes: string[] }> {
      return db.transaction().execute(async (tx) => {
        await lockUserForMfa(tx, user.id);
        if (!(await findConfirmedFactor(tx, user.id))) throw conflict('MFA is not enabled; enroll a TOTP factor first');
        requireMfaComplete(session, 'replace the recovery codes');
        await deleteRecoveryCodes(tx, user.id);
        const { codes, rows } = newRecoveryCodes(user.id, clock.now().toISOString());
        await insertRecoveryCodes(tx, rows);
        await deps.audit.record(tx, ctx, { action: 'mfa.recovery_codes_regenerated', target: { type: 'user', id: user.id }, metadata: { count: codes.length } });
        return { recoveryCodes: codes };
      });
    },
  };
}

export type MfaService = ReturnType<typeof createMfaService>;
