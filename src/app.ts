import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { ZodError } from 'zod';
import { registerApiKeyRoutes } from './api-keys/routes.js';
import { registerAuthRoutes } from './auth/routes.js';
import { registerEmailLinkRoutes } from './auth/email-link-routes.js';
import { magicLinkVerifyPath } from './auth/email-links.js';
import { databaseUnavailable, isDatabaseUnavailable } from './db/faults.js';
import { AppError } from './http/errors.js';
import { fail } from './http/envelope.js';
import { clientIpResolver } from './http/client-ip.js';
import { securityHeaders } from './http/security-headers.js';
import { accessLog, authenticate, clientAddress, csrf, loggablePath, mfaPendingGate, requestId, type AppEnv } from './http/middleware.js';
import { registerSystemRoutes } from './http/system-routes.js';
import { httpMetrics } from './metrics/http.js';
import { registerOrganizationRoutes } from './organizations/routes.js';
import { registerPolicyRoutes } from './policy/routes.js';
import { registerDomainRoutes } from './domains/routes.js';
import { registerSetupLinkRoutes } from './setup-links/routes.js';
import type { Deps, Services } from './services.js';
import { registerSsoSettingsRoutes } from './sso/connections/routes.js';
import { registerSsoLoginRoutes, samlAcsSizeGuard } from './sso/routes.js';
import { registerSamlSloRoutes } from './logout/saml/routes.js';
import { registerUserRoutes } from './users/routes.js';
import { registerMfaRoutes } from './mfa/routes.js';
import { registerPageRoutes } from './pages/routes.js';
import { registerJwksRoutes } from './tokens/jwks-routes.js';
import { registerInteractionRoutes } from './oidc-provider/interactions.js';
import { INTERACTION_PREFIX } from './oidc-provider/urls.js';
import { registerClientRoutes } from './oidc-provider/clients/routes.js';
import { registerUniversalLogoutRoutes } from './logout/universal-logout/routes.js';
import { registerBackchannelLogoutRoutes } from './logout/backchannel/routes.js';
import { BACKCHANNEL_LOGOUT_PATH, UNIVERSAL_LOGOUT_PATH } from './logout/urls.js';
import { isBodyCredentialRequest, isTokenFormPost, markRefreshGrant, registerTokenRoutes, TOKEN_PATH } from './tokens/routes.js';

export const MAX_BODY_BYTES = 1024 * 1024;

/** Endpoints an IdP posts to from its own origin, form-encoded: exempt from the JSON-only rule and from CSRF. */
export const isIdpPostEndpoint = (path: string) => /^\/api\/auth\/sso\/[^/]+\/(initiate|saml\/acs|saml\/slo)$/.test(path) || path === BACKCHANNEL_LOGOUT_PATH;
/**
 * Hosted-page forms that post to the API as application/x-www-form-urlencoded (the magic link's
 * "Sign in as …" page works without JavaScript). Unlike the IdP posts, they stay under CSRF.
 */
export const isPageFormPost = (path: string, contentType: string) => path === magicLinkVerifyPath && /^application\/x-www-form-urlencoded\b/i.test(contentType);

export function validationError(error: ZodError, where: string): AppError {
  return new AppError('VALIDATION_FAILED', `Invalid ${where}`, {
    issues: error.issues.map((i) => ({
      path: i.path.join('.') || (i.code === 'unrecognized_keys' ? (i as { keys?: string[] }).keys?.join(',') ?? '' : ''),
      code: i.code,
      message: i.code === 'unrecognized_keys' ? `unknown field(s): ${(i as { keys?: string[] }).keys?.join(', ')}` : i.message,
    })),
  });
}

const TARGETS: Record<string, string> = { json: 'body', query: 'query', param: 'path parameter', header: 'header', cookie: 'cookie', form: 'form' };

/**
 * The HTTP application. Middleware, in order: metrics (when served) → request id → client IP → access log → security headers →
 * body cap → authentication → CSRF → MFA-pending gate → routes; then the 404 and error handlers that keep every
 * answer in the SPEC §3 envelope.
 */
export function createApp(deps: Deps, services: Services): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error as ZodError, TARGETS[result.target] ?? result.target);
    },
  });

  if (deps.metrics.enabled) app.use('*', httpMetrics(deps.metrics));
  app.use('*', requestId());
  app.use('*', clientAddress(clientIpResolver(deps.config.trustedProxies)));
  app.use('*', accessLog(deps.logger));
  app.use('*', securityHeaders());
  // The cap applies where a body can be: reading c.req.raw.body on a GET makes the Node adapter
  // build a full Request for every read, which halved the session check's throughput in profiles.
  const capBody = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new AppError('PAYLOAD_TOO_LARGE', `The body exceeds ${MAX_BODY_BYTES} bytes`);
    },
  });
  // The SAML ACS has its own, smaller cap, answered as an SSO failure (before the generic 1 MiB one).
  app.use('/api/auth/sso/:slug/saml/acs', samlAcsSizeGuard(services));
  app.use('/api/*', (c, next) => (['GET', 'HEAD', 'OPTIONS'].includes(c.req.method) ? next() : capBody(c, next)));
  // The OpenID Provider's interaction forms (organization picker, consent) read a form body too.
  app.use(`${INTERACTION_PREFIX}/*`, (c, next) => (c.req.method === 'POST' ? capBody(c, next) : next()));
  app.use('/api/*', async (c, next) => {
    // JSON in: a body on a write must be declared as JSON (except the form posts IdPs and the hosted
    // pages make, and the OAuth-style token endpoints).
    const type = c.req.header('content-type');
    if (['POST', 'PUT', 'PATCH'].includes(c.req.method) && type && !/^application\/json\b/i.test(type) && !isIdpPostEndpoint(c.req.path) && !isPageFormPost(c.req.path, type) && !isTokenFormPost(c.req.path, type)) {
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json');
    }
    await next();
  });
  app.use(TOKEN_PATH, markRefreshGrant());
  // Universal Logout is a server-to-server call whose bearer JWT is the IdP's, not a Gatehouse
  // credential: it is verified by its own route, never taken for an access token or API key.
  const authenticated = authenticate(services);
  app.use('/api/*', (c, next) => (c.req.path === UNIVERSAL_LOGOUT_PATH ? next() : authenticated(c, next)));
  app.use('/api/*', csrf(deps.config.trustedOrigins, (path, c) => isIdpPostEndpoint(path) || path === UNIVERSAL_LOGOUT_PATH || isBodyCredentialRequest(c)));
  app.use('/api/*', mfaPendingGate(isBodyCredentialRequest));

  registerSystemRoutes(app, deps);
  registerAuthRoutes(app, services, deps.config);
  registerEmailLinkRoutes(app, services, deps.config);
  registerUserRoutes(app, services);
  registerMfaRoutes(app, services);
  registerApiKeyRoutes(app, services);
  registerOrganizationRoutes(app, services);
  registerPolicyRoutes(app, services);
  registerDomainRoutes(app, services);
  registerSetupLinkRoutes(app, services);
  registerSsoSettingsRoutes(app, services);
  registerSsoLoginRoutes(app, services, deps.config);
  registerSamlSloRoutes(app, services);
  registerBackchannelLogoutRoutes(app, services);
  registerPageRoutes(app, services, deps.config);
  registerJwksRoutes(app, services);
  registerInteractionRoutes(app, { db: deps.db, config: deps.config, sessions: services.sessions, op: services.openIdProvider });
  registerClientRoutes(app, services);
  registerTokenRoutes(app, services);
  registerUniversalLogoutRoutes(app, services);

  app.notFound((c) => fail(c, new AppError('NOT_FOUND', `No route for ${c.req.method} ${c.req.path}`)));

  app.onError((err, c) => {
    if (err instanceof AppError) {
      if (err.status >= 500) deps.logger[err.code === 'SERVICE_UNAVAILABLE' ? 'warn' : 'error']({ err, requestId: c.get('requestId') }, err.message);
      return fail(c, err);
    }
    if (isDatabaseUnavailable(err)) {
      // SPEC §12: the database is away (restart, failover, a timed-out statement): 503 with
      // Retry-After, never 500; the pool reconnects by itself on a later request.
      deps.logger.warn({ err, requestId: c.get('requestId'), method: c.req.method, path: loggablePath(c.req.path) }, 'database unavailable');
      return fail(c, databaseUnavailable(err));
    }
    if (err instanceof HTTPException && err.status < 500) {
      // Hono's own 4xx (e.g. malformed JSON from the validator).
      const code = err.status === 413 ? 'PAYLOAD_TOO_LARGE' : err.status === 401 ? 'UNAUTHENTICATED' : 'VALIDATION_FAILED';
      const message = /json/i.test(err.message) ? 'The body is not valid JSON' : err.message || 'Bad request';
      return fail(c, new AppError(code, message, code === 'VALIDATION_FAILED' ? { issues: [{ path: '', code: 'invalid_json', message }] } : undefined, { status: err.status }));
    }
    const requestIdValue = c.get('requestId');
    deps.logger.error({ err, requestId: requestIdValue, method: c.req.method, path: loggablePath(c.req.path) }, 'unhandled error');
    return fail(c, new AppError('INTERNAL', `Internal error (request id ${requestIdValue})`, undefined));
  });

  return app;
}
