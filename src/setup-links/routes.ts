import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { ok, pageOf, responses } from '../http/envelope.js';
import { ctxOf, type AppEnv } from '../http/middleware.js';
import { pageParams, pageQuery } from '../http/pagination.js';
import { Empty, OrgParams, Ulid } from '../http/schemas.js';
import type { Services } from '../services.js';
import { DEFAULT_HOURS, MAX_HOURS, MIN_HOURS, SETUP_LINK_SCOPES } from './service.js';

const ORG = '/api/user/organizations/{organizationId}';

const CreateBody = z
  .object({
    scope: z.array(z.enum(SETUP_LINK_SCOPES)).min(1).max(2).openapi({ description: 'What the link may set up: "sso" (needs the creator to hold sso:manage, i.e. an owner), "domains"' }),
    expiresInHours: z.number().int().min(MIN_HOURS).max(MAX_HOURS).optional().openapi({ description: `Default ${DEFAULT_HOURS}` }),
  })
  .strict();

const SetupLink = z
  .object({
    id: z.string(), organizationId: z.string(), scope: z.array(z.enum(SETUP_LINK_SCOPES)),
    status: z.enum(['active', 'expired', 'revoked']), expiresAt: z.string(), createdAt: z.string(),
    createdBy: z.object({ id: z.string(), email: z.string().nullable() }).nullable(),
    boundAt: z.string().nullable().openapi({ description: 'When the first browser opened it (it then works only in that browser)' }),
    lastUsedAt: z.string().nullable(), revokedAt: z.string().nullable(),
  })
  .openapi('SetupLink');
const CreatedSetupLink = SetupLink.extend({ url: z.string().openapi({ description: '{base}/setup/{token}: shown once, only its hash is kept' }) }).openapi('CreatedSetupLink');

/** SPEC §5 setup links: created, listed and revoked by owners and admins. */
export function registerSetupLinkRoutes(app: OpenAPIHono<AppEnv>, services: Pick<Services, 'setupLinks'>) {
  const tags = ['Setup links'];
  app.openapi(
    createRoute({
      method: 'post', path: `${ORG}/setup-links`, tags,
      summary: "Create a setup link for the customer's IT admin (owner, admin; scope sso needs an owner): the url is shown once",
      request: { params: OrgParams, body: { required: true, content: { 'application/json': { schema: CreateBody } } } },
      responses: responses(CreatedSetupLink, 'Created', [400, 401, 403, 404], 201),
    }),
    async (c) => ok(c, await services.setupLinks.create(ctxOf(c), c.req.valid('param').organizationId, c.req.valid('json')), { status: 201, message: 'Setup link created: send the URL to the person who sets up SSO; it is shown only now' }),
  );
  app.openapi(
    createRoute({ method: 'get', path: `${ORG}/setup-links`, tags, summary: 'Setup links, newest first (owner, admin)', request: { params: OrgParams, query: pageQuery }, responses: responses(pageOf(SetupLink), 'Links', [400, 401, 403, 404]) }),
    async (c) => ok(c, await services.setupLinks.list(ctxOf(c), c.req.valid('param').organizationId, pageParams(c.req.valid('query')))),
  );
  app.openapi(
    createRoute({
      method: 'delete', path: `${ORG}/setup-links/{setupLinkId}`, tags, summary: 'Revoke a setup link (owner, admin): it stops working at once, in the browser that holds it too',
      request: { params: z.object({ organizationId: Ulid, setupLinkId: Ulid }).strict() }, responses: responses(Empty, 'Revoked', [400, 401, 403, 404, 409]),
    }),
    async (c) => {
      const { organizationId, setupLinkId } = c.req.valid('param');
      await services.setupLinks.revoke(ctxOf(c), organizationId, setupLinkId);
      return ok(c, null, { message: 'Setup link revoked' });
    },
  );
}
