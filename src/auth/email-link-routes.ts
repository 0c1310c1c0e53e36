import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Config } from '../config.js';
import { AppError } from '../http/errors.js';
import { errorBody, ok, responses, wantsJson } from '../http/envelope.js';
import { ctxOf, requireAuth, type AppEnv } from '../http/middleware.js';
import { Email, Empty, Password, User } from '../http/schemas.js';
import { linkProblemPage, emailVerifiedPage } from '../pages/email-links.js';
import { sendPage } from '../pages/layout.js';
import { resetPasswordPage } from '../pages/reset-password.js';
import type { Services } from '../services.js';
import { userView } from '../users/service.js';
import { setSessionCookie } from './routes.js';
import { MAGIC_LINK_SENT, RESET_REQUESTED, resetPasswordPagePath } from './email-links.js';

const MagicLinkBody = z
  .object({
    email: Email,
    returnTo: z.string().max(2048).optional().openapi({ description: 'Where to land after sign-in: a relative path or a URL on a trusted origin (default /)' }),
  })
  .strict();
const ForgotBody = z.object({ email: Email }).strict();
const ResetBody = z.object({ token: z.string().min(1).max(256), password: Password }).strict();
const TokenQuery = z.object({ token: z.string().max(256).optional() });

/** JSON for API clients (Accept: application/json without text/html), HTML for browsers. */

const TITLES: Partial<Record<string, string>> = {
  INVALID_TOKEN: 'This link is used or expired',
  SSO_REQUIRED: 'Your organization requires single sign-on',
  RATE_LIMITED: 'Too many attempts',
};

/** Failure of a link a browser opened from an email: the envelope for JSON clients, else a small page. Same status. */
function linkFailure(c: Context<AppEnv>, err: unknown): Response | Promise<Response> {
  if (!(err instanceof AppError) || err.status >= 500) throw err;
  if (wantsJson(c)) return c.json(errorBody(err), err.status as ContentfulStatusCode);
  const ssoUrl = err.code === 'SSO_REQUIRED' && typeof err.details?.ssoUrl === 'string' ? err.details.ssoUrl : null;
  return sendPage(
    c,
    linkProblemPage({
      title: TITLES[err.code] ?? 'This link cannot be used',
      message: err.code === 'INVALID_TOKEN' ? 'This link is invalid, already used or expired. Links work once and only for a short time: ask for a new one from the sign-in page.' : err.message,
      action: ssoUrl ? { href: ssoUrl, text: 'Continue with single sign-on' } : null,
      requestId: c.get('requestId'),
    }),
    err.status as ContentfulStatusCode,
  );
}

export function registerEmailLinkRoutes(app: OpenAPIHono<AppEnv>, services: Services, config: Config) {
  const tags = ['Sign-in and sessions'];
  const htmlOrJson = { description: 'HTML page for a browser, or the JSON error envelope with Accept: application/json' };

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/auth/magic-link',
      tags,
      summary: 'Email a one-time sign-in link (15 minutes); the same answer whether or not the account exists',
      request: { body: { required: true, content: { 'application/json': { schema: MagicLinkBody } } } },
      responses: responses(Empty, 'Accepted (a link is mailed to the address)', [400, 403, 429]),
    }),
    async (c) => {
      await services.emailLinks.requestMagicLink(ctxOf(c), c.req.valid('json'));
      return ok(c, null, { message: MAGIC_LINK_SENT });
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/auth/magic-link/verify',
      tags,
      summary: 'Use a sign-in link: session cookie and 302 to returnTo (the account is created if new)',
      request: { query: TokenQuery },
      responses: {
        302: { description: 'Signed in (cookie set); redirect to returnTo' },
        400: htmlOrJson,
        403: htmlOrJson,
      },
    }),
    async (c) => {
      try {
        const result = await services.emailLinks.verifyMagicLink(ctxOf(c), c.req.valid('query').token);
        setSessionCookie(c, config, result.token);
        return c.redirect(result.returnTo, 302);
      } catch (e) {
        return linkFailure(c, e);
      }
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/auth/password/forgot',
      tags,
      summary: 'Email a password reset link (15 minutes); the same answer whether or not the account exists',
      request: { body: { required: true, content: { 'application/json': { schema: ForgotBody } } } },
      responses: responses(Empty, 'Accepted', [400, 403, 429]),
    }),
    async (c) => {
      await services.emailLinks.forgotPassword(ctxOf(c), c.req.valid('json'));
      return ok(c, null, { message: RESET_REQUESTED });
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/auth/password/reset',
      tags,
      summary: 'Set a new password with the token from the reset link; signs out every session (does not sign in)',
      request: { body: { required: true, content: { 'application/json': { schema: ResetBody } } } },
      responses: responses(Empty, 'Password changed; sign in with it', [400, 403]),
    }),
    async (c) => {
      await services.emailLinks.resetPassword(ctxOf(c), c.req.valid('json'));
      return ok(c, null, { message: 'Password changed. Every session was signed out; sign in with the new password.' });
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/auth/email/verify-request',
      tags,
      summary: 'Email a verification link (24 hours) to the signed-in user',
      responses: responses(z.object({ alreadyVerified: z.boolean() }), 'Sent, or already verified', [401, 403]),
    }),
    async (c) => {
      const p = requireAuth(c);
      const res = await services.emailLinks.requestEmailVerification(ctxOf(c), p.user);
      return ok(c, res, { message: res.alreadyVerified ? 'Your email address is already verified' : `A verification link was sent to ${p.user.email}` });
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/auth/email/verify',
      tags,
      summary: 'Use an email verification link, signed in as its account: marks the address verified (then auto-join applies)',
      request: { query: TokenQuery },
      responses: {
        ...responses(z.object({ user: User }), 'Verified (JSON clients)', [400]),
        302: { description: 'Verified; redirect to / (browsers). Without a session of the account the link is for: redirect to /sign-in, which comes back here' },
        400: htmlOrJson,
      },
    }),
    async (c) => {
      try {
        const user = await services.emailLinks.verifyEmail(ctxOf(c), c.req.valid('query').token);
        if (wantsJson(c)) return ok(c, { user: userView(user) }, { message: 'Email address verified' });
        c.header('Location', '/');
        return sendPage(c, emailVerifiedPage('/'), 302);
      } catch (e) {
        // Not signed in as the account the link is for: a browser signs in first and comes back.
        if (e instanceof AppError && e.code === 'UNAUTHENTICATED' && typeof e.details?.signInUrl === 'string' && !wantsJson(c)) {
          c.header('Cache-Control', 'no-store');
          return c.redirect(e.details.signInUrl, 302);
        }
        return linkFailure(c, e);
      }
    },
  );

  // The page the reset mail links to (its script is the asset /assets/reset-password.js).
  app.get(resetPasswordPagePath, (c) => sendPage(c, resetPasswordPage()));
}
