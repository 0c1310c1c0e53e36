import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { ok, pageOf, responses } from '../http/envelope.js';
import { ctxOf, requireAuth, type AppEnv } from '../http/middleware.js';
import { pageParams, pageQuery } from '../http/pagination.js';
import { Empty, Ulid } from '../http/schemas.js';
import type { Services } from '../services.js';
import { API_KEY_SCOPES } from './service.js';

const ApiKey = z
  .object({
    id: z.string(),
    name: z.string(),
    prefix: z.string().openapi({ description: 'First characters of the key, to tell keys apart' }),
    scopes: z.array(z.enum(API_KEY_SCOPES)).nullable(),
    organizationId: z.string().nullable(),
    expiresAt: z.string().nullable(),
    lastUsedAt: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('ApiKey');

const CreateApiKey = z
  .object({
    name: z.string().trim().min(1).max(100),
    scopes: z.array(z.enum(API_KEY_SCOPES)).min(1).max(API_KEY_SCOPES.length).optional()
      .openapi({ description: 'Omit for the full access of the key owner; `x:write` implies `x:read`' }),
    organizationId: Ulid.optional().openapi({ description: 'Pin the key to one organization (403 on any other)' }),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

export function registerApiKeyRoutes(app: OpenAPIHono<AppEnv>, services: Services) {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/user/api-keys',
      tags: ['API keys'],
      summary: 'Create an API key (the key is shown once)',
      request: { body: { required: true, content: { 'application/json': { schema: CreateApiKey } } } },
      responses: responses(z.object({ key: z.string().openapi({ example: 'gk_…' }), apiKey: ApiKey }), 'Created', [400, 401, 403, 404], 201),
    }),
    async (c) => {
      const p = requireAuth(c);
      const created = await services.apiKeys.create(ctxOf(c), p.user, c.req.valid('json'));
      return ok(c, created, { status: 201, message: 'API key created; store it now, it is not shown again' });
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/user/api-keys',
      tags: ['API keys'],
      summary: 'List my API keys (never the secret)',
      request: { query: pageQuery },
      responses: responses(pageOf(ApiKey), 'API keys', [400, 401]),
    }),
    async (c) => ok(c, await services.apiKeys.list(ctxOf(c), requireAuth(c).user.id, pageParams(c.req.valid('query')))),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/api/user/api-keys/{keyId}',
      tags: ['API keys'],
      summary: 'Revoke an API key',
      request: { params: z.object({ keyId: Ulid }).strict() },
      responses: responses(Empty, 'Revoked', [400, 401, 403, 404]),
    }),
    async (c) => {
      await services.apiKeys.revoke(ctxOf(c), requireAuth(c).user.id, c.req.valid('param').keyId);
      return ok(c, null, { message: 'API key revoked' });
    },
  );
}
