import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { ok, pageOf, responses } from '../http/envelope.js';
import { ctxOf, type AppEnv } from '../http/middleware.js';
import { pageParams, pageQuery } from '../http/pagination.js';
import { Email, Empty, OrgParams, Role, Ulid } from '../http/schemas.js';
import type { Services } from '../services.js';
import { INVITATION_TOKEN_SHAPE } from './invitations.js';
import { SLUG_PATTERN } from './service.js';

const Slug = z.string().regex(SLUG_PATTERN, 'must be 1–48 lower-case letters, digits and inner dashes').openapi({ example: 'acme' });
const Organization = z
  .object({ id: z.string(), name: z.string(), slug: z.string(), createdAt: z.string(), updatedAt: z.string(), role: Role.nullable().optional() })
  .openapi('Organization');
const MyOrganization = z.object({ id: z.string(), name: z.string(), slug: z.string(), role: Role }).openapi('MyOrganization');
const CreateOrg = z.object({ name: z.string().trim().min(1).max(100), slug: Slug.optional() }).strict();
const PatchOrg = z
  .object({ name: z.string().trim().min(1).max(100).optional(), slug: Slug.optional() })
  .strict()
  .refine((b) => b.name !== undefined || b.slug !== undefined, { message: 'give name or slug' });
const Member = z.object({ userId: z.string(), email: z.string(), name: z.string().nullable(), role: Role, joinedAt: z.string() }).openapi('Member');
const MemberParams = z.object({ organizationId: Ulid, userId: Ulid }).strict();
const Invitation = z
  .object({ id: z.string(), organizationId: z.string(), email: z.string(), role: Role, invitedBy: z.string().nullable(), expiresAt: z.string(), createdAt: z.string() })
  .openapi('Invitation');
const CreatedInvitation = Invitation.extend({ emailSent: z.boolean() }).openapi('CreatedInvitation');
const JoinRequest = z
  .object({
    id: z.string(), userId: z.string(), email: z.string(), name: z.string().nullable(), domainId: z.string().nullable(),
    status: z.enum(['pending', 'approved', 'rejected']), decidedBy: z.string().nullable(), decidedAt: z.string().nullable(), createdAt: z.string(),
  })
  .openapi('JoinRequest');
const AuditQuery = pageQuery
  .extend({
    action: z.string().max(64).regex(/^[a-z_]+(\.[a-z_]*)?$/, 'an action such as sso.connection_updated, or a family such as sso.').optional().openapi({ description: 'An action, or a family ending in "." (e.g. sso.)' }),
    actorType: z.enum(['user', 'api_key', 'system', 'idp', 'setup_link']).optional(),
    actorId: Ulid.optional().openapi({ description: 'A user, API key or setup link id' }),
    from: z.iso.datetime({ offset: true }).optional().openapi({ description: 'From this time (inclusive), ISO 8601' }),
    to: z.iso.datetime({ offset: true }).optional().openapi({ description: 'Until this time (exclusive), ISO 8601' }),
  })
  .strict();

const AuditEvent = z
  .object({
    id: z.string(),
    organizationId: z.string().nullable(),
    actor: z.object({ type: z.string(), userId: z.string().nullable(), apiKeyId: z.string().nullable(), setupLinkId: z.string().nullable().openapi({ description: 'type setup_link: the setup link the change was made through' }) }),
    action: z.string(),
    target: z.object({ type: z.string(), id: z.string() }).nullable(),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    requestId: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    createdAt: z.string(),
  })
  .openapi('AuditEvent');

const ORG = '/api/user/organizations/{organizationId}';
const tags = ['Organizations'];

export function registerOrganizationRoutes(app: OpenAPIHono<AppEnv>, services: Services) {
  const { organizations, members, invitations, audit, joinRequests } = services;

  app.openapi(
    createRoute({
      method: 'get', path: '/api/user/organizations', tags, summary: 'My organizations with my role (an API key pinned to an organization: only that one)',
      request: { query: pageQuery }, responses: responses(pageOf(MyOrganization), 'Organizations', [400, 401]),
    }),
    async (c) => ok(c, await organizations.listMinePage(ctxOf(c), pageParams(c.req.valid('query')))),
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/api/user/organizations', tags, summary: 'Create an organization (the caller becomes owner)',
      request: { body: { required: true, content: { 'application/json': { schema: CreateOrg } } } },
      responses: responses(Organization, 'Created', [400, 401, 403, 409], 201),
    }),
    async (c) => ok(c, await organizations.create(ctxOf(c), c.req.valid('json')), { status: 201, message: 'Organization created' }),
  );

  app.openapi(
    createRoute({ method: 'get', path: ORG, tags, summary: 'Read an organization (any member)', request: { params: OrgParams }, responses: responses(Organization, 'Organization', [400, 401, 403, 404]) }),
    async (c) => ok(c, await organizations.get(ctxOf(c), c.req.valid('param').organizationId)),
  );

  app.openapi(
    createRoute({
      method: 'patch', path: ORG, tags, summary: 'Rename an organization or change its slug (owner)',
      request: { params: OrgParams, body: { required: true, content: { 'application/json': { schema: PatchOrg } } } },
      responses: responses(Organization, 'Updated', [400, 401, 403, 404, 409]),
    }),
    async (c) => ok(c, await organizations.update(ctxOf(c), c.req.valid('param').organizationId, c.req.valid('json')), { message: 'Organization updated' }),
  );

  app.openapi(
    createRoute({ method: 'delete', path: ORG, tags, summary: 'Delete an organization (owner)', request: { params: OrgParams }, responses: responses(Empty, 'Deleted', [400, 401, 403, 404]) }),
    async (c) => {
      await organizations.remove(ctxOf(c), c.req.valid('param').organizationId);
      return ok(c, null, { message: 'Organization deleted' });
    },
  );

  // ---- members
  app.openapi(
    createRoute({ method: 'get', path: `${ORG}/members`, tags: ['Members'], summary: 'List members (owner, admin)', request: { params: OrgParams, query: pageQuery }, responses: responses(pageOf(Member), 'Members', [400, 401, 403, 404]) }),
    async (c) => ok(c, await members.list(ctxOf(c), c.req.valid('param').organizationId, pageParams(c.req.valid('query')))),
  );

  app.openapi(
    createRoute({
      method: 'patch', path: `${ORG}/members/{userId}`, tags: ['Members'], summary: "Change a member's role (owner, admin; the last owner cannot be demoted)",
      request: { params: MemberParams, body: { required: true, content: { 'application/json': { schema: z.object({ role: Role }).strict() } } } },
      responses: responses(z.object({ userId: z.string(), role: Role }), 'Role changed', [400, 401, 403, 404, 409]),
    }),
    async (c) => {
      const { organizationId, userId } = c.req.valid('param');
      return ok(c, await members.changeRole(ctxOf(c), organizationId, userId, c.req.valid('json').role), { message: 'Role changed' });
    },
  );

  app.openapi(
    createRoute({
      method: 'delete', path: `${ORG}/members/{userId}`, tags: ['Members'], summary: 'Remove a member, or leave (the last owner cannot be removed)',
      request: { params: MemberParams }, responses: responses(Empty, 'Removed', [400, 401, 403, 404, 409]),
    }),
    async (c) => {
      const { organizationId, userId } = c.req.valid('param');
      await members.remove(ctxOf(c), organizationId, userId);
      return ok(c, null, { message: 'Member removed' });
    },
  );

  // ---- invitations
  app.openapi(
    createRoute({
      method: 'post', path: `${ORG}/invitations`, tags: ['Invitations'], summary: 'Invite someone by email (owner, admin)',
      request: { params: OrgParams, body: { required: true, content: { 'application/json': { schema: z.object({ email: Email, role: Role.default('member') }).strict() } } } },
      responses: responses(CreatedInvitation, 'Invitation created; emailSent false when its mail could not be sent', [400, 401, 403, 404, 409, 429], 201),
    }),
    async (c) => {
      const invitation = await invitations.create(ctxOf(c), c.req.valid('param').organizationId, c.req.valid('json'));
      const message = invitation.emailSent ? 'Invitation sent' : 'Invitation created, but its email could not be sent: revoke it and invite again later';
      return ok(c, invitation, { status: 201, message });
    },
  );

  app.openapi(
    createRoute({ method: 'get', path: `${ORG}/invitations`, tags: ['Invitations'], summary: 'Pending invitations (owner, admin)', request: { params: OrgParams, query: pageQuery }, responses: responses(pageOf(Invitation), 'Invitations', [400, 401, 403, 404]) }),
    async (c) => ok(c, await invitations.list(ctxOf(c), c.req.valid('param').organizationId, pageParams(c.req.valid('query')))),
  );

  app.openapi(
    createRoute({
      method: 'delete', path: `${ORG}/invitations/{invitationId}`, tags: ['Invitations'], summary: 'Revoke an invitation (owner, admin)',
      request: { params: z.object({ organizationId: Ulid, invitationId: Ulid }).strict() }, responses: responses(Empty, 'Revoked', [400, 401, 403, 404]),
    }),
    async (c) => {
      const { organizationId, invitationId } = c.req.valid('param');
      await invitations.revoke(ctxOf(c), organizationId, invitationId);
      return ok(c, null, { message: 'Invitation revoked' });
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: '/api/user/invitations/{token}/accept', tags: ['Invitations'], summary: 'Accept an invitation sent to my email',
      request: { params: z.object({ token: z.string().regex(INVITATION_TOKEN_SHAPE, 'malformed invitation token') }).strict() },
      responses: responses(z.object({ organizationId: z.string(), role: Role }), 'Joined', [400, 401, 403, 409]),
    }),
    async (c) => ok(c, await invitations.accept(ctxOf(c), c.req.valid('param').token), { message: 'Invitation accepted' }),
  );

  // ---- join requests (auto-join with approval, SPEC §7)
  const JoinRequestParams = z.object({ organizationId: Ulid, requestId: Ulid }).strict();
  app.openapi(
    createRoute({
      method: 'get', path: `${ORG}/members/requests`, tags: ['Members'], summary: 'Join requests from auto-join with approval (owner, admin); pending by default',
      request: { params: OrgParams, query: pageQuery.extend({ status: z.enum(['pending', 'approved', 'rejected', 'all']).default('pending') }) },
      responses: responses(pageOf(JoinRequest), 'Join requests', [400, 401, 403, 404]),
    }),
    async (c) => {
      const q = c.req.valid('query');
      return ok(c, await joinRequests.list(ctxOf(c), c.req.valid('param').organizationId, q.status === 'all' ? null : q.status, pageParams(q)));
    },
  );
  for (const decision of ['approve', 'reject'] as const) {
    app.openapi(
      createRoute({
        method: 'post', path: `${ORG}/members/requests/{requestId}/${decision}`, tags: ['Members'],
        summary: decision === 'approve' ? "Approve a join request: the user joins with the domain's role (owner, admin)" : 'Reject a join request (owner, admin)',
        request: { params: JoinRequestParams },
        responses: responses(z.object({ id: z.string(), status: z.enum(['approved', 'rejected']), userId: z.string(), role: Role.optional() }), decision === 'approve' ? 'Approved' : 'Rejected', [400, 401, 403, 404, 409]),
      }),
      async (c) => {
        const { organizationId, requestId } = c.req.valid('param');
        const result = await joinRequests[decision](ctxOf(c), organizationId, requestId);
        return ok(c, result, { message: decision === 'approve' ? 'Join request approved' : 'Join request rejected' });
      },
    );
  }

  // ---- audit log
  app.openapi(
    createRoute({ method: 'get', path: `${ORG}/audit-log`, tags: ['Audit log'], summary: 'Who did what, when, from where (owner, admin); filters combine', request: { params: OrgParams, query: AuditQuery }, responses: responses(pageOf(AuditEvent), 'Events, newest first', [400, 401, 403, 404]) }),
    async (c) => {
      const { organizationId } = c.req.valid('param');
      await organizations.requireAccess(ctxOf(c), organizationId, 'audit:read');
      const { action, actorType, actorId, from, to, ...page } = c.req.valid('query');
      // Stored times are UTC ISO strings: a bound with another offset is compared in UTC.
      const utc = (v: string | undefined) => (v ? new Date(v).toISOString() : undefined);
      return ok(c, await audit.list(organizationId, pageParams(page), { action, actorType, actorId, from: utc(from), to: utc(to) }));
    },
  );

  // ---- platform
  app.openapi(
    createRoute({ method: 'get', path: '/api/admin/organizations', tags: ['Platform admin'], summary: 'All organizations (superadmin)', request: { query: pageQuery }, responses: responses(pageOf(Organization), 'Organizations', [400, 401, 403]) }),
    async (c) => ok(c, await organizations.listAll(ctxOf(c), pageParams(c.req.valid('query')))),
  );
}
