import type { Executor } from '../db/database.js';
import type { OrganizationRow, Role, SessionRow, UserRow } from '../db/schema.js';
import { AppError } from '../http/errors.js';
import { ULID_PATTERN } from '../ids.js';
import { findMembership, findOrganization, findOrganizationBySlug } from '../organizations/store.js';
import { enforceOrganizationPolicy } from '../policy/enforce.js';
import { findRecordOrganization } from './store.js';

/**
 * SPEC §8: scope `organization` names one organization (the `organization` authorization
 * parameter, an id or a slug, or the picker's choice), and that organization's sign-in policy
 * applies to the Gatehouse session signing into the app:
 * - not a member (superadmins included: an app's org_role must be a real membership) → access_denied;
 * - SSO-only and the session is not this organization's SSO → the browser goes through its IdP first;
 * - MFA required and missing → access_denied, saying what to do.
 */
export type OrganizationDecision =
  | { kind: 'ok'; organization: OrganizationRow; role: Role }
  | { kind: 'denied'; message: string }
  | { kind: 'sso'; organization: OrganizationRow; ssoUrl: string };

export async function findOrganizationByIdOrSlug(db: Executor, wanted: string): Promise<OrganizationRow | undefined> {
  const value = wanted.trim();
  if (!value || value.length > 200) return undefined;
  if (ULID_PATTERN.test(value)) return findOrganization(db, value);
  return findOrganizationBySlug(db, value.toLowerCase());
}

export async function decideOrganization(db: Executor, who: { user: UserRow; session: SessionRow }, wanted: string): Promise<OrganizationDecision> {
  const organization = await findOrganizationByIdOrSlug(db, wanted);
  const membership = organization ? await findMembership(db, organization.id, who.user.id) : undefined;
  // One answer for "no such organization" and "not yours": the app learns nothing about others.
  if (!organization || !membership) return { kind: 'denied', message: 'You are not a member of this organization' };
  try {
    await enforceOrganizationPolicy(db, { kind: 'session', user: who.user, session: who.session }, organization);
  } catch (e) {
    if (!(e instanceof AppError)) throw e;
    if (e.code === 'SSO_REQUIRED' && typeof e.details?.ssoUrl === 'string') return { kind: 'sso', organization, ssoUrl: e.details.ssoUrl };
    return { kind: 'denied', message: e.message };
  }
  return { kind: 'ok', organization, role: membership.role };
}

/**
 * Per-request memo: one token request asks the same question several times (each token it stores,
 * the ID token's claims, the access token's claims); the database answers once. Keyed by the
 * provider's request context, so nothing outlives the request.
 */
const perRequest = new WeakMap<object, Map<string, Promise<unknown>>>();
function once<T>(request: object | undefined, key: string, load: () => Promise<T>): Promise<T> {
  if (!request) return load();
  let memo = perRequest.get(request);
  if (!memo) perRequest.set(request, (memo = new Map()));
  let found = memo.get(key) as Promise<T> | undefined;
  if (!found) memo.set(key, (found = load()));
  return found;
}

/** The organization an authorization chose, from the code or token it is carried by. */
export function recordOrganization(db: Executor, request: object | undefined, model: string, id: string): Promise<string | null> {
  return once(request, `record:${model}:${id}`, () => findRecordOrganization(db, model, id));
}

/** Whether the user is still a member of the organization, and in which role (refresh, UserInfo). */
export function currentRole(db: Executor, organizationId: string, userId: string, request?: object): Promise<{ organization: OrganizationRow; role: Role } | null> {
  return once(request, `role:${organizationId}:${userId}`, async () => {
    const organization = await findOrganization(db, organizationId);
    const membership = organization ? await findMembership(db, organizationId, userId) : undefined;
    return organization && membership ? { organization, role: membership.role } : null;
  });
}
