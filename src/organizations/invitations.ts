import { DAY, type Clock } from '../clock.js';
import type { Config } from '../config.js';
import { pinOf, type Ctx } from '../context.js';
import type { Db } from '../db/database.js';
import type { InvitationRow, Role } from '../db/schema.js';
import { randomToken, sha256 } from '../crypto/tokens.js';
import { AppError, conflict, forbidden, notFound } from '../http/errors.js';
import { paginate, type Page, type PageParams } from '../http/pagination.js';
import { newId } from '../ids.js';
import type { AuditService } from '../audit/service.js';
import type { Mailer } from '../email/mailer.js';
import type { Logger } from '../logger.js';
import type { RateLimits } from '../http/rate-limit.js';
import { findUserByEmail, normalizeEmail, updateUser } from '../users/store.js';
import { requirePrincipal, type OrganizationService } from './service.js';
import {
  findInvitationByTokenHash, findMembership, findOrganization, findPendingInvitationByEmail, insertInvitation, insertMember,
  listPendingInvitations, markInvitationAccepted, revokeInvitation,
} from './store.js';
import type { SessionCacheDrops } from '../sessions/cache.js';

export const INVITATION_TTL_MS = 7 * DAY;

export interface InvitationView {
  id: string;
  organizationId: string;
  email: string;
  role: Role;
  invitedBy: string | null;
  expiresAt: string;
  createdAt: string;
}

/** What the hosted invitation page may show to whoever holds the token (the token is the secret). */
/**
 * What POST …/invitations answers: the invitation, and whether its mail went out. The invitation
 * is committed before the mail is sent, so a mail that cannot be sent (SMTP down or timing out)
 * does not undo it: the answer still is 201 with `emailSent: false`, never a 5xx that invites a
 * retry (which would meet 409, the invitation being pending). Nobody holds its token then: revoke
 * it and invite again once mail works.
 */
export interface CreatedInvitationView extends InvitationView {
  emailSent: boolean;
}

export interface InvitationPreview {
  organizationName: string;
  email: string;
  role: Role;
  expired: boolean;
  accepted: boolean;
  revoked: boolean;
}

/** Path of the hosted invitation page; the mail links to it (the JSON accept API stays for API clients). */
export const invitationPagePath = (token: string) => `/invitations/${token}`;

/** The shape the accept API accepts; anything else is unknown without a database look-up. */
/** What an invitation token looks like (the accept route's schema and the page's preview use it). */
export const INVITATION_TOKEN_SHAPE = /^[A-Za-z0-9_-]{20,100}$/;

const view = (i: InvitationRow): InvitationView => ({
  id: i.id,
  organizationId: i.organization_id,
  email: i.email,
  role: i.role,
  invitedBy: i.invited_by,
  expiresAt: i.expires_at,
  createdAt: i.created_at,
});

export function createInvitationService(deps: {
  db: Db;
  clock: Clock;
  sessionCache: SessionCacheDrops;
  config: Pick<Config, 'baseUrl'>;
  audit: AuditService;
  mailer: Mailer;
  logger: Logger;
  rateLimits: RateLimits;
  organizations: OrganizationService;
}) {
  const { db, clock } = deps;
  return {
    async create(ctx: Ctx, organizationId: string, input: { email: string; role: Role }): Promise<CreatedInvitationView> {
      const { organization, role: callerRole } = await deps.organizations.requireAccess(ctx, organizationId, 'invitations:manage');
      if (input.role === 'owner' && callerRole === 'admin') throw forbidden('Only an owner can invite an owner');
      // SPEC §12: every invitation is a mail that carries the organization's free-text name.
      await deps.rateLimits.consume('invitation:organization', organizationId);
      await deps.rateLimits.consume('invitation:inviter', requirePrincipal(ctx).user.id);
      const email = normalizeEmail(input.email);
      const now = clock.now();
      const nowIso = now.toISOString();
      const token = randomToken(32);
      const row: InvitationRow = {
        id: newId(),
        organization_id: organizationId,
        email,
        role: input.role,
        token_hash: sha256(token),
        invited_by: ctx.principal?.user.id ?? null,
        expires_at: new Date(now.getTime() + INVITATION_TTL_MS).toISOString(),
        accepted_at: null,
        accepted_by: null,
        revoked_at: null,
        created_at: nowIso,
      };
      await db.transaction().execute(async (tx) => {
        const existingUser = await findUserByEmail(tx, email);
        if (existingUser && (await findMembership(tx, organizationId, existingUser.id))) throw conflict(`${email} is already a member`);
        if (await findPendingInvitationByEmail(tx, organizationId, email, nowIso)) {
          throw conflict(`${email} already has a pending invitation; revoke it to send a new one`);
        }
        await insertInvitation(tx, row);
        await deps.audit.record(tx, ctx, {
          action: 'invitation.created',
          organizationId,
          target: { type: 'invitation', id: row.id },
          metadata: { email, role: input.role },
        });
      });
      try {
        await deps.mailer.send({
          to: email,
          subject: `You are invited to ${organization.name}`,
          text:
            `You have been invited to join ${organization.name} as ${input.role}.\n\n` +
            `Open this link to accept it (valid for 7 days); sign in or create an account with ${email} first:\n\n` +
            `${deps.config.baseUrl}${invitationPagePath(token)}\n\n` +
            `API clients signed in as ${email} can accept with: POST ${deps.config.baseUrl}/api/user/invitations/${token}/accept\n`,
        });
      } catch (err) {
        // Committed already: the answer says the mail did not go out (see CreatedInvitationView).
        // The mail's body is never logged: it holds the token.
        deps.logger.error({ err, invitationId: row.id, organizationId }, 'invitation email could not be sent');
        return { ...view(row), emailSent: false };
      }
      return { ...view(row), emailSent: true };
    },

    async list(ctx: Ctx, organizationId: string, params: PageParams): Promise<Page<InvitationView>> {
      await deps.organizations.requireAccess(ctx, organizationId, 'invitations:manage');
      return paginate(await listPendingInvitations(db, organizationId, clock.now().toISOString(), params), params.limit, view);
    },

    async revoke(ctx: Ctx, organizationId: string, invitationId: string): Promise<void> {
      await deps.organizations.requireAccess(ctx, organizationId, 'invitations:manage');
      await db.transaction().execute(async (tx) => {
        if (!(await revokeInvitation(tx, organizationId, invitationId, clock.now().toISOString()))) throw notFound('Invitation');
        await deps.audit.record(tx, ctx, { action: 'invitation.revoked', organizationId, target: { type: 'invitation', id: invitationId } });
      });
    },

    /**
     * Read-only look at an invitation by its token, for the hosted page: organization name, invited
     * email and state. null for a malformed or unknown token (nothing else is revealed).
     */
    async preview(token: string): Promise<InvitationPreview | null> {
      if (!INVITATION_TOKEN_SHAPE.test(token)) return null;
      const inv = await findInvitationByTokenHash(db, sha256(token));
      if (!inv) return null;
      const org = await findOrganization(db, inv.organization_id);
      if (!org) return null;
      return {
        organizationName: org.name,
        email: inv.email,
        role: inv.role,
        expired: inv.expires_at <= clock.now().toISOString(),
        accepted: inv.accepted_at !== null,
        revoked: inv.revoked_at !== null,
      };
    },

    /** Accept by token: the caller's email must be the invited one; the token works once. */
    async accept(ctx: Ctx, token: string): Promise<{ organizationId: string; role: Role }> {
      const p = requirePrincipal(ctx);
      const nowIso = clock.now().toISOString();
      return db.transaction().execute(async (tx) => {
        const inv = await findInvitationByTokenHash(tx, sha256(token));
        if (!inv || inv.accepted_at || inv.revoked_at || inv.expires_at <= nowIso) {
          throw new AppError('INVALID_TOKEN', 'This invitation is unknown, already used, revoked or expired');
        }
        if (inv.email !== p.user.email) throw forbidden('This invitation was sent to another email address');
        // A key pinned to one organization acts for that organization only: it must not join its user to another.
        const pin = pinOf(p);
        if (pin && pin !== inv.organization_id) throw forbidden('This API key is pinned to another organization');
        if (await findMembership(tx, inv.organization_id, p.user.id)) throw conflict('You are already a member of this organization');
        if (!(await markInvitationAccepted(tx, inv.id, p.user.id, nowIso))) {
          throw new AppError('INVALID_TOKEN', 'This invitation is unknown, already used, revoked or expired');
        }
        await insertMember(tx, { organization_id: inv.organization_id, user_id: p.user.id, role: inv.role, created_at: nowIso, updated_at: nowIso }, deps.sessionCache);
        // The token reached this mailbox: the email address is proven.
        if (p.user.email_verified !== 1) await updateUser(tx, p.user.id, { email_verified: 1, updated_at: nowIso }, deps.sessionCache);
        await deps.audit.record(tx, ctx, {
          action: 'invitation.accepted',
          organizationId: inv.organization_id,
          target: { type: 'invitation', id: inv.id },
          metadata: { email: inv.email, role: inv.role },
        });
        return { organizationId: inv.organization_id, role: inv.role };
      });
    },
  };
}

export type InvitationService = ReturnType<typeof createInvitationService>;
