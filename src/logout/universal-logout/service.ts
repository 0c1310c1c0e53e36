import type { Clock } from '../../clock.js';
import type { Config } from '../../config.js';
import type { Ctx } from '../../context.js';
import type { Db, Executor } from '../../db/database.js';
import type { AuditService } from '../../audit/service.js';
import { emailDomainOrNull } from '../../domains/normalize.js';
import { isDomainVerifiedBy } from '../../domains/store.js';
import { parseConnection, sameIssuer, type Connection } from '../../sso/connections/model.js';
import { findIdentity } from '../../sso/identities/store.js';
import { MetadataError, type OidcMetadata } from '../../sso/oidc/metadata.js';
import { recordReplayKey } from '../../sso/saml/store.js';
import { findUserByEmail } from '../../users/store.js';
import type { RateLimits } from '../../http/rate-limit.js';
import type { SessionService } from '../../sessions/service.js';
import { logoutUrls } from '../urls.js';
import type { SessionSelector } from '../store.js';
import {
  checkAlgorithm, checkAudience, checkIssuer, checkJti, checkLifetime, checkSubject, checkTimes, checkType, expectedIssuers, expectedSubject,
  isCandidate, readBearer, readHeader, readSubject, readUnverifiedClaims, replayKeyOf, replayUntil, selectKey, UniversalLogoutError,
  verifySignature, type SubjectId, type TokenExpectations, type VerifiedClaims,
} from './checks.js';
import type { IdpTokenVault } from '../../sso/idp-tokens/vault.js';
import { findCandidateConnections, findUserEmail, organizationsTiedTo } from './store.js';

export interface UniversalLogoutDeps {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'baseUrl'>;
  audit: Pick<AuditService, 'record'>;
  sessions: Pick<SessionService, 'endIn'>;
  idpTokens: Pick<IdpTokenVault, 'revokeForUser'>;
  oidcMetadata: OidcMetadata;
  rateLimits: Pick<RateLimits, 'consumeIp'>;
}

export interface UniversalLogoutRequest {
  authorization: string | undefined;
  /** The parsed JSON body, or undefined when it was not JSON. */
  body: unknown;
}

/** What one connection did with a verified request. */
type Outcome = { kind: 'ended'; sessionsEnded: number } | { kind: 'unknown_user' } | { kind: 'foreign_issuer' };

/**
 * Okta Universal Logout (SPEC §8). The token is unauthenticated until verified, so:
 * 1. read iss and sub without trusting them, and find the connections that expect exactly that
 *    pair (enabled, Universal Logout on) — no connection, no outbound request;
 * 2. verify the token with the keys OIDC discovery of that iss publishes (every candidate expects
 *    the same iss, so the same keys), then each candidate's iss, sub, aud, times and jti;
 * 3. in one transaction: spend the jti (any instance), find the account the body names for each
 *    candidate, and end that account's sessions from the candidate's organization — all its
 *    sessions when its email domain is verified by that organization.
 * A connection acts only on its own organization: an owner who copies another organization's
 * issuer and subject into his connection reaches, with the other organization's genuine token,
 * only sessions of his own organization, and with his own keys nothing at all.
 */
export function createUniversalLogout(deps: UniversalLogoutDeps) {
  const audience = logoutUrls(deps.config.baseUrl).universalLogoutUri;

  async function verify(token: string, now: Date): Promise<{ claims: VerifiedClaims; connections: Connection[] }> {
    const header = readHeader(token);
    checkType(header);
    const alg = checkAlgorithm(header);
    const unverified = readUnverifiedClaims(token);
    const candidates = (await findCandidateConnections(deps.db, unverified.iss, unverified.sub)).map(parseConnection).filter((c) => isCandidate(c, unverified));
    if (candidates.length === 0) throw new UniversalLogoutError('no_connection', 'No connection with Universal Logout enabled expects this issuer and subject');
    // Discovery of the token's iss itself (an expected issuer of every candidate): its keys, and only its keys.
    const iss = candidates.flatMap(expectedIssuers).find((i) => sameIssuer(i, unverified.iss)) ?? unverified.iss;
    let jwksUri: string;
    try {
      jwksUri = (await deps.oidcMetadata.discover(iss)).jwks_uri;
    } catch (e) {
      if (e instanceof MetadataError) throw new UniversalLogoutError('keys_unavailable', `The issuer's keys could not be found: ${e.message}`);
      throw e;
    }
    const loadJwks = async (refresh: boolean) => {
      try {
        return await deps.oidcMetadata.jwks(jwksUri, { refresh });
      } catch (e) {
        if (e instanceof MetadataError) throw new UniversalLogoutError('keys_unavailable', `The issuer's keys could not be fetched: ${e.message}`);
        throw e;
      }
    };
    const key = await selectKey(header, alg, loadJwks);
    const claims = await verifySignature(token, key, alg);
    for (const c of candidates) {
      const expect: TokenExpectations = { issuers: expectedIssuers(c), subject: expectedSubject(c) ?? '', audience, now };
      checkIssuer(claims, expect);
      checkSubject(claims, expect);
      checkAudience(claims, expect);
      checkTimes(claims, expect);
      checkLifetime(claims);
      checkJti(claims);
    }
    return { claims: claims as VerifiedClaims, connections: candidates };
  }

  /** Who an `email` subject names, and the organizations that account is tied to: looked up once per request, whatever the number of candidates. */
  type EmailAccount = { userId: string; tiedTo: Set<string> } | null;
  async function emailAccount(tx: Executor, email: string): Promise<EmailAccount> {
    const user = await findUserByEmail(tx, email);
    return user ? { userId: user.id, tiedTo: await organizationsTiedTo(tx, user.id, emailDomainOrNull(user.email)) } : null;
  }

  /** The account the subject names for this connection, when the connection's organization may sign it out. */
  async function accountFor(tx: Executor, c: Connection, subject: SubjectId, byEmail: () => Promise<EmailAccount>): Promise<{ userId: string } | 'unknown' | 'foreign'> {
    if (subject.format === 'iss_sub') {
      // The user's IdP identity: the connection's IdP issuer (OIDC issuer, SAML IdP entity ID) and its subject.
      if (!sameIssuer(subject.iss, c.issuer) && !(c.oidc && sameIssuer(subject.iss, c.oidc.issuerUrl))) return 'foreign';
      const identity = await findIdentity(tx, c.id, subject.sub);
      return identity ? { userId: identity.user_id } : 'unknown';
    }
    // A user the organization has no tie to (member, identity of its connection, its verified
    // domain) is unknown to it: the same answer as no user, so no organization learns which
    // addresses have an account elsewhere.
    const account = await byEmail();
    return account && account.tiedTo.has(c.organizationId) ? { userId: account.userId } : 'unknown';
  }

  async function logOutFor(tx: Executor, ctx: Ctx, c: Connection, subject: SubjectId, byEmail: () => Promise<EmailAccount>): Promise<Outcome> {
    const account = await accountFor(tx, c, subject, byEmail);
    if (account === 'unknown') return { kind: 'unknown_user' };
    if (account === 'foreign') return { kind: 'foreign_issuer' };
    const email = await findUserEmail(tx, account.userId);
    const domain = email ? emailDomainOrNull(email) : null;
    const all = !!domain && (await isDomainVerifiedBy(tx, c.organizationId, domain));
    const selector: SessionSelector = all ? { by: 'user', userId: account.userId } : { by: 'user_organization', userId: account.userId, organizationId: c.organizationId };
    const ended = await deps.sessions.endIn(tx, ctx, selector, 'universal_logout', { connectionId: c.id });
    // SPEC §9: the IdP tokens kept for the app go with the sessions, over the same reach.
    const idpVaultRevoked = await deps.idpTokens.revokeForUser(tx, account.userId, all ? null : c.organizationId);
    const scope = all ? 'all' : 'organization';
    await deps.audit.record(tx, ctx, {
      action: 'sso.universal_logout',
      organizationId: c.organizationId,
      target: { type: 'user', id: account.userId },
      metadata: { connectionId: c.id, format: subject.format, scope, sessionsEnded: ended.sessions.length, idpVaultRevoked },
    });
    return { kind: 'ended', sessionsEnded: ended.sessions.length };
  }

  return {
    /** Verify and act; resolves when done (204), else throws a UniversalLogoutError (401, 400, 404, 422). */
    async handle(ctx: Ctx, req: UniversalLogoutRequest): Promise<{ sessionsEnded: number }> {
      await deps.rateLimits.consumeIp('universal-logout:ip', ctx.ip);
      const token = readBearer(req.authorization);
      const now = deps.clock.now();
      const { claims, connections } = await verify(token, now);
      const subject = readSubject(req.body);
      const outcomes = await deps.db.transaction().execute(async (tx) => {
        // Spent with the effect it had: a failure of the database rolls both back (Okta may retry).
        if (!(await recordReplayKey(tx, replayKeyOf(claims), replayUntil(claims), now.toISOString()))) {
          throw new UniversalLogoutError('replayed', 'This token (jti) was already used');
        }
        let found: Promise<EmailAccount> | null = null;
        const byEmail = () => (found ??= subject.format === 'email' ? emailAccount(tx, subject.email) : Promise.resolve(null));
        const out: Outcome[] = [];
        for (const c of connections) out.push(await logOutFor(tx, ctx, c, subject, byEmail));
        return out;
      });
      const ended = outcomes.flatMap((o) => (o.kind === 'ended' ? [o.sessionsEnded] : []));
      if (ended.length > 0) return { sessionsEnded: ended.reduce((n, x) => n + x, 0) };
      if (outcomes.some((o) => o.kind === 'foreign_issuer')) {
        throw new UniversalLogoutError('issuer_foreign', "The subject's iss is not this connection's IdP issuer: no account of that IdP is known through this connection");
      }
      throw new UniversalLogoutError('user_unknown', 'No user known to this organization matches the subject');
    },
  };
}

export type UniversalLogoutService = ReturnType<typeof createUniversalLogout>;
