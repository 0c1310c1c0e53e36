import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Config } from '../config.js';
import { AppError } from '../http/errors.js';
import { errorBody, ok, responses, wantsJson } from '../http/envelope.js';
import { ctxOf, requireAuth, type AppEnv } from '../http/middleware.js';
import { Email, Empty, Password, Session, User } from '../http/schemas.js';
import { linkProblemPage, emailVerifiedPage, magicLinkConfirmPage } from '../pages/email-links.js';
import { sendPage } from '../pages/layout.js';
import { resetPasswordPage } from '../pages/reset-password.js';
import type { Services } from '../services.js';
import { userView } from '../users/service.js';
import { setSessionCookie } from './routes.js';
import { MAGIC_LINK_SENT, magicLinkVerifyPath, RESET_REQUESTED, resetPasswordPagePath } from './email-links.js';
import { sessionInfo } from '../sessions/service.js';

const MagicLinkBody = z
  .object({
    email: Email,
    returnTo: z.string().max(2048).optional().openapi({ description: 'Where to land after sign-in: a relative path or a URL on a trusted origin (default /)' }),
  })
  .strict();
const ForgotBody = z.object({ email: Email }).strict();
const ResetBody = z.object({ token: z.string().min(1).max(256), password: Password }).strict();
const TokenQuery = z.object({ token: z.string().max(256).optional() });
const MagicLinkVerifyBody = z.object({ token: z.string().min(1).max(256) }).strict();

/** JSON for API clients (Accept: application/json without text/html), HTML for browsers. */

const TITLES: Partial<Record<string, string>> = {
  INVALID_TOKEN: 'This link is used or expired',
  SSO_REQUIRED: 'Your organization requires single sign-on',
  CSRF_REJECTED: 'This request came from another site',
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
      path: magicLinkVerifyPath,
      tags,
      summary: 'Open a sign-in link: the "Sign in as …" page (JSON clients: the address). Spends nothing — the sign-in is the POST',
      request: { query: TokenQuery },
      responses: {
        ...responses(z.object({ email: z.string(), expiresAt: z.string() }), 'The link is usable: the address it signs in as (JSON clients); browsers get the confirmation page', [400, 403]),
        400: htmlOrJson,
        403: htmlOrJson,
      },
    }),
    async (c) => {
      const token = c.req.valid('query').token;
      try {
        const preview = await services.emailLinks.previewMagicLink(token);
        if (wantsJson(c)) return ok(c, preview, { message: `POST {"token"} to ${magicLinkVerifyPath} to sign in as ${preview.email}` });
        return sendPage(c, magicLinkConfirmPage({ email: preview.email, token: token!, action: magicLinkVerifyPath }));
      } catch (e) {
        return linkFailure(c, e);
      }
    },
  );

  /**
   * A browser-origin POST must come from a trusted Origin: the csrf middleware refuses a foreign one;
   * here `Origin: null` (an opaque origin: a sandboxed frame, a no-referrer page elsewhere) is
   * refused too, since the hosted confirmation page always sends its real origin (login CSRF: a
   * stranger's page must not sign the browser into the stranger's account).
   */
  const refuseOpaqueOrigin = (c: Context<AppEnv>) => {
    if (c.req.header('origin') === 'null') throw new AppError('CSRF_REJECTED', 'Cross-site request refused: the Origin is not trusted');
  };

  // The confirmation page's form (application/x-www-form-urlencoded): cookie and 303 to returnTo,
  // or the link's problem page. JSON bodies go on to the documented route below.
  app.post(magicLinkVerifyPath, async (c, next) => {
    if (/application\/json/i.test(c.req.header('content-type') ?? '')) return next();
    try {
      refuseOpaqueOrigin(c);
      const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
      const token = typeof form.token === 'string' ? form.token : undefined;
      const result = await services.emailLinks.verifyMagicLink(ctxOf(c), token);
      setSessionCookie(c, config, result.token);
      c.header('Cache-Control', 'no-store');
      return c.redirect(result.returnTo, 303);
    } catch (e) {
      return linkFailure(c, e);
    }
  });

  app.openapi(
    createRoute({
      method: 'post',
      path: magicLinkVerifyPath,
      tags,
      summary: 'Use a sign-in link: consumes the token once and signs in (session cookie); creates the account if the address is new. The confirmation page posts the same as a form and gets 303 to returnTo',
      request: { body: { required: true, content: { 'application/json': { schema: MagicLinkVerifyBody } } } },
      responses: responses(z.object({ user: User, session: Session, returnTo: z.string() }), 'Signed in (cookie set)', [400, 403]),
    }),
    async (c) => {
      refuseOpaqueOrigin(c);
      const result = await services.emailLinks.verifyMagicLink(ctxOf(c), c.req.valid('json').token);
      setSessionCookie(c, config, result.token);
      return ok(c, { user: userView(result.user), session: sessionInfo(result.session), returnTo: result.returnTo }, { message: 'Signed in' });
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
