import { z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import type { ZodError } from 'zod';
import { AppError } from '../http/errors.js';
import { ok, responses } from '../http/envelope.js';
import { ctxOf, type AppEnv } from '../http/middleware.js';
import { Empty, Ulid } from '../http/schemas.js';
import type { Services } from '../services.js';

/** SPEC §8 session tokens. */
export const TOKEN_PATH = '/api/auth/token';
export const TOKEN_REVOKE_PATH = '/api/auth/token/revoke';

const FORM = /^application\/x-www-form-urlencoded\b/i;
const JSON_TYPE = /^application\/json\b/i;

const IssueBody = z.object({ organizationId: Ulid.optional() }).strict().openapi('TokenIssueRequest');
const RefreshBody = z.object({ grant_type: z.literal('refresh_token'), refresh_token: z.string().min(1).max(512) }).strict().openapi('TokenRefreshRequest');
const RevokeBody = z.object({ token: z.string().min(1).max(4096), token_type_hint: z.enum(['refresh_token', 'access_token']).optional() }).strict().openapi('TokenRevokeRequest');
const TokenPairSchema = z
  .object({
    accessToken: z.string().openapi({ description: 'JWT (RFC 9068, typ at+jwt, ES256); verify with /.well-known/jwks.json' }),
    refreshToken: z.string().openapi({ description: 'Opaque, single use: each refresh answers a new one' }),
    tokenType: z.literal('Bearer'),
    expiresIn: z.number().int().openapi({ description: 'Seconds the access token lives' }),
    refreshExpiresIn: z.number().int().openapi({ description: 'Seconds the refresh token lives (never past its session)' }),
  })
  .openapi('TokenPair');

/**
 * The body of a token-endpoint request, JSON or a form (RFC 6749 clients post forms), parsed once
 * and kept on the context: the CSRF exemption of the refresh grant (below) reads it before the route.
 * A form value that is a file, or a repeated field, is not a string and fails validation.
 */
async function tokenBody(c: Context<AppEnv>): Promise<{ form: boolean; body: unknown }> {
  const cached = c.get('tokenBody');
  if (cached) return cached;
  const type = c.req.header('content-type') ?? '';
  let parsed: { form: boolean; body: unknown };
  if (FORM.test(type)) {
    const form = await c.req.parseBody({ all: true }).catch(() => null);
    if (!form) throw invalidBody('The form body could not be read');
    parsed = { form: true, body: Object.fromEntries(Object.entries(form).map(([k, v]) => [k, typeof v === 'string' ? v : null])) };
  } else {
    const text = await c.req.text();
    if (text.trim() === '') parsed = { form: false, body: {} };
    else if (type && !JSON_TYPE.test(type)) throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json or application/x-www-form-urlencoded');
    else {
      try {
        parsed = { form: false, body: JSON.parse(text) as unknown };
      } catch {
        throw invalidBody('The body is not valid JSON');
      }
    }
  }
  c.set('tokenBody', parsed);
  return parsed;
}

const invalidBody = (message: string) => new AppError('VALIDATION_FAILED', message, { issues: [{ path: '', code: 'invalid_body', message }] });

function validation(error: ZodError): AppError {
  return new AppError('VALIDATION_FAILED', 'Invalid body', {
    issues: error.issues.map((i) => ({ path: i.path.join('.'), code: i.code, message: i.message })),
  });
}

const isRefreshGrantBody = (body: unknown) => typeof body === 'object' && body !== null && 'grant_type' in body;

/**
 * Mounted on POST /api/auth/token before authentication: marks a refresh grant, whose credential
 * is the refresh token in the body — never the cookie — so CSRF does not apply to it
 * (`isBodyCredentialRequest`). Issuing with a session stays under the Origin rule.
 */
export function markRefreshGrant(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (c.req.method === 'POST') {
      const { body } = await tokenBody(c);
      if (isRefreshGrantBody(body)) c.set('refreshGrant', true);
    }
    await next();
  };
}

/** The token endpoints accept forms as well as JSON (exempt from the JSON-only rule). */
export const isTokenFormPost = (path: string, contentType: string) => (path === TOKEN_PATH || path === TOKEN_REVOKE_PATH) && FORM.test(contentType);

/**
 * Requests whose only credential is a token in the body, which acts with no cookie's rights: the
 * refresh grant (marked by markRefreshGrant) and revocation. A cross-site page cannot know the
 * token, so the Origin rule (CSRF) has nothing to protect there.
 */
export const isBodyCredentialRequest = (c: Context<AppEnv>) =>
  c.req.method === 'POST' && ((c.req.path === TOKEN_PATH && c.get('refreshGrant') === true) || c.req.path === TOKEN_REVOKE_PATH);

/** RFC 6749 §5.1: token answers are never cached. */
function noStore(c: Context) {
  c.header('Cache-Control', 'no-store');
  c.header('Pragma', 'no-cache');
}

export function registerTokenRoutes(app: OpenAPIHono<AppEnv>, services: Pick<Services, 'sessionTokens'>) {
  app.openAPIRegistry.registerPath({
    method: 'post',
    path: TOKEN_PATH,
    tags: ['Session tokens'],
    summary: 'Exchange the session for an access and refresh token, or refresh (grant_type=refresh_token, JSON or form, no cookie needed)',
    description:
      'With a session cookie (Origin rule applies): `{}` or `{"organizationId"}` (membership and that organization\'s sign-in policy are checked: 404, 403 SSO_REQUIRED, MFA_REQUIRED…). ' +
      'Refresh grant: `{"grant_type":"refresh_token","refresh_token":"…"}` as JSON or application/x-www-form-urlencoded; the token is spent, reusing it revokes the family and ends the session (400 INVALID_TOKEN).',
    request: {
      body: {
        required: false,
        content: {
          'application/json': { schema: z.union([IssueBody, RefreshBody]) },
          'application/x-www-form-urlencoded': { schema: RefreshBody },
        },
      },
    },
    responses: responses(TokenPairSchema, 'A new access and refresh token', [400, 401, 403, 404, 429]),
  });

  app.post(TOKEN_PATH, async (c) => {
    const { form, body } = await tokenBody(c);
    noStore(c);
    if (isRefreshGrantBody(body)) {
      const grant = RefreshBody.safeParse(body);
      if (!grant.success) throw validation(grant.error);
      return ok(c, await services.sessionTokens.refresh(ctxOf(c), grant.data.refresh_token), { message: 'Tokens refreshed' });
    }
    // Issuing acts with the session cookie: JSON only, like every other cookie-authenticated write.
    if (form) throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Only the refresh grant may be posted as a form; send the body as application/json');
    if (c.get('authVia') !== 'cookie' && c.get('principal')) {
      throw new AppError('FORBIDDEN', 'Session tokens are issued to a signed-in session (cookie), not to an API key or access token');
    }
    const input = IssueBody.safeParse(body);
    if (!input.success) throw validation(input.error);
    return ok(c, await services.sessionTokens.issue(ctxOf(c), input.data), { message: 'Tokens issued' });
  });

  app.openAPIRegistry.registerPath({
    method: 'post',
    path: TOKEN_REVOKE_PATH,
    tags: ['Session tokens'],
    summary: 'Revoke a refresh token and its whole family (RFC 7009: 200 whatever the token)',
    description: 'JSON or application/x-www-form-urlencoded, no cookie needed. Access tokens are not revocable one by one: they stay valid until `exp` unless their session ends.',
    request: {
      body: {
        required: true,
        content: { 'application/json': { schema: RevokeBody }, 'application/x-www-form-urlencoded': { schema: RevokeBody } },
      },
    },
    responses: responses(Empty, 'Revoked, or nothing to revoke', [400, 429]),
  });

  app.post(TOKEN_REVOKE_PATH, async (c) => {
    const { body } = await tokenBody(c);
    noStore(c);
    const input = RevokeBody.safeParse(body);
    if (!input.success) throw validation(input.error);
    await services.sessionTokens.revoke(ctxOf(c), input.data.token);
    return ok(c, null, { message: 'Revoked' });
  });
}
