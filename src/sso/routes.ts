import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { getCookie, setCookie } from 'hono/cookie';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Config } from '../config.js';
import { randomToken } from '../crypto/tokens.js';
import { setSessionCookie } from '../auth/routes.js';
import { AppError } from '../http/errors.js';
import { databaseUnavailable, isDatabaseUnavailable } from '../db/faults.js';
import { errorBody, responses, setRetryAfter, wantsJson } from '../http/envelope.js';
import { ctxOf, type AppEnv } from '../http/middleware.js';
import { sendPage } from '../pages/layout.js';
import { sendSamlPostPage } from '../pages/saml-post.js';
import { ssoErrorPage } from '../pages/sso-error.js';
import type { Services } from '../services.js';
import { SsoLoginError } from './errors.js';
import { Ulid } from '../http/schemas.js';
import type { ArrivedAt } from './oidc/callback-checks.js';
import { OIDC_DEDICATED_CALLBACK_ROUTE, OIDC_SHARED_CALLBACK_PATH } from './oidc/urls.js';
import { SLUG_PATTERN } from '../organizations/service.js';
import { MAX_RESPONSE_BYTES as SAML_MAX_BODY_BYTES } from './saml/acs-checks.js';

/** Random per-browser value; each flow stores its hash, and the callback must bring it back. */
export const SSO_BROWSER_COOKIE = 'gatehouse_sso_browser';
const SLUG = z.string().regex(SLUG_PATTERN, 'unknown organization');


const TITLES: Record<string, string> = {
  SSO_DOMAIN_NOT_ALLOWED: 'Your email domain is not allowed here',
  SSO_USER_NOT_PROVISIONED: 'You do not have access yet',
  SSO_ACCOUNT_LINK_REQUIRED: 'Your account needs to be linked',
};

/**
 * The ACS's own 512 KiB cap, before the application-wide 1 MiB one: a body over it — declared by
 * Content-Length or found while streaming a chunked one — is never read further, and is answered
 * (and audited) as the ACS failure `response_too_large`.
 */
export function samlAcsSizeGuard(services: Services) {
  return bodyLimit({
    maxSize: SAML_MAX_BODY_BYTES,
    onError: async (c) => {
      try {
        await services.samlLogin.acs(c.req.param('slug') ?? '', { rawLength: SAML_MAX_BODY_BYTES + 1 }, ctxOf(c as Context<AppEnv>));
      } catch (e) {
        return ssoFailure(c as Context<AppEnv>, e);
      }
      throw new Error('unreachable: an oversized SAML response passed the ACS size check');
    },
  });
}

/** Failure answer of every SSO browser endpoint: JSON for API clients, an HTML page otherwise; same status. */
export function ssoFailure(c: Context<AppEnv>, err: unknown): Response | Promise<Response> {
  // The database away (SPEC §12) is a 503 with Retry-After, on the same page as other failures;
  // any other unexpected error goes to app.onError (500, logged with the request id).
  if (!(err instanceof SsoLoginError) && !(err instanceof AppError) && !isDatabaseUnavailable(err)) throw err;
  const e = err instanceof SsoLoginError
    ? new AppError(err.code, err.message, { reason: err.reason }, { status: err.status })
    : err instanceof AppError ? err : databaseUnavailable(err);
  setRetryAfter(c, e);
  if (wantsJson(c)) return c.json(errorBody(e), e.status as ContentfulStatusCode);
  const reason = typeof e.details?.reason === 'string' ? e.details.reason : e.code.toLowerCase();
  return sendPage(c, ssoErrorPage({ title: TITLES[e.code] ?? 'Single sign-on failed', message: e.message, reason, requestId: c.get('requestId') }), e.status as ContentfulStatusCode);
}

/**
 * SAML: the IdP's answer is a cross-site POST, which carries only a SameSite=None cookie, and
 * those must be Secure: so the SP-initiated flow is bound to the browser on https deployments
 * (login CSRF: an attacker's own response posted into someone else's browser is refused).
 * Over plain http (local development) there is no binding.
 */
export const SAML_BROWSER_COOKIE = 'gatehouse_saml_browser';

/** The browser's binding value (kept when it has one, so two tabs or a second start don't break the first). */
function bindBrowser(c: Context, name: string, sameSite: 'Lax' | 'None', secure: boolean): string {
  const existing = getCookie(c, name);
  const value = existing && /^[A-Za-z0-9_-]{32}$/.test(existing) ? existing : randomToken(24);
  setCookie(c, name, value, { httpOnly: true, sameSite, secure, path: '/api/auth/sso', maxAge: 600 });
  return value;
}
const browserBinding = (c: Context, config: Pick<Config, 'secureCookies'>) => bindBrowser(c, SSO_BROWSER_COOKIE, 'Lax', config.secureCookies);
const samlBrowserBinding = (c: Context, config: Pick<Config, 'secureCookies'>) => (config.secureCookies ? bindBrowser(c, SAML_BROWSER_COOKIE, 'None', true) : null);

export function registerSsoLoginRoutes(app: OpenAPIHono<AppEnv>, services: Services, config: Config) {
  const tags = ['SSO login'];
  const html = { description: 'HTML error page (or the JSON envelope with Accept: application/json)' };

  app.openapi(
    createRoute({
      method: 'get', path: '/api/auth/sso/{slug}/login', tags, summary: "Start SP-initiated SSO: 302 to the organization's IdP",
      request: { params: z.object({ slug: SLUG }), query: z.object({ returnTo: z.string().optional(), login_hint: z.string().optional() }) },
      responses: { 200: { description: 'SAML HTTP-POST binding: an auto-submitting form to the IdP', content: { 'text/html': { schema: z.string() } } }, 302: { description: 'Redirect to the IdP (OIDC, SAML HTTP-Redirect)' }, 400: html },
    }),
    async (c) => {
      try {
        const q = c.req.valid('query');
        const { slug } = c.req.valid('param');
        // Read once: the protocol's startLogin takes this read rather than making its own.
        const active = await services.connections.activeForSlug(slug);
        if (active?.connection.protocol === 'saml') {
          // SAML: HTTP-Redirect (302) or HTTP-POST (an auto-submitting form) AuthnRequest.
          const start = await services.samlLogin.startLogin(slug, { returnTo: q.returnTo, loginHint: q.login_hint, browserBinding: samlBrowserBinding(c, config) }, active);
          if (start.kind === 'redirect') return c.redirect(start.url, 302);
          return sendSamlPostPage(c, start.url, start.fields);
        }
        const { url } = await services.oidcLogin.startLogin(slug, { returnTo: q.returnTo, loginHint: q.login_hint }, browserBinding(c, config), active);
        return c.redirect(url, 302);
      } catch (e) {
        return ssoFailure(c, e);
      }
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: '/api/auth/sso/{slug}/saml/metadata', tags, summary: "The organization's SAML SP metadata (XML)",
      request: { params: z.object({ slug: SLUG }) },
      responses: { 200: { description: 'SP metadata', content: { 'application/samlmetadata+xml': { schema: z.string() } } }, 400: html },
    }),
    async (c) => {
      try {
        const xml = await services.samlLogin.metadata(c.req.valid('param').slug);
        return c.body(xml, 200, { 'content-type': 'application/samlmetadata+xml; charset=utf-8' });
      } catch (e) {
        return ssoFailure(c, e);
      }
    },
  );

  // The SAML ACS: an IdP's cross-site form POST (no JSON, no CSRF Origin, no SameSite=Lax cookie).
  // The body is measured before it is decoded; the checks live in saml/acs-checks.ts.
  app.post('/api/auth/sso/:slug/saml/acs', async (c) => {
    try {
      // samlAcsSizeGuard has capped the body at 512 KiB before this reads it.
      const raw = await c.req.text();
      const form = new URLSearchParams(raw);
      const rawLength = Buffer.byteLength(raw, 'utf8');
      const one = (k: string) => form.get(k) ?? undefined;
      const result = await services.samlLogin.acs(c.req.param('slug'), { rawLength, SAMLResponse: one('SAMLResponse'), RelayState: one('RelayState'), browserBinding: getCookie(c, SAML_BROWSER_COOKIE) }, ctxOf(c));
      setSessionCookie(c, config, result.token);
      return c.redirect(result.returnTo, 302);
    } catch (e) {
      return ssoFailure(c, e);
    }
  });

  const initiate = async (c: Context<AppEnv>, slug: string, input: Record<string, unknown>) => {
    try {
      const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
      const { url } = await services.oidcLogin.initiate(slug, { iss: str(input.iss), targetLinkUri: str(input.target_link_uri), loginHint: str(input.login_hint) }, browserBinding(c, config));
      return c.redirect(url, 302);
    } catch (e) {
      return ssoFailure(c, e);
    }
  };
  const initiateQuery = z.object({ iss: z.string().optional(), login_hint: z.string().optional(), target_link_uri: z.string().optional() });
  app.openapi(
    createRoute({
      method: 'get', path: '/api/auth/sso/{slug}/initiate', tags, summary: 'Login initiated by the IdP (OIDC third-party initiated login, Okta "Initiate login URI")',
      request: { params: z.object({ slug: SLUG }), query: initiateQuery },
      responses: { 302: { description: 'Redirect to the IdP with a fresh flow' }, 400: html },
    }),
    async (c) => initiate(c, c.req.valid('param').slug, c.req.valid('query')),
  );
  // The same as a form POST (some IdPs post the parameters); not JSON, so registered outside the validator.
  app.post('/api/auth/sso/:slug/initiate', async (c) => {
    const slug = SLUG.safeParse(c.req.param('slug'));
    if (!slug.success) return ssoFailure(c, new SsoLoginError('sso_not_configured', 'Unknown organization'));
    const form = await c.req.parseBody().catch(() => ({}));
    return initiate(c, slug.data, { ...c.req.query(), ...form });
  });

  const callbackQuery = z.object({
    code: z.string().max(4096).optional(), state: z.string().max(512).optional(), error: z.string().max(256).optional(),
    error_description: z.string().max(1024).optional(), iss: z.string().max(2048).optional().openapi({ description: 'RFC 9207 issuer identifier; when present it must be the sign-in’s IdP' }),
    session_state: z.string().optional(),
  });
  const callback = async (c: Context<AppEnv>, query: z.infer<typeof callbackQuery>, arrived: ArrivedAt) => {
    try {
      const result = await services.oidcLogin.callback(query, arrived, getCookie(c, SSO_BROWSER_COOKIE), ctxOf(c));
      setSessionCookie(c, config, result.token);
      return c.redirect(result.returnTo, 302);
    } catch (e) {
      return ssoFailure(c, e);
    }
  };
  const callbackResponses = { 302: { description: 'Signed in: redirect to returnTo with the session cookie' }, ...responses(z.null(), 'never 200', [400, 403]) };
  app.openapi(
    createRoute({
      method: 'get', path: OIDC_SHARED_CALLBACK_PATH, tags,
      summary: 'The OIDC redirect URI shared by every organization (connections with redirectUriMode "shared")',
      request: { query: callbackQuery }, responses: callbackResponses,
    }),
    async (c) => callback(c, c.req.valid('query'), { organizationId: null }),
  );
  // Registered after the {slug} routes, so an organization whose slug is "callback" keeps its login URLs.
  app.openapi(
    createRoute({
      method: 'get', path: OIDC_DEDICATED_CALLBACK_ROUTE.replace(':organizationId', '{organizationId}'), tags,
      summary: "An organization's own OIDC redirect URI (redirectUriMode \"dedicated\", the default): only answers to that organization's sign-ins are accepted here",
      request: { params: z.object({ organizationId: Ulid }), query: callbackQuery }, responses: callbackResponses,
    }),
    async (c) => callback(c, c.req.valid('query'), { organizationId: c.req.valid('param').organizationId }),
  );
}
