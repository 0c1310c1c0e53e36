import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { ok, pageOf, responses } from '../../http/envelope.js';
import { ctxOf, type AppEnv } from '../../http/middleware.js';
import { pageParams, pageQuery } from '../../http/pagination.js';
import { Empty } from '../../http/schemas.js';
import type { Services } from '../../services.js';
import { GRANT_TYPES } from './store.js';
import { CLIENT_ID_PATTERN, clientAdminRefusal } from './service.js';
import { AUTH_METHODS, CreateClientInput, UpdateClientInput } from './validation.js';

export const CLIENTS_PATH = '/api/admin/clients';
const tags = ['Platform admin: OpenID Provider clients'];

const OAuthClient = z
  .object({
    clientId: z.string().openapi({ example: 'gh_client_01JC8Z3K5R4X9Y2V6QF8TJ7W0C' }),
    name: z.string(),
    tokenEndpointAuthMethod: z.enum(AUTH_METHODS),
    redirectUris: z.array(z.string()),
    postLogoutRedirectUris: z.array(z.string()),
    backchannelLogoutUri: z.string().nullable(),
    grantTypes: z.array(z.enum(GRANT_TYPES)),
    jwksUri: z.string().nullable(),
    jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).nullable(),
    firstParty: z.boolean(),
    hasSecret: z.boolean().openapi({ description: 'Whether a secret is registered (the secret itself is shown only when issued)' }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('OAuthClient');

const WithSecret = OAuthClient.extend({
  clientSecret: z.string().optional().openapi({ description: 'Only in the answer that issued it (secret-based methods); store it now', example: 'gcs_…' }),
});

const ClientParams = z.object({ clientId: z.string().regex(CLIENT_ID_PATTERN, 'must be a client id such as gh_client_01JC8Z3K5R4X9Y2V6QF8TJ7W0C') }).strict();

/**
 * Platform superadmins only, before the body is even validated: a client decides where users'
 * tokens are sent, so nobody else may learn what a valid registration looks like either.
 */
const superadminOnly: MiddlewareHandler<AppEnv> = async (c, next) => {
  const refusal = clientAdminRefusal(c.get('principal'));
  if (refusal) throw refusal;
  await next();
};

export function registerClientRoutes(app: OpenAPIHono<AppEnv>, services: Pick<Services, 'clients'>) {
  const { clients } = services;

  app.openapi(
    createRoute({
      method: 'post',
      path: CLIENTS_PATH,
      tags,
      summary: 'Register an OpenID Provider client (superadmin; the secret is shown once)',
      middleware: [superadminOnly],
      request: { body: { required: true, content: { 'application/json': { schema: CreateClientInput } } } },
      responses: responses(WithSecret, 'Created', [400, 401, 403], 201),
    }),
    async (c) => {
      const created = await clients.create(ctxOf(c), c.req.valid('json'));
      return ok(c, created, { status: 201, message: created.clientSecret ? 'Client registered; store the secret now, it is not shown again' : 'Client registered' });
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: CLIENTS_PATH,
      tags,
      summary: 'List OpenID Provider clients (superadmin; never a secret)',
      middleware: [superadminOnly],
      request: { query: pageQuery },
      responses: responses(pageOf(OAuthClient), 'Clients, newest first', [400, 401, 403]),
    }),
    async (c) => ok(c, await clients.list(pageParams(c.req.valid('query')))),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: `${CLIENTS_PATH}/{clientId}`,
      tags,
      summary: 'Read an OpenID Provider client (superadmin)',
      middleware: [superadminOnly],
      request: { params: ClientParams },
      responses: responses(OAuthClient, 'The client', [400, 401, 403, 404]),
    }),
    async (c) => ok(c, await clients.get(c.req.valid('param').clientId)),
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: `${CLIENTS_PATH}/{clientId}`,
      tags,
      summary: 'Change a client (superadmin); rotateSecret: true issues a new secret, shown once',
      middleware: [superadminOnly],
      request: { params: ClientParams, body: { required: true, content: { 'application/json': { schema: UpdateClientInput } } } },
      responses: responses(WithSecret, 'Updated', [400, 401, 403, 404]),
    }),
    async (c) => {
      const updated = await clients.update(ctxOf(c), c.req.valid('param').clientId, c.req.valid('json'));
      return ok(c, updated, { message: updated.clientSecret ? 'Client updated; store the new secret now, it is not shown again' : 'Client updated' });
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: `${CLIENTS_PATH}/{clientId}`,
      tags,
      summary: 'Delete a client (superadmin); its secret and keys stop working at once',
      middleware: [superadminOnly],
      request: { params: ClientParams },
      responses: responses(Empty, 'Deleted', [400, 401, 403, 404]),
    }),
    async (c) => {
      await clients.remove(ctxOf(c), c.req.valid('param').clientId);
      return ok(c, null, { message: 'Client deleted' });
    },
  );
}
