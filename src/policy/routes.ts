import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { ok, responses } from '../http/envelope.js';
import { ctxOf, type AppEnv } from '../http/middleware.js';
import { Email, OrgParams } from '../http/schemas.js';
import type { Services } from '../services.js';

const AuthRequired = z.enum(['any', 'mfa', 'sso']);
const SecuritySettings = z.object({ authRequired: AuthRequired, requireMfa: z.boolean() }).openapi('SecuritySettings');
const PutSecurity = z.object({ authRequired: AuthRequired, requireMfa: z.boolean().optional().openapi({ description: 'default false' }) }).strict();
const Discovery = z
  .union([
    z.object({ method: z.literal('sso'), url: z.string(), organization: z.object({ name: z.string(), slug: z.string() }), ssoRequired: z.boolean() }),
    z.object({ method: z.literal('password'), methods: z.array(z.enum(['password', 'magic_link'])) }),
  ])
  .openapi('Discovery');

const SECURITY = '/api/user/organizations/{organizationId}/settings/security';
const tags = ['Security settings'];

export function registerPolicyRoutes(app: OpenAPIHono<AppEnv>, services: Services) {
  app.openapi(
    createRoute({
      method: 'post', path: '/api/auth/sign-in/discover', tags: ['Sign-in and sessions'],
      summary: "Home-realm discovery: where this email signs in (its organization's SSO, or password / magic link)",
      request: { body: { required: true, content: { 'application/json': { schema: z.object({ email: Email }).strict() } } } },
      responses: responses(Discovery, 'How to sign in', [400, 429]),
    }),
    async (c) => ok(c, await services.policy.discover(ctxOf(c), c.req.valid('json').email)),
  );

  app.openapi(
    createRoute({ method: 'get', path: SECURITY, tags, summary: 'Sign-in policy of the organization (owner)', request: { params: OrgParams }, responses: responses(SecuritySettings, 'Security settings', [400, 401, 403, 404]) }),
    async (c) => ok(c, await services.policy.getSecurity(ctxOf(c), c.req.valid('param').organizationId)),
  );

  app.openapi(
    createRoute({
      method: 'put', path: SECURITY, tags,
      summary: 'Set the sign-in policy: any method, MFA, or SSO only (owner). Raising to sso needs an enabled SSO connection.',
      request: { params: OrgParams, body: { required: true, content: { 'application/json': { schema: PutSecurity } } } },
      responses: responses(SecuritySettings, 'Saved', [400, 401, 403, 404, 409]),
    }),
    async (c) => ok(c, await services.policy.putSecurity(ctxOf(c), c.req.valid('param').organizationId, c.req.valid('json')), { message: 'Security settings saved' }),
  );
}
