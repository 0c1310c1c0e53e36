import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { deleteCookie, setCookie } from 'hono/cookie';
import type { Context } from 'hono';
import type { Config } from '../config.js';
import { AppError } from '../http/errors.js';
import { ok, responses } from '../http/envelope.js';
import { ctxOf, type AppEnv } from '../http/middleware.js';
import { Email, Empty, Membership, Password, Session, User } from '../http/schemas.js';
import { SESSION_ABSOLUTE_MS, SESSION_COOKIE, sessionInfo } from '../sessions/service.js';
import type { Services } from '../services.js';
import { userView } from '../users/service.js';
import { NOT_SIGNED_IN, SESSION_CHECK_PATH, sessionCheckData } from './session-check.js';

const SignUpBody = z.object({ email: Email, password: Password, name: z.string().trim().min(1).max(200).optional() }).strict();
const SignInBody = z.object({ email: Email, password: z.string().min(1).max(256) }).strict();
const SessionData = z.object({ user: User, session: Session, memberships: z.array(Membership) }).openapi('SessionInfo');

/** POST /api/auth/sign-out: null, or the IdP logout URL when the session's connection signs out of the IdP (SPEC §8). */
const SignedOut = z.union([z.object({ idpLogoutUrl: z.string() }), z.null()]);

export function setSessionCookie(c: Context, config: Pick<Config, 'secureCookies'>, token: string) {
  setCookie(c, SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: 'Lax',
    secure: config.secureCookies,
    path: '/',
    maxAge: Math.floor(SESSION_ABSOLUTE_MS / 1000),
  });
}

export function registerAuthRoutes(app: OpenAPIHono<AppEnv>, services: Services, config: Config) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/auth/sign-up/email',
      tags: ['Sign-in and sessions'],
      summary: 'Create an account with email and password, and a session',
      request: { body: { required: true, content: { 'application/json': { schema: SignUpBody } } } },
      responses: responses(z.object({ user: User, session: Session }), 'Account and session created (cookie set)', [400, 403, 409, 413, 429], 201),
    }),
    async (c) => {
      const { user, session, token } = await services.accounts.signUp(ctxOf(c), c.req.valid('json'));
      setSessionCookie(c, config, token);
      return ok(c, { user: userView(user), session: sessionInfo(session) }, { status: 201, message: 'Account created' });
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/auth/sign-in/email',
      tags: ['Sign-in and sessions'],
      summary: 'Sign in with email and password',
      request: { body: { required: true, content: { 'application/json': { schema: SignInBody } } } },
      responses: responses(z.object({ user: User, session: Session }), 'Signed in (cookie set)', [400, 401, 403, 429]),
    }),
    async (c) => {
      const { user, session, token } = await services.accounts.signIn(ctxOf(c), c.req.valid('json'));
      setSessionCookie(c, config, token);
      return ok(c, { user: userView(user), session: sessionInfo(session) }, { message: 'Signed in' });
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: SESSION_CHECK_PATH,
      tags: ['Sign-in and sessions'],
      summary: 'The current session, its user and memberships',
      responses: responses(SessionData, 'The current session', [401]),
    }),
    async (c) => {
      const p = c.get('principal');
      // Its common case (the cookie alone) is answered before Hono: auth/session-check.ts.
      if (!p || p.kind !== 'session') throw NOT_SIGNED_IN();
      return ok(c, sessionCheckData(p.user, p.session, await services.organizations.listMine(p.user.id)));
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/auth/sign-out',
      tags: ['Sign-in and sessions'],
      summary: 'End the current session (and, with signOutOfIdp, give the IdP logout URL to follow)',
      responses: responses(SignedOut, 'Signed out (cookie cleared); data.idpLogoutUrl when the session\'s connection signs out of the IdP too', [401, 403]),
    }),
    async (c) => {
      const p = c.get('principal');
      if (!p || p.kind !== 'session') throw new AppError('UNAUTHENTICATED', 'Not signed in');
      // Built before the session ends (it reads the session's IdP logout hint); the session ends whatever the IdP.
      const idpLogoutUrl = await services.idpSignOut.urlFor(p.session);
      await services.sessions.end(ctxOf(c), p.user.id, p.session.id, 'sign_out');
      deleteCookie(c, SESSION_COOKIE, { path: '/', secure: config.secureCookies });
      return ok(c, idpLogoutUrl ? { idpLogoutUrl } : null, { message: idpLogoutUrl ? 'Signed out; follow idpLogoutUrl to sign out of the identity provider too' : 'Signed out' });
    },
  );
}
