import { z, type OpenAPIHono } from '@hono/zod-openapi';
import { responses } from '../../http/envelope.js';
import { ctxOf, type AppEnv } from '../../http/middleware.js';
import type { Services } from '../../services.js';
import { UNIVERSAL_LOGOUT_PATH } from '../urls.js';
import { UniversalLogoutError } from './checks.js';

const SubjectIdBody = z
  .union([
    z.object({ format: z.literal('email'), email: z.string() }).strict(),
    z.object({ format: z.literal('iss_sub'), iss: z.string(), sub: z.string() }).strict(),
  ])
  .openapi('UniversalLogoutSubject');
const UniversalLogoutBody = z.union([z.object({ sub_id: SubjectIdBody }).strict(), z.object({ subject: SubjectIdBody }).strict()]).openapi('UniversalLogoutRequest');

/**
 * SPEC §8 Okta Universal Logout: a server-to-server call (no cookie, no Origin), authenticated
 * by the signed bearer JWT alone; the body is read as JSON and judged only after the token
 * (checks.ts, readSubject). 204 on success, no body.
 */
export function registerUniversalLogoutRoutes(app: OpenAPIHono<AppEnv>, services: Pick<Services, 'universalLogout'>) {
  const errors = responses(z.null(), 'unused', [400, 401, 404, 422, 429]);
  delete errors[200];
  app.openAPIRegistry.registerPath({
    method: 'post',
    path: UNIVERSAL_LOGOUT_PATH,
    tags: ['Logout'],
    summary: 'Okta Universal Logout (Global Token Revocation): end a user\'s sessions from the connection\'s organization',
    description:
      '`Authorization: Bearer <JWT>` signed by the Okta org (typ global-token-revocation+jwt, iss, sub = client id or app instance id, aud = this URL, ≤ 10 min, jti once). ' +
      'Body `{"sub_id": {"format": "email", "email": …}}` or `{"format": "iss_sub", "iss": …, "sub": …}` (or the older `subject`). ' +
      'Ends the user\'s sessions (and refresh tokens) from the organization, all of them when the organization verified the user\'s email domain. ' +
      '401 carries `WWW-Authenticate: Bearer error="invalid_token"`; `details.reason` names the failed check (docs/universal-logout.md).',
    request: { body: { required: true, content: { 'application/json': { schema: UniversalLogoutBody } } } },
    responses: { 204: { description: 'The user\'s sessions from the organization ended (also when none was live)' }, ...errors },
  });

  app.post(UNIVERSAL_LOGOUT_PATH, async (c) => {
    const body: unknown = await c.req.json().catch(() => undefined);
    try {
      await services.universalLogout.handle(ctxOf(c), { authorization: c.req.header('authorization'), body });
    } catch (e) {
      if (e instanceof UniversalLogoutError && e.isTokenError) c.header('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw e;
    }
    c.header('Cache-Control', 'no-store');
    return c.body(null, 204);
  });
}
