import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { ok, pageOf, responses } from '../../http/envelope.js';
import { ctxOf, type AppEnv } from '../../http/middleware.js';
import { pageParams, pageQuery } from '../../http/pagination.js';
import { Empty, OrgParams, Ulid } from '../../http/schemas.js';
import type { Services } from '../../services.js';
import { OIDC_PROVIDERS, SAML_PROVIDERS, type OidcProvider } from './model.js';

const Domain = z.string().trim().min(1).max(253).regex(/^@?[A-Za-z0-9.-]+\.?$/, 'must be a domain such as example.com');

const OidcSettings = z
  .object({
    provider: z.enum([...OIDC_PROVIDERS, ...SAML_PROVIDERS]).refine((p): p is OidcProvider => (OIDC_PROVIDERS as readonly string[]).includes(p), {
      message: 'SAML connections are not available in this version; use an OIDC provider (okta, azure, google, auth0, oidc)',
    }),
    issuerUrl: z.url({ message: 'must be an absolute URL such as https://your-org.okta.com' }).max(2048),
    clientId: z.string().trim().min(1).max(512),
    clientSecret: z.string().min(1).max(4096).optional().openapi({ description: 'Omit to keep the stored secret' }),
    scopes: z.union([z.string().max(1024), z.array(z.string().max(128)).max(50)]).optional().openapi({ description: 'Default "openid profile email"' }),
    enabled: z.boolean().optional(),
    allowJitProvisioning: z.boolean().optional(),
    defaultRole: z.enum(['admin', 'member']).optional(),
    allowedDomains: z.array(Domain).max(100).nullable().optional(),
    allowIdpInitiated: z.boolean().optional(),
  })
  .strict();

const Settings = z
  .object({
    id: z.string(), protocol: z.enum(['oidc', 'saml']), provider: z.string(), issuerUrl: z.string().nullable(), issuer: z.string(),
    clientId: z.string().nullable(), clientSecret: z.string().nullable(), hasClientSecret: z.boolean(), scopes: z.string().nullable(),
    enabled: z.boolean(), allowJitProvisioning: z.boolean(), defaultRole: z.string(), allowedDomains: z.array(z.string()).nullable(),
    allowIdpInitiated: z.boolean(), configVersion: z.number(), redirectUri: z.string(), loginUrl: z.string(), initiateLoginUri: z.string(),
    createdAt: z.string(), updatedAt: z.string(),
  })
  .openapi('SsoSettings');

const CheckResult = z.object({ name: z.string(), ok: z.boolean(), message: z.string() });
const Identity = z
  .object({
    id: z.string(),
    user: z.object({ id: z.string(), email: z.string(), name: z.string().nullable() }),
    connection: z.object({ id: z.string(), provider: z.string(), protocol: z.string(), active: z.boolean() }),
    subject: z.string(), email: z.string().nullable(), lastLoginAt: z.string(), createdAt: z.string(), claims: z.record(z.string(), z.unknown()),
  })
  .openapi('SsoIdentity');

const ORG = '/api/user/organizations/{organizationId}';

export function registerSsoSettingsRoutes(app: OpenAPIHono<AppEnv>, services: Services) {
  const tags = ['SSO settings'];
  app.openapi(
    createRoute({ method: 'get', path: `${ORG}/settings/sso`, tags, summary: 'The SSO connection, redacted, with the URLs to paste into the IdP (owner)', request: { params: OrgParams }, responses: responses(Settings, 'Settings', [400, 401, 403, 404]) }),
    async (c) => ok(c, await services.connections.get(ctxOf(c), c.req.valid('param').organizationId)),
  );

  app.openapi(
    createRoute({
      method: 'put', path: `${ORG}/settings/sso`, tags, summary: 'Configure (replace) the SSO connection (owner); checked against the IdP’s discovery',
      request: { params: OrgParams, body: { required: true, content: { 'application/json': { schema: OidcSettings } } } },
      responses: responses(Settings, 'Saved', [400, 401, 403, 404, 422]),
    }),
    async (c) => ok(c, await services.connections.putOidc(ctxOf(c), c.req.valid('param').organizationId, c.req.valid('json')), { message: 'SSO connection saved' }),
  );

  app.openapi(
    createRoute({ method: 'delete', path: `${ORG}/settings/sso`, tags, summary: 'Remove SSO (lowers authRequired "sso" to "any") (owner)', request: { params: OrgParams }, responses: responses(Empty, 'Removed', [400, 401, 403, 404]) }),
    async (c) => {
      await services.connections.remove(ctxOf(c), c.req.valid('param').organizationId);
      return ok(c, null, { message: 'SSO connection removed' });
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: `${ORG}/settings/sso/test`, tags, summary: 'Test the SSO configuration against the IdP (owner); never creates a session',
      request: { params: OrgParams }, responses: responses(z.object({ success: z.literal(true), message: z.string(), checks: z.array(CheckResult) }), 'Every check passed', [400, 401, 403, 404, 409, 422]),
    }),
    async (c) => ok(c, await services.connections.test(ctxOf(c), c.req.valid('param').organizationId), { message: 'SSO configuration is valid' }),
  );

  app.openapi(
    createRoute({ method: 'get', path: `${ORG}/sso/identities`, tags: ['SSO identities'], summary: 'Linked IdP identities (owner, admin)', request: { params: OrgParams, query: pageQuery }, responses: responses(pageOf(Identity), 'Identities, newest first', [400, 401, 403, 404]) }),
    async (c) => ok(c, await services.identities.list(ctxOf(c), c.req.valid('param').organizationId, pageParams(c.req.valid('query')))),
  );

  app.openapi(
    createRoute({
      method: 'delete', path: `${ORG}/sso/identities/{identityId}`, tags: ['SSO identities'], summary: 'Unlink an IdP identity (owner, admin)',
      request: { params: z.object({ organizationId: Ulid, identityId: Ulid }).strict() }, responses: responses(Empty, 'Unlinked', [400, 401, 403, 404]),
    }),
    async (c) => {
      const { organizationId, identityId } = c.req.valid('param');
      await services.identities.unlink(ctxOf(c), organizationId, identityId);
      return ok(c, null, { message: 'Identity unlinked' });
    },
  );
}
