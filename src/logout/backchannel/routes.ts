import type { OpenAPIHono } from '@hono/zod-openapi';
import { ctxOf, type AppEnv } from '../../http/middleware.js';
import { ok } from '../../http/envelope.js';
import type { Services } from '../../services.js';
import { BACKCHANNEL_LOGOUT_PATH } from '../urls.js';
import { LogoutTokenError } from './checks.js';

/**
 * POST /api/auth/sso/backchannel-logout (SPEC §8, Back-Channel Logout 1.0 §2.5–2.8): the IdP
 * posts `logout_token` as a form, server to server (no cookie, no Origin; exempt from the JSON
 * and CSRF rules like the SAML ACS). 200 for a valid token, also when no session matched; 400
 * `{"error":"invalid_request","error_description":…}` for any refusal; never cached.
 */
export function registerBackchannelLogoutRoutes(app: OpenAPIHono<AppEnv>, services: Pick<Services, 'backchannelLogout'>) {
  app.post(BACKCHANNEL_LOGOUT_PATH, async (c) => {
    c.header('Cache-Control', 'no-store');
    const type = c.req.header('content-type') ?? '';
    const form = /^application\/x-www-form-urlencoded\b/i.test(type) ? new URLSearchParams(await c.req.text()) : new URLSearchParams();
    const tokens = form.getAll('logout_token');
    try {
      await services.backchannelLogout.receive(tokens.length === 1 ? tokens[0] : undefined, ctxOf(c));
    } catch (e) {
      if (!(e instanceof LogoutTokenError)) throw e;
      return c.json({ error: 'invalid_request', error_description: e.message }, 400);
    }
    return ok(c, null, { message: 'Logout token accepted' });
  });
}
