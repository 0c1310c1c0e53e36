import type { AuditService } from '../../audit/service.js';
import type { Clock } from '../../clock.js';
import type { Ctx } from '../../context.js';
import type { Db } from '../../db/database.js';
import type { RateLimits } from '../../http/rate-limit.js';
import type { Logger } from '../../logger.js';
import type { SessionService } from '../../sessions/service.js';
import { parseConnection, TENANT_ID_PATTERN, TENANT_TEMPLATE, type Connection, type OidcConfig } from '../../sso/connections/model.js';
import { findIdentity } from '../../sso/identities/store.js';
import { MetadataError, type Discovery, type OidcMetadata } from '../../sso/oidc/metadata.js';
import { recordReplayKey } from '../../sso/saml/store.js';
import type { SessionSelector } from '../store.js';
import { findOidcConnectionsByIssuer } from './store.js';
import {
  audiences, checkAlgorithm, checkAlgorithmOfIdp, checkAudience, checkEvents, checkExpiry, checkIssuedAt, checkIssuer, checkJti, checkNoNonce, checkPresent,
  checkSubjectOrSession, checkType, CLOCK_SKEW_S, LogoutTokenError, readToken, selectKey, verifySignature, type ReadToken,
} from './checks.js';

/**
 * A `jti` is remembered until the token's `exp` (plus the skew): past it the token is refused as
 * expired anyway. An IdP-signed token with an absurd `exp` is remembered for 30 days at most, so
 * the table stays bounded.
 */
const MAX_REPLAY_MEMORY_S = 30 * 24 * 3600;

/**
 * The Entra ID template a token's issuer would fill (`https://login.microsoftonline.com/{tenantid}/v2.0`
 * for `…/<tenant GUID>/v2.0`), or null: a templated connection is found by it, and then accepts
 * only its allowedTenants (checkIssuer).
 */
export function issuerTemplateOf(iss: string): string | null {
  let url: URL;
  try {
    url = new URL(iss);
  } catch {
    return null;
  }
  const segments = url.pathname.split('/');
  const i = segments.findIndex((s) => TENANT_ID_PATTERN.test(s));
  if (i < 0) return null;
  segments[i] = TENANT_TEMPLATE;
  return `${url.origin}${segments.join('/')}`;
}

interface OidcConnection {
  connection: Connection;
  oidc: OidcConfig;
}

export interface BackchannelLogoutResult {
  /** The connections the token was verified for (one, unless several organizations share the IdP client). */
  connections: number;
  sessionsEnded: number;
}

/**
 * SPEC §8 "OIDC Back-Channel Logout from the IdP": POST /api/auth/sso/backchannel-logout. The
 * connection is found from the token's unverified `iss` and `aud`, and only trusted once the
 * token verifies with that connection's IdP keys; everything it ends is that connection's (its
 * sessions by `sid`, its identities by `sub`), so no organization can end another's sessions by
 * naming their issuer or copying their client id.
 */
export function createBackchannelLogout(deps: {
  db: Db;
  clock: Clock;
  logger: Logger;
  rateLimits: RateLimits;
  oidcMetadata: OidcMetadata;
  audit: Pick<AuditService, 'record'>;
  sessions: Pick<SessionService, 'endIn'>;
}) {
  /** 5: every enabled OIDC connection whose issuer is `iss` and whose client id is in `aud`. */
  async function connectionsFor(read: ReadToken): Promise<OidcConnection[]> {
    const iss = read.unverified.iss;
    const aud = audiences(read.unverified.aud);
    if (typeof iss !== 'string' || aud.length === 0) throw new LogoutTokenError('unknown_connection', 'The logout token names no issuer (iss) or audience (aud)');
    const template = issuerTemplateOf(iss);
    const rows = await findOidcConnectionsByIssuer(deps.db, template ? [iss, template] : [iss]);
    const found = rows.map(parseConnection).flatMap((connection) => (connection.oidc && aud.includes(connection.oidc.clientId) ? [{ connection, oidc: connection.oidc }] : []));
    if (found.length === 0) throw new LogoutTokenError('unknown_connection', `No enabled OIDC connection has the issuer "${iss.slice(0, 256)}" and a client id in the token's aud`);
    return found;
  }

  /** 6–15 for one connection: the verified claims, or the refusal. */
  async function verifyFor(read: ReadToken, alg: string, { connection, oidc }: OidcConnection) {
    let discovery: Discovery;
    try {
      discovery = await deps.oidcMetadata.discover(oidc.issuerUrl);
    } catch (e) {
      if (e instanceof MetadataError) throw new LogoutTokenError('keys_unavailable', e.message, { cause: e });
      throw e;
    }
    checkAlgorithmOfIdp(alg, discovery.id_token_signing_alg_values_supported);
    const jwksUri = discovery.jwks_uri;
    const loadJwks = async (refresh: boolean) => {
      try {
        return await deps.oidcMetadata.jwks(jwksUri, { refresh });
      } catch (e) {
        if (e instanceof MetadataError) throw new LogoutTokenError('keys_unavailable', e.message, { cause: e });
        throw e;
      }
    };
    const key = await selectKey(read.header, alg, loadJwks);
    const claims = await verifySignature(read.token, key, alg);
    const expect = { issuer: connection.issuer, allowedTenants: oidc.allowedTenants ?? null, clientId: oidc.clientId, now: deps.clock.now() };
    checkIssuer(claims, expect);
    checkAudience(claims, expect);
    checkIssuedAt(claims, expect);
    checkExpiry(claims, expect);
    checkEvents(claims);
    checkNoNonce(claims);
    const target = checkSubjectOrSession(claims);
    const jti = checkJti(claims);
    return { claims, target, jti, iss: String(claims.iss), exp: Number(claims.exp) };
  }

  return {
    async receive(logoutToken: string | undefined, ctx: Ctx): Promise<BackchannelLogoutResult> {
      await deps.rateLimits.consumeIp('backchannel-logout:ip', ctx.ip);
      try {
        return await receive(logoutToken, ctx);
      } catch (e) {
        if (e instanceof LogoutTokenError) deps.logger.warn({ reason: e.reason, requestId: ctx.requestId, ip: ctx.ip }, `back-channel logout token refused: ${e.message}`);
        throw e;
      }
    },
  };

  async function receive(logoutToken: string | undefined, ctx: Ctx): Promise<BackchannelLogoutResult> {
    const read = readToken(checkPresent(logoutToken));
    checkType(read.header);
    const alg = checkAlgorithm(read.header);
    const candidates = await connectionsFor(read);
    // Normally one connection. When several organizations name the same issuer and client id
    // (a copied configuration), each is checked on its own and each ends only its own sessions:
    // refusing the token instead would let a copy silence the real owner's logouts.
    const verified: Array<{ connection: Connection } & Awaited<ReturnType<typeof verifyFor>>> = [];
    let firstRefusal: unknown = null;
    for (const candidate of candidates) {
      try {
        verified.push({ connection: candidate.connection, ...(await verifyFor(read, alg, candidate)) });
      } catch (e) {
        if (!(e instanceof LogoutTokenError)) throw e;
        firstRefusal ??= e;
      }
    }
    if (verified.length === 0) throw firstRefusal;
    const { iss, jti, exp, target } = verified[0]!;

    const now = deps.clock.now();
    const nowS = Math.floor(now.getTime() / 1000);
    const rememberUntil = new Date(1000 * Math.min(Math.max(exp, nowS) + CLOCK_SKEW_S, nowS + MAX_REPLAY_MEMORY_S)).toISOString();
    return deps.db.transaction().execute(async (tx) => {
      // Accepted once, across every instance sharing the database; spent only with the sessions' end.
      if (!(await recordReplayKey(tx, `bcl:${iss}:${jti}`, rememberUntil, now.toISOString()))) {
        throw new LogoutTokenError('replayed', 'This logout token (its iss and jti) was already accepted');
      }
      let sessionsEnded = 0;
      for (const { connection } of verified) {
        const identity = target.sub !== null ? await findIdentity(tx, connection.id, target.sub) : undefined;
        let selector: SessionSelector | null = null;
        if (target.sid !== null) {
          // With sub too, only the sessions of that identity: a sid of another user's session ends nothing of it.
          if (target.sub === null || identity) selector = { by: 'idp_session', connectionId: connection.id, idpSessionId: target.sid, ...(identity ? { identityId: identity.id } : {}) };
        } else if (identity) {
          selector = { by: 'identity', identityId: identity.id };
        }
        const ended = selector ? (await deps.sessions.endIn(tx, ctx, selector, 'idp_backchannel_logout', { connectionId: connection.id })).sessions.length : 0;
        sessionsEnded += ended;
        // Only where the token found something of this connection: a connection that copies
        // another organization's issuer and client id must not have that organization's logouts
        // recorded in its own audit log.
        if (ended === 0 && !identity) continue;
        await deps.audit.record(tx, ctx, {
          action: 'sso.backchannel_logout',
          organizationId: connection.organizationId,
          target: { type: 'sso_connection', id: connection.id },
          metadata: { connectionId: connection.id, sessionsEnded: ended, by: target.sid !== null ? 'sid' : 'sub', ...(identity ? { identityId: identity.id } : {}) },
        });
      }
      return { connections: verified.length, sessionsEnded };
    });
  }
}

export type BackchannelLogout = ReturnType<typeof createBackchannelLogout>;
