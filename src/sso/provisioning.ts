import type { Clock } from '../clock.js';
import type { Ctx } from '../context.js';
import type { Executor } from '../db/database.js';
import type { OrganizationRow, UserRow } from '../db/schema.js';
import { newId } from '../ids.js';
import type { AuditService } from '../audit/service.js';
import type { JoinRequestService } from '../organizations/join-requests.js';
import { emailDomainOrNull } from '../domains/normalize.js';
import { isDomainVerifiedBy } from '../domains/store.js';
import { findMembership, findPendingInvitationByEmail, insertMemberIfAbsent, markInvitationAccepted } from '../organizations/store.js';
import { claimCounts, claimUnverifiedAccount } from '../users/claim.js';
import { deleteUser, findUserByEmail, insertUserIfAbsent, normalizeEmail } from '../users/store.js';
import type { Connection } from './connections/model.js';
import { SsoLoginError } from './errors.js';
import { findIdentity, findIdentityWithUser, insertIdentityIfAbsent, recordIdentityLogin } from './identities/store.js';
import type { SessionCacheDrops } from '../sessions/cache.js';

/** What any protocol hands to provisioning: the subject and the profile the IdP asserted. */
export interface SsoProfile {
  subject: string;
  email: string | null;
  /** false only when the IdP says the email is unverified; null when it says nothing. */
  emailVerified: boolean | null;
  name: string | null;
  /** The claims/attributes to cache on the identity (never tokens). */
  claims: Record<string, unknown>;
}

export interface ProvisionResult {
  user: UserRow;
  identityId: string;
  outcome: 'existing_identity' | 'linked' | 'created';
}

/** The email's domain as domains are stored (IDNA ASCII); the raw lower-cased part when it does not normalise. */
const emailDomain = (email: string) => emailDomainOrNull(email) ?? email.slice(email.lastIndexOf('@') + 1).toLowerCase();

/**
 * SPEC §4.5, the one place that decides who an SSO login is, for OIDC and SAML alike.
 * Runs inside the caller's transaction.
 */
export function createProvisioning(deps: { clock: Clock; audit: AuditService; joinRequests: JoinRequestService; sessionCache: SessionCacheDrops }) {
  function checkAllowedDomain(connection: Connection, email: string | null) {
    if (!connection.allowedDomains) return;
    if (!email || !connection.allowedDomains.includes(emailDomain(email))) {
      throw new SsoLoginError('domain_not_allowed', `The IdP signed in ${email ?? 'a user without email'}, whose domain is not among this connection's allowed domains (${connection.allowedDomains.join(', ')})`, { code: 'SSO_DOMAIN_NOT_ALLOWED' });
    }
  }

  /** Members pass; otherwise JIT adds the user with the default role, or a pending invitation admits them. */
  async function ensureMembership(tx: Executor, ctx: Ctx, connection: Connection, org: OrganizationRow, user: UserRow, now: string) {
    if (await findMembership(tx, org.id, user.id)) return;
    await admitNonMember(tx, ctx, connection, org, user, now);
  }

  /** A pending invitation admits the user, or JIT adds them with the default role, or the login is refused. */
  async function admitNonMember(tx: Executor, ctx: Ctx, connection: Connection, org: OrganizationRow, user: UserRow, now: string) {
    const invitation = await findPendingInvitationByEmail(tx, org.id, user.email, now);
    if (invitation && (await markInvitationAccepted(tx, invitation.id, user.id, now))) {
      await insertMemberIfAbsent(tx, { organization_id: org.id, user_id: user.id, role: invitation.role, created_at: now, updated_at: now }, deps.sessionCache);
      await deps.audit.record(tx, ctx, { action: 'invitation.accepted', organizationId: org.id, target: { type: 'invitation', id: invitation.id }, metadata: { email: user.email, role: invitation.role, via: 'sso' } });
      return;
    }
    // The invitation was accepted by a concurrent login of the same person, which added the membership.
    if (invitation && (await findMembership(tx, org.id, user.id))) return;
    if (!connection.allowJitProvisioning) {
      throw new SsoLoginError('user_not_provisioned', `${user.email} is not a member of ${org.name} and just-in-time provisioning is off: invite the user first`, { code: 'SSO_USER_NOT_PROVISIONED' });
    }
    // A concurrent login of the same person may have added it meanwhile (SPEC §12): then nothing to record.
    if (!(await insertMemberIfAbsent(tx, { organization_id: org.id, user_id: user.id, role: connection.defaultRole, created_at: now, updated_at: now }, deps.sessionCache))) return;
    await deps.audit.record(tx, ctx, { action: 'member.added', organizationId: org.id, target: { type: 'user', id: user.id }, metadata: { role: connection.defaultRole, via: 'sso_jit' } });
  }

  return {
    /** Provision, then SPEC §7 auto-join (an SSO login is a sign-in like any other). */
    async provision(tx: Executor, ctx: Ctx, connection: Connection, org: OrganizationRow, profile: SsoProfile): Promise<ProvisionResult> {
      const result = await provisionUser(tx, ctx, connection, org, profile);
      await deps.joinRequests.autoJoin(tx, ctx, result.user);
      return result;
    },
  };

  /**
   * SPEC §12: two first logins of one person may run at once (a double click, two tabs, two
   * instances). Every insert here is "if absent" — never a failed statement, which on PostgreSQL
   * would abort the whole transaction — and a login that finds its user or identity was created by
   * the other one meanwhile decides again from step 1, now seeing what the other committed. So
   * does a login whose identity was unlinked between step 1 and its update.
   */
  async function provisionUser(tx: Executor, ctx: Ctx, connection: Connection, org: OrganizationRow, profile: SsoProfile): Promise<ProvisionResult> {
    for (let attempt = 1; attempt <= 3; attempt++) {
      const result = await provisionOnce(tx, ctx, connection, org, profile);
      if (result !== LOST_RACE) return result;
    }
    throw new Error(`SSO provisioning of subject ${profile.subject} kept losing races on connection ${connection.id}`);
  }

  async function provisionOnce(tx: Executor, ctx: Ctx, connection: Connection, org: OrganizationRow, profile: SsoProfile): Promise<ProvisionResult | typeof LOST_RACE> {
    const now = deps.clock.now().toISOString();
    const email = profile.email ? normalizeEmail(profile.email) : null;
    const cached = JSON.stringify(profile.claims);

    // 1. A known identity (connection, subject) is that user.
    const known = await findIdentityWithUser(tx, connection.id, profile.subject, org.id);
    if (known) {
      const { identity, user } = known;
      checkAllowedDomain(connection, email);
      if (!user) throw new SsoLoginError('user_missing', 'The linked account no longer exists');
      const found = { user, member: known.member };
      // An admin may have unlinked the identity since it was read (SPEC §12: unlinking ends the
      // sessions it created). The update finds it gone then, and the login decides again from
      // step 1 under the usual rules, without it. Done before anything else is written: on
      // PostgreSQL the updated row stays locked, so an unlink that comes later waits for this
      // login's commit and then ends its session too.
      if ((await recordIdentityLogin(tx, identity.id, { email, claims: cached, last_login_at: now })) === 0) return LOST_RACE;
      if (!found.member) await admitNonMember(tx, ctx, connection, org, found.user, now);
      return { user: found.user, identityId: identity.id, outcome: 'existing_identity' };
    }

    // 2. Otherwise the email decides, and it is required.
    if (!email || !/^[^@\s]+@[^@\s]+$/.test(email)) {
      throw new SsoLoginError('email_missing', 'The IdP did not send an email address for this user: release the "email" claim (OIDC) or map an email attribute (SAML)');
    }
    checkAllowedDomain(connection, email);
    const domainVerified = await isDomainVerifiedBy(tx, org.id, emailDomain(email));
    // The organization's IdP proves the address only on its verified domain and when it does not
    // itself disown the email (email_verified: false; Entra without xms_edov on a multi-tenant issuer).
    const proves = domainVerified && profile.emailVerified !== false;

    let user = await findUserByEmail(tx, email);
    let outcome: ProvisionResult['outcome'];
    if (user) {
      // A first login of this same subject may have committed (user and identity at once) since step 1.
      if (await findIdentity(tx, connection.id, profile.subject)) return LOST_RACE;
      // 3. Link an existing account only on this organization's verified domain and an email the IdP does not disown.
      if (!domainVerified || profile.emailVerified === false) {
        throw new SsoLoginError(
          'account_link_required',
          `An account for ${email} already exists and cannot be linked automatically (${!domainVerified ? `${emailDomain(email)} is not a verified domain of ${org.name}` : 'the IdP marks the email as unverified'}). An admin must link it, or verify the domain.`,
          { code: 'SSO_ACCOUNT_LINK_REQUIRED' },
        );
      }
      outcome = 'linked';
    } else {
      // 4. A new person: JIT, or an invitation, or nothing.
      const invited = await findPendingInvitationByEmail(tx, org.id, email, now);
      if (!connection.allowJitProvisioning && !invited) {
        throw new SsoLoginError('user_not_provisioned', `${email} is not a member of ${org.name} and just-in-time provisioning is off: invite the user first`, { code: 'SSO_USER_NOT_PROVISIONED' });
      }
      // On PostgreSQL this waits for a concurrent login creating the same email, then does nothing.
      const inserted = await insertUserIfAbsent(tx, { id: newId(), email, name: profile.name, passwordHash: null, emailVerified: proves, now });
      if (!inserted) return LOST_RACE; // created meanwhile (by this person's other login, or a sign-up): decide again
      user = inserted;
      outcome = 'created';
    }

    // The identity first: a concurrent login of the same subject waits here for this one, then
    // finds the identity in step 1. Nothing else is written before it.
    const identityId = newId();
    if (!(await insertIdentityIfAbsent(tx, { id: identityId, connection_id: connection.id, organization_id: org.id, user_id: user.id, subject: profile.subject, email, claims: cached, last_login_at: now, created_at: now }))) {
      if (outcome === 'created') await deleteUser(tx, user.id); // ours, uncommitted, referenced by nothing yet
      return LOST_RACE;
    }
    if (outcome === 'created') {
      await deps.audit.record(tx, ctx, { action: 'user.created', organizationId: org.id, target: { type: 'user', id: user.id }, metadata: { via: 'sso', connectionId: connection.id } });
    }
    await ensureMembership(tx, ctx, connection, org, user, now);
    if (proves && user.email_verified !== 1) {
      // The organization's IdP proves an address the account never proved: whatever was set up
      // on it before (password, sessions, keys, TOTP, other identities) goes (see claim.ts).
      const claim = await claimUnverifiedAccount(tx, { service: deps.audit, ctx, sessionCache: deps.sessionCache }, user, now, { keepIdentityId: identityId, keepOrganizationId: org.id });
      await deps.audit.record(tx, ctx, { action: 'user.email_verified', organizationId: org.id, target: { type: 'user', id: user.id }, metadata: { method: 'sso', connectionId: connection.id, clearedUnverifiedLogin: claim.hadPassword, ...claimCounts(claim) } });
      user = { ...user, email_verified: 1, password_hash: null };
    }
    await deps.audit.record(tx, ctx, { action: outcome === 'linked' ? 'sso.identity_linked' : 'sso.identity_created', organizationId: org.id, target: { type: 'sso_identity', id: identityId }, metadata: { userId: user.id, connectionId: connection.id, subject: profile.subject } });
    return { user, identityId, outcome };
  }
}

/** A concurrent login created what this one was about to, or an unlink removed its identity: provisioning decides again. */
const LOST_RACE = Symbol('lost race');

export type Provisioning = ReturnType<typeof createProvisioning>;
