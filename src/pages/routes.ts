import type { OpenAPIHono } from '@hono/zod-openapi';
import { getCookie } from 'hono/cookie';
import type { Config } from '../config.js';
import { AppError } from '../http/errors.js';
import { checkReturnTo } from '../http/return-to.js';
import { ctxOf, type AppEnv } from '../http/middleware.js';
import { Email } from '../http/schemas.js';
import type { Services } from '../services.js';
import { SESSION_COOKIE } from '../sessions/service.js';
import { loadAssets } from './assets.js';
import { sendPage } from './layout.js';
import { refusedReturnToPage, signInPage, type SignInView } from './sign-in.js';
import { signUpPage } from './sign-up.js';
import { invitationPage, invitationUnavailablePage } from './invitation.js';
import { signedOutPage } from './signed-out.js';
import { SIGNED_OUT_PATH } from '../logout/urls.js';
import { registerDashboardPages } from './dashboard/routes.js';
import { registerSetupPages } from './setup/routes.js';

/** Paths of the hosted pages (outside /api: no JSON envelope, no API middleware). */
export const PAGE_PATHS = { signIn: '/sign-in', signUp: '/sign-up', assets: '/assets', invitation: '/invitations' } as const;

const text = (v: string | undefined, max: number) => (v ?? '').trim().slice(0, max);

/**
 * The hosted sign-in and sign-up pages (SPEC §5) and their static assets. Each page validates
 * `returnTo` first (SPEC §11): an untrusted one is a 400 page, never silently replaced.
 */
export function registerPageRoutes(app: OpenAPIHono<AppEnv>, services: Services, config: Config) {
  const assets = loadAssets();

  app.get(`${PAGE_PATHS.assets}/:file`, (c) => {
    const asset = assets.get(c.req.param('file'));
    if (!asset) throw new AppError('NOT_FOUND', 'No such asset');
    c.header('ETag', asset.etag);
    // Revalidate every time: a deploy changes a script at once, and a 304 costs one round trip.
    c.header('Cache-Control', 'no-cache');
    if (c.req.header('if-none-match') === asset.etag) return c.body(null, 304);
    c.header('Content-Type', asset.contentType);
    return c.body(asset.body);
  });

  /** The validated returnTo, or the 400 page for an untrusted one. */
  const returnToOr400 = (raw: string | undefined, title: string): { ok: true; returnTo: string } | { ok: false; page: ReturnType<typeof refusedReturnToPage> } => {
    try {
      return { ok: true, returnTo: checkReturnTo(raw, config.trustedOrigins) };
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      return { ok: false, page: refusedReturnToPage(title, e.message) };
    }
  };

  app.get(PAGE_PATHS.signIn, async (c) => {
    const checked = returnToOr400(c.req.query('returnTo'), 'Sign in');
    if (!checked.ok) return sendPage(c, checked.page, 400);
    const { returnTo } = checked;

    // Already signed in: straight on; a session still waiting for its second factor gets the MFA step.
    const token = getCookie(c, SESSION_COOKIE);
    const current = token ? await services.sessions.authenticate(token) : null;
    if (current && current.session.mfa_state !== 'pending') {
      c.header('Cache-Control', 'no-store');
      return c.redirect(returnTo, 302);
    }
    if (current) return sendPage(c, signInPage({ returnTo, email: current.user.email, step: 'mfa' }));

    // An email in the URL (the script-less email step, or an app passing what it knows): discover on the server.
    const view: SignInView = { returnTo, email: text(c.req.query('email'), 254), step: 'email' };
    if (view.email) {
      const email = Email.safeParse(view.email);
      if (!email.success) {
        view.error = 'Enter a valid email address, such as name@company.com.';
      } else {
        try {
          const found = await services.policy.discover(ctxOf(c), email.data);
          if (found.method === 'sso') {
            view.step = 'sso';
            view.sso = { url: found.url, organizationName: found.organization.name };
          } else {
            view.step = 'password';
          }
        } catch (e) {
          if (!(e instanceof AppError) || e.code !== 'RATE_LIMITED') throw e;
          const wait = typeof e.details?.retryAfter === 'number' ? e.details.retryAfter : null;
          if (wait) c.header('Retry-After', String(wait));
          view.error = `Too many attempts. ${wait ? `Try again in ${Math.ceil(wait / 60)} minute${Math.ceil(wait / 60) === 1 ? '' : 's'}.` : 'Wait a little and try again.'}`;
          return sendPage(c, signInPage(view), 429);
        }
      }
    }
    return sendPage(c, signInPage(view), view.error ? 400 : 200);
  });

  // The front door: a browser goes to its dashboard when signed in, else to sign-in (never a JSON 404).
  app.get('/', async (c) => {
    const token = getCookie(c, SESSION_COOKIE);
    const current = token ? await services.sessions.authenticate(token) : null;
    c.header('Cache-Control', 'no-store');
    return c.redirect(current && current.session.mfa_state !== 'pending' ? '/dashboard' : `${PAGE_PATHS.signIn}?returnTo=${encodeURIComponent('/dashboard')}`, 302);
  });

  // The IdP's way back after signing out (SPEC §8): reads no parameter.
  app.get(SIGNED_OUT_PATH, (c) => sendPage(c, signedOutPage(PAGE_PATHS.signIn)));

  app.get(PAGE_PATHS.signUp, (c) => {
    const checked = returnToOr400(c.req.query('returnTo'), 'Create an account');
    if (!checked.ok) return sendPage(c, checked.page, 400);
    return sendPage(c, signUpPage({ returnTo: checked.returnTo, email: text(c.req.query('email'), 254), name: text(c.req.query('name'), 200) }));
  });

  // The page the invitation mail links to: sign in / create an account, then accept (JSON API from /assets/invitation.js).
  app.get(`${PAGE_PATHS.invitation}/:token`, async (c) => {
    const token = c.req.param('token');
    const invitation = await services.invitations.preview(token);
    if (!invitation) return sendPage(c, invitationUnavailablePage('unknown'), 404);
    if (invitation.expired || invitation.accepted || invitation.revoked) return sendPage(c, invitationUnavailablePage('closed'), 410);
    // A session still waiting for its second factor counts as signed out: /sign-in finishes it and comes back.
    const cookie = getCookie(c, SESSION_COOKIE);
    const current = cookie ? await services.sessions.authenticate(cookie) : null;
    const viewer = !current || current.session.mfa_state === 'pending'
      ? { kind: 'signed-out' as const }
      : current.user.email === invitation.email ? { kind: 'invitee' as const } : { kind: 'other' as const, email: current.user.email };
    return sendPage(c, invitationPage({ token, invitation, viewer }));
  });

  registerDashboardPages(app, services, config);
  registerSetupPages(app, services, config);
}
