import type { Executor } from '../../db/database.js';
import type { ConnectionRow } from '../../sso/connections/store.js';

/**
 * The enabled, active OIDC connections whose issuer is one of `issuers` (exact strings: the
 * token's `iss`, and the Entra template it would fill). Several organizations may name the same
 * issuer (a shared IdP, or a copy); the caller narrows by client id and signature. Not limited:
 * cutting the list could drop the connection the token is for.
 */
export async function findOidcConnectionsByIssuer(db: Executor, issuers: readonly string[]): Promise<ConnectionRow[]> {
  if (issuers.length === 0) return [];
  return db
    .selectFrom('sso_connections')
    .selectAll()
    .where('issuer', 'in', [...issuers])
    .where('protocol', '=', 'oidc')
    .where('status', '=', 'active')
    .where('enabled', '=', 1)
    .execute();
}
