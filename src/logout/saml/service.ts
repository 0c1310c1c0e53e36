import { MINUTE, type Clock } from '../../clock.js';
import type { Config } from '../../config.js';
import type { Ctx } from '../../context.js';
import type { Db } from '../../db/database.js';
import type { AuditService } from '../../audit/service.js';
import type { RateLimits } from '../../http/rate-limit.js';
import type { KeyRing } from '../../crypto/keyring.js';
import { findOrganizationBySlug } from '../../organizations/store.js';
import type { SessionService } from '../../sessions/service.js';
import { openIdpLogoutHint } from '../../sessions/idp-session.js';
import { parseConnection, type Connection, type SamlConfig } from '../../sso/connections/model.js';
import type { ConnectionService } from '../../sso/connections/service.js';
import { findActiveConnection } from '../../sso/connections/store.js';
import { SsoLoginError } from '../../sso/errors.js';
import { findIdentity } from '../../sso/identities/store.js';
import { recordReplayKey, takeReplayKey } from '../../sso/saml/store.js';
import { samlUrls } from '../../sso/saml/urls.js';
import { logoutUrls } from '../urls.js';
import type { SessionSelector } from '../store.js';
import { logoutResponseXml, newMessageId, redirectBindingUrl, STATUS } from './messages.js';
import * as slo from './slo-checks.js';
import { liveSessionsOfIdentity } from './store.js';

/** Replay-cache key of a LogoutRequest Gatehouse sent (SP-initiated), taken by the IdP's answer. */
export const pendingRequestKey = (connectionId: string, requestId: string) => `slo-req:${connectionId}:${requestId}`;
/** Replay-cache key of a Single Logout message the IdP sent. */
const messageKey = (connectionId: string, id: string) => `slo:${connectionId}:${id}`;

export interface SloArrival {
  method: 'GET' | 'POST';
  /** GET: the raw query string (after `?`); POST: the raw form body. */
  raw: string;
}

/** Where to send the browser: the signed LogoutResponse to the IdP, or the signed-out page. */
export interface SloOutcome {
  redirectTo: string;
}

export function createSamlSingleLogout(deps: {
  db: Db;
  clock: Clock;
  keyring: KeyRing;
  rateLimits: RateLimits;
  config: Pick<Config, 'baseUrl'>;
  audit: Pick<AuditService, 'record'>;
  connections: Pick<ConnectionService, 'spPrivateKey'>;
  sessions: Pick<SessionService, 'endIn'>;
}) {
  const { db, clock } = deps;

  async function samlConnection(slug: string): Promise<{ connection: Connection; saml: SamlConfig; slug: string }> {
    const org = await findOrganizationBySlug(db, slug);
    const row = org ? await findActiveConnection(db, org.id) : undefined;
    const connection = row ? parseConnection(row) : null;
    // A disabled connection still takes logout: ending sessions is never refused for that.
    if (!org || !connection || !connection.saml) throw new SsoLoginError('connection_not_found', `No SAML connection is configured for "${slug.slice(0, 64)}"`);
    return { connection, saml: connection.saml, slug: org.slug };
  }

  async function recordRefusal(ctx: Ctx, connection: Connection, message: string, e: SsoLoginError) {
    await deps.rateLimits.consumeIp('sso-failure:ip', ctx.ip);
    await deps.audit.record(db, { ...ctx, principal: null }, {
      action: 'sso.single_logout_failed',
      organizationId: connection.organizationId,
      metadata: { connectionId: connection.id, message, reason: e.reason, detail: e.message },
    });
  }

  /**
   * The sessions an authenticated LogoutRequest names, ended: the identity is this connection's
   * (connection, NameID), with the Format and qualifiers it signed in with; with SessionIndex
   * only the sessions of that identity with that IdP session, else all of the identity's.
   */
  async function endNamedSessions(ctx: Ctx, connection: Connection, request: slo.LogoutRequestValues, replayUntil: Date, now: Date): Promise<void> {
    const identity = await findIdentity(db, connection.id, request.nameId);
    if (!identity) throw new SsoLoginError('nameid_unknown', 'The LogoutRequest names a NameID that is no identity of this connection');
    const live = await liveSessionsOfIdentity(db, identity.id);
    const same = (stored: string | null, asked: string | null) => stored === null || asked === null || stored === asked;
    const readable = (s: (typeof live)[number]) => {
      try {
        return openIdpLogoutHint(deps.keyring, s);
      } catch {
        return null; // an unreadable hint (retired secret key, damaged row) does not block the logout
      }
    };
    const hints = live.map(readable).filter((h) => h !== null && h.protocol === 'saml');
    if (hints.length > 0 && !hints.some((h) => h.protocol === 'saml' && same(h.nameIdFormat, request.nameIdFormat) && same(h.nameQualifier, request.nameQualifier) && same(h.spNameQualifier, request.spNameQualifier))) {
      throw new SsoLoginError('nameid_unknown', "The LogoutRequest's NameID Format or qualifiers differ from those the identity signed in with");
    }
    const selectors: SessionSelector[] = request.sessionIndexes.length
      ? request.sessionIndexes.map((idpSessionId) => ({ by: 'idp_session', connectionId: connection.id, idpSessionId, identityId: identity.id }))
      : [{ by: 'identity', identityId: identity.id }];
    return db.transaction().execute(async (tx) => {
      if (!(await recordReplayKey(tx, messageKey(connection.id, request.id), replayUntil.toISOString(), now.toISOString()))) {
        throw new SsoLoginError('replayed', 'This LogoutRequest was already received');
      }
      for (const selector of selectors) await deps.sessions.endIn(tx, ctx, selector, 'saml_single_logout', { connectionId: connection.id });
    });
  }

  /** The signed LogoutResponse to the IdP's SingleLogoutService (HTTP-Redirect), answering `inResponseTo`. */
  function answer(connection: Connection, saml: SamlConfig, slug: string, inResponseTo: string, relayState: string | null, refused: SsoLoginError | null, now: Date): string | null {
    if (!saml.idpSloUrl) return null;
    const urls = samlUrls(deps.config.baseUrl, slug, saml.spEntityId);
    const status = refused === null ? STATUS.success : STATUS.requester;
    const xml = logoutResponseXml({
      id: newMessageId(), issueInstant: now, issuer: urls.spEntityId, destination: saml.idpSloUrl, inResponseTo, status,
      subStatus: refused?.reason === 'nameid_unknown' ? STATUS.unknownPrincipal : null, message: refused ? refused.reason : null,
    });
    return redirectBindingUrl(saml.idpSloUrl, 'SAMLResponse', xml, deps.connections.spPrivateKey(connection), relayState && relayState.length <= 1024 ? relayState : null);
  }

  return {
    /**
     * A Single Logout message at `/api/auth/sso/{slug}/saml/slo`: every check of slo-checks.ts in
     * order. A message that is not authenticated (unsigned, forged, malformed) throws: no
     * LogoutResponse is sent for it. An authenticated LogoutRequest is always answered with a
     * signed LogoutResponse (Success, or Requester with the refusal); an authenticated
     * LogoutResponse to our request sends the browser to the signed-out page.
     */
    async receive(slug: string, arrival: SloArrival, ctx: Ctx): Promise<SloOutcome> {
      // Before any parsing or signature check: bounds what one address can make this endpoint do.
      await deps.rateLimits.consumeIp('saml-slo:ip', ctx.ip);
      slo.checkSize(Buffer.byteLength(arrival.raw, 'utf8'));
      const incoming = arrival.method === 'GET' ? slo.readRedirectQuery(arrival.raw) : slo.readPostForm(new URLSearchParams(arrival.raw));
      const { connection, saml, slug: orgSlug } = await samlConnection(slug);
      const now = clock.now();
      const x: slo.SloExpectations = { idpEntityId: saml.idpEntityId, idpCertificates: saml.idpCertificates, sloUrl: samlUrls(deps.config.baseUrl, orgSlug, saml.spEntityId).sloUrl, now };
      const parsed = slo.parseMessage(incoming, slo.decodeMessage(incoming));
      slo.refuseWeakAlgorithms(parsed);
      slo.requireSignature(parsed);
      const signed = slo.verifySignature(parsed, x);
      // Authenticated from here on.
      const messageName = signed.localName;
      try {
        slo.checkIssuer(signed, x);
        slo.checkDestination(signed, x);
        const replayUntil = slo.checkTimes(signed, x);
        if (incoming.kind === 'SAMLResponse') {
          const response = slo.readLogoutResponse(signed);
          if (!(await recordReplayKey(db, messageKey(connection.id, response.id), replayUntil.toISOString(), now.toISOString()))) throw new SsoLoginError('replayed', 'This LogoutResponse was already received');
          if (!(await takeReplayKey(db, pendingRequestKey(connection.id, response.inResponseTo), now.toISOString()))) {
            throw new SsoLoginError('in_response_to_unknown', 'This LogoutResponse answers no LogoutRequest Gatehouse sent (unknown, already answered, or older than 10 minutes)');
          }
          return { redirectTo: logoutUrls(deps.config.baseUrl).postLogoutRedirectUri };
        }
        const request = slo.readLogoutRequest(signed);
        await endNamedSessions(ctx, connection, request, replayUntil, now);
        return { redirectTo: answer(connection, saml, orgSlug, request.id, incoming.relayState, null, now) ?? logoutUrls(deps.config.baseUrl).postLogoutRedirectUri };
      } catch (e) {
        if (!(e instanceof SsoLoginError)) throw e;
        await recordRefusal(ctx, connection, messageName, e);
        const id = signed.getAttribute('ID') ?? '';
        const url = incoming.kind === 'SAMLRequest' ? answer(connection, saml, orgSlug, id, incoming.relayState, e, now) : null;
        if (!url) throw e;
        return { redirectTo: url };
      }
    },
  };
}

export type SamlSingleLogout = ReturnType<typeof createSamlSingleLogout>;

/** How long a LogoutRequest Gatehouse sent waits for the IdP's LogoutResponse. */
export const PENDING_REQUEST_TTL_MS = 10 * MINUTE;
