import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { SsoLoginError } from '../../sso/errors.js';
import { MAX_MESSAGE_BYTES } from './slo-checks.js';
import { ctxOf, type AppEnv } from '../../http/middleware.js';
import type { Services } from '../../services.js';
import { ssoFailure } from '../../sso/routes.js';
import { SAML_SLO_ROUTE } from '../urls.js';

/**
 * SAML Single Logout service (SPEC §8): the IdP's LogoutRequest or LogoutResponse, over
 * HTTP-Redirect (GET, the signature is over the raw query octets) or HTTP-POST (a cross-site form
 * post: exempt from the JSON-only rule and CSRF like the ACS). The checks live in slo-checks.ts.
 */
export function registerSamlSloRoutes(app: OpenAPIHono<AppEnv>, services: Services) {
  const handle = async (c: Context<AppEnv>, method: 'GET' | 'POST') => {
    try {
      const raw = method === 'GET' ? rawQuery(c.req.url) : await c.req.text();
      const outcome = await services.samlSingleLogout.receive(c.req.param('slug') ?? '', { method, raw }, ctxOf(c));
      return c.redirect(outcome.redirectTo, 302);
    } catch (e) {
      return ssoFailure(c, e);
    }
  };
  app.get(SAML_SLO_ROUTE, (c) => handle(c, 'GET'));
  // The body is not read past the largest message accepted (slo-checks.ts checkSize), plus the form's field names.
  app.post(
    SAML_SLO_ROUTE,
    bodyLimit({ maxSize: MAX_MESSAGE_BYTES + 4096, onError: (c) => ssoFailure(c as Context<AppEnv>, new SsoLoginError('response_too_large', `The Single Logout message is larger than ${MAX_MESSAGE_BYTES / 1024} KiB and was not read`)) }),
    (c) => handle(c, 'POST'),
  );
}

/** The query string exactly as it arrived (the Redirect binding signs these octets). */
function rawQuery(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return '';
  const hash = url.indexOf('#', q);
  return url.slice(q + 1, hash < 0 ? undefined : hash);
}
