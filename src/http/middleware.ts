import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import type { Ctx, Principal } from '../context.js';
import type { Logger } from '../logger.js';
import { newId } from '../ids.js';
import { requiredScope, scopeAllows, type ApiKeyService } from '../api-keys/service.js';
import { SESSION_COOKIE, type SessionService } from '../sessions/service.js';
import type { ClientIpResolver } from './client-ip.js';
import { AppError } from './errors.js';
import { looksLikeJwt, type AccessTokens } from '../tokens/access-tokens.js';
import { SETUP_LINK_HEADER, setupLinkAllows, type SetupLinkActor, type SetupLinkService } from '../setup-links/service.js';

export interface AppEnv {
  Variables: {
    requestId: string;
    principal: Principal | null;
    /** How the principal was authenticated: only cookie-authenticated writes need the Origin check. */
    authVia: 'cookie' | 'api_key' | 'bearer' | 'setup_link' | null;
    /** SPEC §5: the request acts through a setup link (principal null). */
    setupLink: SetupLinkActor | null;
    /** The client IP behind the trusted proxies (set by `clientAddress`). */
    clientIp: string | null;
    /** POST /api/auth/token and /token/revoke: the body, parsed once (JSON or form; tokens/routes.ts). */
    tokenBody?: { form: boolean; body: unknown };
    /** POST /api/auth/token carries a refresh grant: its credential is in the body, not the cookie. */
    refreshGrant?: boolean;
  };
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** The request's id: the caller's X-Request-Id when it is a plain token of at most 64 characters, else a new one. */
export function requestIdOf(incoming: string | undefined): string {
  return incoming && REQUEST_ID.test(incoming) ? incoming : newId();
}

export function requestId(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const id = requestIdOf(c.req.header('x-request-id'));
    c.set('requestId', id);
    c.set('principal', null);
    c.set('authVia', null);
    c.set('setupLink', null);
    c.set('clientIp', null);
    c.header('X-Request-Id', id);
    await next();
  };
}

/** Pages whose last path segment is a bearer token (a setup link, an invitation): it never reaches a log. */
const TOKEN_IN_PATH = /^(\/setup\/|\/invitations\/|\/api\/user\/invitations\/)[^/]+/;
export const loggablePath = (path: string) => path.replace(TOKEN_IN_PATH, '$1[token]');

/** One line per request: method, path (tokens masked; never the query: it can hold tokens), status, time. */
export function accessLog(logger: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const start = performance.now();
    await next();
    logRequest(logger, { requestId: c.get('requestId'), method: c.req.method, path: c.req.path, status: c.res.status, start, userId: c.get('principal')?.user.id });
  };
}

/** The access-log line of one answered request (info, or error for a 5xx). */
export function logRequest(logger: Logger, r: { requestId: string; method: string; path: string; status: number; start: number; userId: string | undefined }): void {
  const level = r.status >= 500 ? 'error' : 'info';
  if (!logger.isLevelEnabled(level)) return;
  logger[level]({
    requestId: r.requestId,
    method: r.method,
    path: loggablePath(r.path),
    status: r.status,
    ms: Math.round((performance.now() - r.start) * 10) / 10,
    userId: r.userId,
  }, 'request');
}

function socketAddress(c: Context): string | null {
  // No Node request behind it (app.request in process): no socket, and no exception to build.
  if (!(c.env as { incoming?: unknown } | undefined)?.incoming) return null;
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    return null;
  }
}

/**
 * Resolve the client IP once per request (GATEHOUSE_TRUSTED_PROXIES, see client-ip.ts); every
 * rate limit and audit entry reads it through `clientIp`.
 */
export function clientAddress(resolve: ClientIpResolver): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set('clientIp', resolve(socketAddress(c), c.req.header('x-forwarded-for')));
    await next();
  };
}

/** The client IP set by `clientAddress`; never the raw socket address when proxies are trusted. */
export function clientIp(c: Context<AppEnv>): string | null {
  return c.get('clientIp') ?? null;
}

/** The request facts every service call receives. */
export function ctxOf(c: Context<AppEnv>): Ctx {
  return {
    principal: c.get('principal'),
    setupLink: c.get('setupLink'),
    ip: clientIp(c),
    userAgent: c.req.header('user-agent') ?? null,
    requestId: c.get('requestId'),
  };
}

/**
 * Resolve the caller: `X-Api-Key`, else `Authorization: Bearer`, else the session cookie.
 * A bearer value shaped like a JWT is an access token (SPEC §8): verified (ES256, published kid,
 * typ at+jwt, iss, aud, exp), then its session (`sid`) must be live and the token's user's; the
 * principal then holds that session's rights (tenant policy applies), with authVia `bearer` (no
 * CSRF: a browser never attaches it by itself). Any other bearer value is an API key.
 * A presented key or bearer token that does not resolve is a 401 at once — never a fall-through
 * to another credential; a stale cookie is simply no session (the route decides whether it needs one).
 */
export function authenticate(deps: { apiKeys: ApiKeyService; sessions: SessionService; accessTokens: Pick<AccessTokens, 'verify'>; setupLinks: Pick<SetupLinkService, 'authenticate'> }): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const linkId = c.req.header(SETUP_LINK_HEADER);
    if (linkId !== undefined) {
      // SPEC §5: a setup link is the only credential of its request (a session or key beside it is not used).
      const link = await deps.setupLinks.authenticate(linkId, (name) => getCookie(c, name));
      if (!link) throw new AppError('UNAUTHENTICATED', 'The setup link is unknown, expired, revoked or open in another browser');
      if (!setupLinkAllows(link, c.req.method, c.req.path)) throw new AppError('FORBIDDEN', 'A setup link can only set up SSO and domains within its scope');
      c.set('setupLink', link);
      c.set('authVia', 'setup_link');
      return next();
    }
    const headerKey = c.req.header('x-api-key');
    const authz = c.req.header('authorization');
    let bearer: string | undefined;
    if (authz !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(authz);
      if (!m) throw new AppError('UNAUTHENTICATED', 'Authorization must be "Bearer <API key or access token>"');
      bearer = m[1];
    }
    if (headerKey === undefined && bearer !== undefined && looksLikeJwt(bearer)) {
      const claims = await deps.accessTokens.verify(bearer);
      if (!claims) throw new AppError('UNAUTHENTICATED', 'The access token is invalid or expired');
      const found = await deps.sessions.authenticateById(claims.sid);
      if (!found || found.user.id !== claims.sub) throw new AppError('UNAUTHENTICATED', 'The session of this access token has ended');
      c.set('principal', { kind: 'session', user: found.user, session: found.session });
      c.set('authVia', 'bearer');
      return next();
    }
    const presented = headerKey ?? bearer;
    if (presented !== undefined) {
      const found = await deps.apiKeys.authenticate(presented);
      if (!found) throw new AppError('UNAUTHENTICATED', 'The API key is invalid, revoked or expired');
      const needed = requiredScope(c.req.path, c.req.method);
      if (!scopeAllows(found.scopes, needed)) {
        throw new AppError('FORBIDDEN', `This API key lacks the scope ${needed}`, { requiredScope: needed });
      }
      c.set('principal', { kind: 'api_key', user: found.user, apiKey: found.apiKey, scopes: found.scopes });
      c.set('authVia', 'api_key');
      return next();
    }
    const token = getCookie(c, SESSION_COOKIE);
    if (token) {
      const found = await deps.sessions.authenticate(token);
      if (found) {
        c.set('principal', { kind: 'session', user: found.user, session: found.session });
        c.set('authVia', 'cookie');
      }
    }
    return next();
  };
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * CSRF (SPEC §3): a cookie-authenticated write must carry an Origin from the trusted origins.
 * A write without a session (sign-in, sign-up) that does carry a browser Origin must carry a
 * trusted one too (login CSRF). Routes that receive cross-site posts by design (the SAML ACS)
 * are listed in `exempt`, and so are requests whose only credential is a token in the body (the
 * refresh grant, token revocation). API keys and bearer access tokens are never sent by a browser
 * on its own, so they need no Origin.
 */
export function csrf(trustedOrigins: readonly string[], exempt: (path: string, c: Context<AppEnv>) => boolean = () => false): MiddlewareHandler<AppEnv> {
  const trusted = new Set(trustedOrigins);
  return async (c, next) => {
    if (!UNSAFE.has(c.req.method) || exempt(c.req.path, c)) return next();
    const origin = c.req.header('origin');
    const via = c.get('authVia');
    if (via === 'api_key' || via === 'bearer') return next();
    if ((via === 'cookie' || via === 'setup_link') && (!origin || !trusted.has(origin))) {
      throw new AppError('CSRF_REJECTED', 'Cross-site request refused: the Origin header is missing or not trusted');
    }
    if (via === null && origin && origin !== 'null' && !trusted.has(origin)) {
      throw new AppError('CSRF_REJECTED', 'Cross-site request refused: the Origin is not trusted');
    }
    return next();
  };
}

/** The authenticated caller, or 401. */
export function requireAuth(c: Context<AppEnv>): Principal {
  const p = c.get('principal');
  if (!p) throw new AppError('UNAUTHENTICATED', 'Sign in or present an API key');
  return p;
}

/**
 * What a session whose second factor is still pending may reach (SPEC §6): the session, the MFA
 * endpoints and sign-out — plus the anonymous sign-in entry points (password, sign-up, magic
 * link, password reset, SSO) and the emailed verification link, which never act with the current session's rights and must stay
 * usable so the user can start over another way.
 */
const MFA_PENDING_ALLOWED = /^\/api\/auth\/(session|sign-out|mfa(\/.*)?|sign-in\/.+|sign-up\/.+|magic-link(\/verify)?|password\/(forgot|reset)|email\/verify|sso\/.+)$/;

/**
 * SPEC §6: a user with a confirmed factor signs in to a session whose MFA is pending; until
 * POST /api/auth/mfa/verify succeeds, only the session, the MFA endpoints and sign-out work.
 * `actsWithoutPrincipal`: requests that never use the caller's session (the refresh grant and
 * token revocation, whose credential is the token in the body) are not the pending session's to block.
 */
export function mfaPendingGate(actsWithoutPrincipal: (c: Context<AppEnv>) => boolean = () => false): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const p = c.get('principal');
    if (p?.kind === 'session' && p.session.mfa_state === 'pending' && !MFA_PENDING_ALLOWED.test(c.req.path) && !actsWithoutPrincipal(c)) {
      throw new AppError('MFA_REQUIRED', 'Finish signing in: verify your second factor first (POST /api/auth/mfa/verify)');
    }
    return next();
  };
}
