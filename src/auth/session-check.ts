import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { parse as parseCookies } from 'hono/utils/cookie';
import type { SessionRow, UserRow } from '../db/schema.js';
import type { MembershipSummary, SessionWithUser } from '../sessions/cache.js';
import { errorBody, okBody } from '../http/envelope.js';
import { AppError } from '../http/errors.js';
import { logRequest, requestIdOf } from '../http/middleware.js';
import { SECURITY_HEADERS } from '../http/security-headers.js';
import type { Metrics } from '../metrics/registry.js';
import type { OrganizationService } from '../organizations/service.js';
import { SESSION_COOKIE, sessionInfo, type SessionService } from '../sessions/service.js';
import { SETUP_LINK_HEADER } from '../setup-links/service.js';
import { userView } from '../users/service.js';

export const SESSION_CHECK_PATH = '/api/auth/session';

/** `data` of GET /api/auth/session (SPEC §11): the user, the session and the user's memberships. */
export function sessionCheckData(user: UserRow, session: SessionRow, memberships: readonly { id: string; name: string; slug: string; role: string }[]) {
  return {
    user: userView(user),
    session: sessionInfo(session),
    memberships: memberships.map((m) => ({ organizationId: m.id, name: m.name, slug: m.slug, role: m.role })),
  };
}

/** The headers of every answer of the fast path; the request id and the length are filled in per answer. */
const ANSWER_HEADERS: string[] = ['content-type', 'application/json', 'x-request-id', '', 'content-length', '', ...SECURITY_HEADERS.flat()];
const REQUEST_ID_AT = 3;
const CONTENT_LENGTH_AT = 5;

/** A JSON body and its length in bytes (the Content-Length). */
interface Answer {
  json: string;
  length: string;
}
const asAnswer = (body: object): Answer => {
  const json = JSON.stringify(body);
  return { json, length: String(Buffer.byteLength(json)) };
};

const PLAIN_TOKEN = /^[A-Za-z0-9_-]+$/;

/**
 * The session cookie's value in a Cookie header, read exactly as hono's `parse(header, name)` (the
 * Hono routes' reader) reads it, so both ways of answering see the same credential. The common
 * header — the name as a whole cookie name, its value a plain base64url token as Gatehouse
 * sets it — is read here without splitting the header. Only the name's first occurrence can be
 * the pair hono picks (an earlier pair of that name would hold an earlier occurrence); when it is
 * not a whole cookie name with a plain value (part of another cookie, quotes, escapes, spaces, an
 * empty value), hono's parser reads the header.
 */
export function sessionTokenOf(header: string): string | undefined {
  const at = header.indexOf(SESSION_COOKIE);
  if (at === -1) return undefined;
  const valueAt = at + SESSION_COOKIE.length;
  if (header.charCodeAt(valueAt) === 61 /* = */ && startsPair(header, at)) {
    const end = header.indexOf(';', valueAt);
    const value = header.slice(valueAt + 1, end === -1 ? header.length : end);
    if (PLAIN_TOKEN.test(value)) return value;
  }
  return parseCookies(header, SESSION_COOKIE)[SESSION_COOKIE];
}

/** Whether only spaces and tabs stand between `at` and the start of its `;`-separated pair. */
function startsPair(header: string, at: number): boolean {
  for (let i = at - 1; i >= 0; i--) {
    const c = header.charCodeAt(i);
    if (c === 59 /* ; */) return true;
    if (c !== 32 && c !== 9) return false;
  }
  return true;
}

/** The one answer of the route to a cookie that resolves to no live session. */
export const NOT_SIGNED_IN = () => new AppError('UNAUTHENTICATED', 'Not signed in');

/**
 * The session check is the request an app beside Gatehouse makes on every page it serves, so its
 * common case — `GET /api/auth/session` whose only credential is the session cookie — is answered
 * here, from the Node request, without the Hono middleware chain (which costs several times the
 * lookup itself: see bench/RESULTS.md). It does what that chain does for such a request and
 * nothing less: the same session lookup (sessions/service.ts: the per-instance cache, revocation,
 * expiry, the sliding idle expiry), the same body and error envelope, SECURITY_HEADERS, the
 * request id, the access-log line and the request metrics. A GET with a cookie needs no body cap,
 * CSRF check or content-type check, and the MFA-pending gate lets the session route through.
 *
 * Any other shape of the request (an API key, a bearer token, a setup link, no session cookie)
 * and any failure of the lookup (the database away) is not answered here: `handle` resolves
 * false and the caller hands the request to the Hono app, which answers it in full.
 */
export function createSessionCheck(deps: { sessions: Pick<SessionService, 'authenticate'>; organizations: Pick<OrganizationService, 'listMine'>; metrics: Pick<Metrics, 'enabled' | 'request'>; logger: Logger }) {
  /**
   * The JSON answer last made for a cached session, by its cache object: the session cache hands
   * out the same object until anything about the session or its user changes (then a new one is
   * read), and the same membership list until a membership changes. What can still change in
   * place (the idle expiry, slid by the lookup) is part of the key. A lookup the cache did not
   * answer yields a new object, and so a new answer. Kept as a string, not a Buffer (a small
   * Buffer is a slice of an 8 KiB pool slab and would keep the whole slab): about its own size
   * (~0.5 KiB) per cached session.
   */
  const answers = new WeakMap<SessionWithUser, Answer & { memberships: readonly MembershipSummary[]; expiresAt: string; absoluteExpiresAt: string }>();
  function answerFor(found: SessionWithUser, memberships: readonly MembershipSummary[]): Answer {
    const { session } = found;
    const kept = answers.get(found);
    if (kept && kept.memberships === memberships && kept.expiresAt === session.expires_at && kept.absoluteExpiresAt === session.absolute_expires_at) return kept;
    const answer = asAnswer(okBody(sessionCheckData(found.user, session, memberships)));
    answers.set(found, { ...answer, memberships, expiresAt: session.expires_at, absoluteExpiresAt: session.absolute_expires_at });
    return answer;
  }

  return {
    /** Whether `handle` may answer this request. */
    accepts(req: IncomingMessage, path: string): boolean {
      if (req.method !== 'GET' || path !== SESSION_CHECK_PATH) return false;
      const h = req.headers;
      return typeof h.cookie === 'string' && h.authorization === undefined && h['x-api-key'] === undefined && h[SETUP_LINK_HEADER] === undefined;
    },

    /** Answers the request and resolves true, or resolves false having written nothing. Never rejects. */
    async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
      const start = performance.now();
      const token = sessionTokenOf(req.headers.cookie ?? '');
      if (!token) return false;
      let answer: Answer;
      let userId: string | undefined;
      try {
        const found = await deps.sessions.authenticate(token);
        if (found) {
          answer = answerFor(found, await deps.organizations.listMine(found.user.id));
          userId = found.user.id;
        } else {
          answer = asAnswer(errorBody(NOT_SIGNED_IN()));
        }
      } catch {
        return false;
      }
      const status = userId === undefined ? 401 : 200;
      const requestId = requestIdOf(headerValue(req.headers['x-request-id']));
      // A flat [name, value, …] list: Node checks each header all the same, without walking an object's keys.
      const headers = ANSWER_HEADERS.slice();
      headers[REQUEST_ID_AT] = requestId;
      headers[CONTENT_LENGTH_AT] = answer.length;
      res.writeHead(status, headers);
      res.end(answer.json);
      if (deps.metrics.enabled) deps.metrics.request({ method: 'GET', route: SESSION_CHECK_PATH, status, seconds: (performance.now() - start) / 1000 });
      logRequest(deps.logger, { requestId, method: 'GET', path: SESSION_CHECK_PATH, status, start, userId });
      return true;
    },
  };
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}
