import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Principal } from '../context.js';
import { AppError } from '../http/errors.js';
import { ok, responses } from '../http/envelope.js';
import { ctxOf, type AppEnv } from '../http/middleware.js';
import { Empty, Session, User } from '../http/schemas.js';
import { sessionInfo } from '../sessions/service.js';
import type { Services } from '../services.js';
import { userView } from '../users/service.js';

const TAGS = ['Multi-factor authentication'];

const TotpCode = z
  .string()
  .regex(/^\d{3} ?\d{3}$/, 'must be the 6-digit code from the authenticator app')
  .openapi({ example: '123456' });

const ConfirmBody = z.object({ code: TotpCode }).strict();

const VerifyBody = z
  .object({
    code: TotpCode.optional(),
    recoveryCode: z.string().trim().min(1).max(64).optional().openapi({ example: 'abcd-efgh-ijkl-mnop' }),
  })
  .strict()
  .refine((b) => (b.code === undefined) !== (b.recoveryCode === undefined), { message: 'send exactly one of code or recoveryCode' });

const MfaStatus = z
  .object({
    totp: z.object({
      enrolled: z.boolean().openapi({ description: 'A confirmed TOTP factor exists' }),
      confirmedAt: z.string().nullable(),
      enrollmentPending: z.boolean().openapi({ description: 'An enrollment was started and not confirmed yet' }),
    }),
    recoveryCodesRemaining: z.number().int(),
  })
  .openapi('MfaStatus');

const Enrollment = z
  .object({
    secret: z.string().openapi({ description: 'Base32 TOTP secret (160 bits), for manual entry in the app' }),
    otpauthUrl: z.string().openapi({ description: 'otpauth://totp/… URI for a QR code' }),
    qrCodeSvg: z.string().openapi({ description: 'That URI as a QR code, an SVG document made on the server (show it as an <img> data: URL; no script needed)' }),
  })
  .openapi('TotpEnrollment');

const RecoveryCodes = z
  .object({ recoveryCodes: z.array(z.string()).openapi({ description: 'Ten single-use codes, shown only this once' }) })
  .openapi('RecoveryCodes');

/**
 * MFA is a matter between a person at a browser and their authenticator: every route here needs
 * a session. An API key is refused (it is not subject to MFA and must not change a user's factors).
 */
function requireSession(c: Context<AppEnv>): Extract<Principal, { kind: 'session' }> {
  const p = c.get('principal');
  if (!p) throw new AppError('UNAUTHENTICATED', 'Sign in first');
  if (p.kind !== 'session') {
    throw new AppError('FORBIDDEN', 'MFA endpoints need a signed-in browser session; an API key cannot enroll, verify or disable MFA');
  }
  return p;
}

/** Answers that carry a secret or recovery codes must not be stored by any cache. */
const noStore = (c: Context) => c.header('Cache-Control', 'no-store');

export function registerMfaRoutes(app: OpenAPIHono<AppEnv>, services: Services) {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/auth/mfa',
      tags: TAGS,
      summary: 'MFA status of the signed-in user',
      responses: responses(MfaStatus, 'MFA status', [401, 403]),
    }),
    async (c) => ok(c, await services.mfa.status(requireSession(c).user.id)),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/auth/mfa/totp/enroll',
      tags: TAGS,
      summary: 'Start a TOTP enrollment (replaces an unconfirmed one)',
      description: 'Returns the secret and an otpauth:// URI once. `409 CONFLICT` when a confirmed factor exists (disable it first).',
      responses: responses(Enrollment, 'Enrollment started; confirm it with a code', [401, 403, 409]),
    }),
    async (c) => {
      const p = requireSession(c);
      const enrollment = await services.mfa.enroll(ctxOf(c), p.user);
      noStore(c);
      return ok(c, enrollment, { message: 'Scan the QR code or enter the secret, then confirm with a code' });
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/auth/mfa/totp/confirm',
      tags: TAGS,
      summary: 'Confirm the TOTP enrollment with a code; returns ten recovery codes once',
      description: 'Also makes the current session MFA-complete. `400 MFA_CODE_INVALID` for a wrong code.',
      request: { body: { required: true, content: { 'application/json': { schema: ConfirmBody } } } },
      responses: responses(RecoveryCodes, 'MFA enabled', [400, 401, 403, 409]),
    }),
    async (c) => {
      const p = requireSession(c);
      const result = await services.mfa.confirm(ctxOf(c), p.user, p.session, c.req.valid('json').code);
      noStore(c);
      return ok(c, result, { message: 'MFA enabled; store the recovery codes now, they are not shown again' });
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/auth/mfa/verify',
      tags: TAGS,
      summary: 'Complete MFA for the current session with a TOTP code or a recovery code',
      description: 'Send exactly one of `code` and `recoveryCode`. Rate-limited per account (`429` with `Retry-After`).',
      request: { body: { required: true, content: { 'application/json': { schema: VerifyBody } } } },
      responses: responses(z.object({ user: User, session: Session }), 'MFA complete', [400, 401, 403, 409, 429]),
    }),
    async (c) => {
      const p = requireSession(c);
      const body = c.req.valid('json');
      const session = await services.mfa.verify(ctxOf(c), p.user, p.session, {
        code: body.code,
        recoveryCode: body.recoveryCode,
      });
      return ok(c, { user: userView(p.user), session: sessionInfo(session) }, { message: 'MFA complete' });
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/auth/mfa/totp',
      tags: TAGS,
      summary: 'Disable TOTP and delete the recovery codes',
      description: 'Needs a session whose MFA is complete (`403 MFA_REQUIRED` otherwise). An unconfirmed enrollment can always be cancelled.',
      responses: responses(Empty, 'MFA disabled', [401, 403, 404]),
    }),
    async (c) => {
      const p = requireSession(c);
      await services.mfa.disable(ctxOf(c), p.user, p.session);
      return ok(c, null, { message: 'MFA disabled' });
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/auth/mfa/recovery-codes',
      tags: TAGS,
      summary: 'Replace all recovery codes with ten new ones (shown once)',
      description: 'Needs a session whose MFA is complete (`403 MFA_REQUIRED` otherwise).',
      responses: responses(RecoveryCodes, 'New recovery codes', [401, 403, 409]),
    }),
    async (c) => {
      const p = requireSession(c);
      const result = await services.mfa.regenerateRecoveryCodes(ctxOf(c), p.user, p.session);
      noStore(c);
      return ok(c, result, { message: 'New recovery codes; the old ones no longer work' });
    },
  );
}
