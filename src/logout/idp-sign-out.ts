import type { KeyRing } from '../crypto/keyring.js';
import type { Db } from '../db/database.js';
import type { SessionRow } from '../db/schema.js';
import type { Logger } from '../logger.js';
import { findOrganization } from '../organizations/store.js';
import { openIdpLogoutHint, type IdpLogoutHint } from '../sessions/idp-session.js';
import { parseConnection, type Connection } from '../sso/connections/model.js';
import { findConnection } from '../sso/connections/store.js';

/**
 * SPEC §8 "Signing out of the IdP": when a session came from a connection with `signOutOfIdp`,
 * POST /api/auth/sign-out answers `data.idpLogoutUrl` — the IdP's logout URL for the browser to
 * follow (OIDC RP-initiated logout, SAML SP-initiated Single Logout). Each protocol builds its URL
 * in its own module; this picks the one the session's connection speaks.
 */
export type ProtocolSignOut<P extends IdpLogoutHint['protocol']> = (input: {
  session: SessionRow;
  connection: Connection;
  organizationSlug: string;
  hint: Extract<IdpLogoutHint, { protocol: P }>;
}) => Promise<string | null>;

export interface IdpSignOutProtocols {
  oidc?: ProtocolSignOut<'oidc'>;
  saml?: ProtocolSignOut<'saml'>;
}

export function createIdpSignOut(deps: { db: Db; keyring: KeyRing; logger: Logger }, protocols: IdpSignOutProtocols) {
  return {
    /**
     * The IdP logout URL for a session about to end, or null (not SSO, the connection does not
     * sign out of the IdP, or the IdP cannot be reached to build the URL — the Gatehouse session
     * ends all the same: a sign-out never fails because the IdP is away).
     */
    async urlFor(session: SessionRow): Promise<string | null> {
      if (session.auth_method !== 'sso' || !session.connection_id) return null;
      const row = await findConnection(deps.db, session.connection_id);
      if (!row) return null;
      const connection = parseConnection(row);
      if (!connection.signOutOfIdp) return null;
      const org = await findOrganization(deps.db, connection.organizationId);
      if (!org) return null;
      try {
        // An unreadable hint (a retired secret key, a damaged row) must not keep the session from ending.
        const hint = openIdpLogoutHint(deps.keyring, session);
        if (!hint) return null;
        if (hint.protocol === 'oidc' && connection.protocol === 'oidc' && protocols.oidc) return await protocols.oidc({ session, connection, organizationSlug: org.slug, hint });
        if (hint.protocol === 'saml' && connection.protocol === 'saml' && protocols.saml) return await protocols.saml({ session, connection, organizationSlug: org.slug, hint });
      } catch (err) {
        deps.logger.warn({ err, connectionId: connection.id }, 'could not build the IdP logout URL; the Gatehouse session ends without it');
      }
      return null;
    },
  };
}

export type IdpSignOut = ReturnType<typeof createIdpSignOut>;
