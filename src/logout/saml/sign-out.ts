import type { Clock } from '../../clock.js';
import type { Config } from '../../config.js';
import type { Db } from '../../db/database.js';
import type { ConnectionService } from '../../sso/connections/service.js';
import { recordReplayKey } from '../../sso/saml/store.js';
import { samlUrls } from '../../sso/saml/urls.js';
import type { ProtocolSignOut } from '../idp-sign-out.js';
import { logoutRequestXml, newMessageId, redirectBindingUrl } from './messages.js';
import { PENDING_REQUEST_TTL_MS, pendingRequestKey } from './service.js';

/**
 * SP-initiated SAML Single Logout (SPEC §8 signOutOfIdp): a LogoutRequest for the session's
 * NameID (Format, qualifiers) and SessionIndex, signed with the organization's SP key, over the
 * HTTP-Redirect binding to the IdP's SingleLogoutService. Its ID waits in the replay cache (every
 * instance sees it) for the IdP's LogoutResponse at /saml/slo, for 10 minutes.
 */
export function createSamlSignOut(deps: { db: Db; clock: Clock; config: Pick<Config, 'baseUrl'>; connections: Pick<ConnectionService, 'spPrivateKey'> }): ProtocolSignOut<'saml'> {
  return async ({ connection, organizationSlug, hint }) => {
    const saml = connection.saml;
    if (!saml?.idpSloUrl) return null;
    const now = deps.clock.now();
    const id = newMessageId();
    const xml = logoutRequestXml({
      id,
      issueInstant: now,
      lifetimeMs: PENDING_REQUEST_TTL_MS,
      issuer: samlUrls(deps.config.baseUrl, organizationSlug, saml.spEntityId).spEntityId,
      destination: saml.idpSloUrl,
      nameId: hint.nameId,
      nameIdFormat: hint.nameIdFormat,
      nameQualifier: hint.nameQualifier,
      spNameQualifier: hint.spNameQualifier,
      sessionIndex: hint.sessionIndex,
    });
    const url = redirectBindingUrl(saml.idpSloUrl, 'SAMLRequest', xml, deps.connections.spPrivateKey(connection));
    await recordReplayKey(deps.db, pendingRequestKey(connection.id, id), new Date(now.getTime() + PENDING_REQUEST_TTL_MS).toISOString(), now.toISOString());
    return url;
  };
}
