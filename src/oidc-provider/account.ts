import type { Account, FindAccount, KoaContextWithOIDC } from 'oidc-provider';
import type { Db } from '../db/database.js';
import { findUserById } from '../users/store.js';
import { currentRole, recordOrganization } from './organization.js';
import { chosenOrganization, type ChosenOrganization } from './policy.js';

/** Records that remember the organization of the authorization they came from. */
const CARRIES_ORGANIZATION = new Set(['AuthorizationCode', 'AccessToken', 'RefreshToken']);

/**
 * oidc-provider's account lookup. `sub` is the Gatehouse user id, the same for every app. With
 * scope `organization`, the organization is the one the authorization chose — read from the code
 * or token being used, and checked again each time: a user removed from the organization since is
 * no account any more for that token (refresh → invalid_grant, UserInfo → invalid_token).
 */
export function createFindAccount(deps: { db: Db }): FindAccount {
  return async (ctx: KoaContextWithOIDC, sub: string, token?: { kind: string; jti: string }) => {
    const user = await findUserById(deps.db, sub);
    if (!user) return undefined;
    let organization: ChosenOrganization | null = null;
    if (token && CARRIES_ORGANIZATION.has(token.kind)) {
      const organizationId = await recordOrganization(deps.db, ctx, token.kind, token.jti);
      if (organizationId) {
        organization = await currentRole(deps.db, organizationId, user.id, ctx);
        if (!organization) return undefined;
      }
    } else {
      organization = chosenOrganization(ctx);
    }
    const account: Account = {
      accountId: user.id,
      async claims(_use, scope) {
        const scopes = new Set(scope.split(' '));
        return {
          sub: user.id,
          email: user.email,
          email_verified: user.email_verified === 1,
          ...(user.name ? { name: user.name } : {}),
          ...(organization && scopes.has('organization')
            ? { org_id: organization.organization.id, org_slug: organization.organization.slug, org_role: organization.role }
            : {}),
        };
      },
    };
    return account;
  };
}
