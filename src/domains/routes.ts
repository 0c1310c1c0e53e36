import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { ok, pageOf, responses } from '../http/envelope.js';
import { ctxOf, type AppEnv } from '../http/middleware.js';
import { pageParams, pageQuery } from '../http/pagination.js';
import { Empty, OrgParams, Ulid } from '../http/schemas.js';
import type { Services } from '../services.js';

const Verification = z
  .object({
    type: z.literal('TXT'),
    name: z.string().openapi({ example: '_gatehouse-challenge.example.org' }),
    value: z.string().openapi({ example: 'gatehouse-domain-verification=3q2-7wEjy8kQ1s0ZLkdvVxvY0F4Xw1bI' }),
  })
  .openapi('DomainVerification', { description: 'The DNS record to publish to prove control of the domain' });

const JoinRole = z.enum(['member', 'admin'], { error: 'must be member or admin (auto-join never grants owner: owners are made one at a time by an owner)' });

const DomainSettings = z.object({ autoJoin: z.boolean(), requireApproval: z.boolean(), role: JoinRole }).openapi('DomainSettings');

const Domain = z
  .object({
    id: z.string(),
    organizationId: z.string(),
    domain: z.string().openapi({ description: 'ASCII (IDNA), lower case, no trailing dot', example: 'example.org' }),
    status: z.enum(['pending', 'verified']),
    verification: Verification,
    verifiedAt: z.string().nullable(),
    lastCheckedAt: z.string().nullable(),
    settings: DomainSettings,
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Domain');

const AddDomain = z
  .object({ domain: z.string().max(512).openapi({ description: 'A hostname; Unicode names are converted to ASCII', example: 'example.org' }) })
  .strict();

const PutSettings = z
  .object({
    autoJoin: z.boolean().default(false),
    requireApproval: z.boolean().default(false),
    role: JoinRole.default('member'),
  })
  .strict();

const DomainParams = z.object({ organizationId: Ulid, domainId: Ulid }).strict();

const ORG = '/api/user/organizations/{organizationId}';
const tags = ['Domains'];

export function registerDomainRoutes(app: OpenAPIHono<AppEnv>, services: Services) {
  const { domains } = services;

  app.openapi(
    createRoute({
      method: 'post', path: `${ORG}/domains`, tags, summary: 'Claim an email domain; answers the TXT record to publish (owner, admin)',
      request: { params: OrgParams, body: { required: true, content: { 'application/json': { schema: AddDomain } } } },
      responses: responses(Domain, 'Domain added (pending until verified)', [400, 401, 403, 404, 409, 422], 201),
    }),
    async (c) => ok(c, await domains.add(ctxOf(c), c.req.valid('param').organizationId, c.req.valid('json')), { status: 201, message: 'Domain added: publish the TXT record, then verify' }),
  );

  app.openapi(
    createRoute({
      method: 'get', path: `${ORG}/domains`, tags, summary: "The organization's domains, newest first (owner, admin)",
      request: { params: OrgParams, query: pageQuery }, responses: responses(pageOf(Domain), 'Domains', [400, 401, 403, 404]),
    }),
    async (c) => ok(c, await domains.list(ctxOf(c), c.req.valid('param').organizationId, pageParams(c.req.valid('query')))),
  );

  app.openapi(
    createRoute({ method: 'get', path: `${ORG}/domains/{domainId}`, tags, summary: 'Read a domain (owner, admin)', request: { params: DomainParams }, responses: responses(Domain, 'Domain', [400, 401, 403, 404]) }),
    async (c) => {
      const { organizationId, domainId } = c.req.valid('param');
      return ok(c, await domains.get(ctxOf(c), organizationId, domainId));
    },
  );

  app.openapi(
    createRoute({ method: 'delete', path: `${ORG}/domains/{domainId}`, tags, summary: 'Remove a domain (owner, admin)', request: { params: DomainParams }, responses: responses(Empty, 'Removed', [400, 401, 403, 404]) }),
    async (c) => {
      const { organizationId, domainId } = c.req.valid('param');
      await domains.remove(ctxOf(c), organizationId, domainId);
      return ok(c, null, { message: 'Domain removed' });
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: `${ORG}/domains/{domainId}/verify`, tags,
      summary: 'Check the TXT record and mark the domain verified (owner, admin; rate-limited per organization)',
      description:
        '`422 DOMAIN_VERIFICATION_FAILED` says what DNS answered: `details.reason` is `no_record`, `nxdomain`, `wrong_value` ' +
        '(with `details.found`), `timeout` or `dns_error`, and `details.expected` is the record to publish. ' +
        '`409 DOMAIN_TAKEN` when another organization verified the domain first. An already verified domain answers 200.',
      request: { params: DomainParams },
      responses: responses(Domain, 'Verified', [400, 401, 403, 404, 409, 422, 429]),
    }),
    async (c) => {
      const { organizationId, domainId } = c.req.valid('param');
      return ok(c, await domains.verify(ctxOf(c), organizationId, domainId), { message: 'Domain verified' });
    },
  );

  app.openapi(
    createRoute({
      method: 'put', path: `${ORG}/domains/{domainId}/settings`, tags,
      summary: 'Auto-join policy for people with a verified email at this domain (owner, admin)',
      description: 'Replaces the settings: omitted fields take their defaults (`false`, `false`, `member`). Turning `autoJoin` on needs a verified domain (`409 DOMAIN_NOT_VERIFIED`).',
      request: { params: DomainParams, body: { required: true, content: { 'application/json': { schema: PutSettings } } } },
      responses: responses(Domain, 'Settings saved', [400, 401, 403, 404, 409]),
    }),
    async (c) => {
      const { organizationId, domainId } = c.req.valid('param');
      return ok(c, await domains.updateSettings(ctxOf(c), organizationId, domainId, c.req.valid('json')), { message: 'Domain settings saved' });
    },
  );
}
