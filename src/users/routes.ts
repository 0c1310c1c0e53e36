import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { ok, pageOf, responses } from '../http/envelope.js';
import { ctxOf, requireAuth, type AppEnv } from '../http/middleware.js';
import { pageParams, pageQuery } from '../http/pagination.js';
import { Empty, Session, Ulid } from '../http/schemas.js';
import type { Services } from '../services.js';
import { userView } from './service.js';

const Me = z
  .object({ id: z.string(), email: z.string(), name: z.string().nullable(), emailVerified: z.boolean(), isSuperadmin: z.boolean(), createdAt: z.string() })
  .openapi('Me');
const PatchMe = z.object({ name: z.string().trim().min(1).max(200).nullable().optional() }).strict();
const SessionItem = Session.extend({ lastSeenAt: z.string(), ip: z.string().nullable(), userAgent: z.string().nullable(), current: z.boolean() }).openapi('SessionListItem');

export function registerUserRoutes(app: OpenAPIHono<AppEnv>, services: Services) {
  app.openapi(
    createRoute({ method: 'get', path: '/api/user/me', tags: ['Users'], summary: 'My profile', responses: responses(Me, 'Profile', [401]) }),
    async (c) => ok(c, userView(requireAuth(c).user, true)),
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/api/user/me',
      tags: ['Users'],
      summary: 'Update my profile',
      request: { body: { required: true, content: { 'application/json': { schema: PatchMe } } } },
      responses: responses(Me, 'Updated profile', [400, 401, 403]),
    }),
    async (c) => {
      const user = await services.accounts.updateProfile(ctxOf(c), requireAuth(c).user, c.req.valid('json'));
      return ok(c, userView(user, true), { message: 'Profile updated' });
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/user/sessions',
      tags: ['Sign-in and sessions'],
      summary: 'My active sessions',
      request: { query: pageQuery },
      responses: responses(pageOf(SessionItem), 'Active sessions, newest first', [400, 401, 403]),
    }),
    async (c) => {
      const p = requireAuth(c);
      const current = p.kind === 'session' ? p.session.id : null;
      return ok(c, await services.sessions.list(ctxOf(c), p.user.id, current, pageParams(c.req.valid('query'))));
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/user/sessions/{sessionId}',
      tags: ['Sign-in and sessions'],
      summary: 'Revoke one of my sessions',
      request: { params: z.object({ sessionId: Ulid }).strict() },
      responses: responses(Empty, 'Revoked', [400, 401, 403, 404]),
    }),
    async (c) => {
      const p = requireAuth(c);
      await services.sessions.revoke(ctxOf(c), p.user.id, c.req.valid('param').sessionId);
      return ok(c, null, { message: 'Session revoked' });
    },
  );
}
