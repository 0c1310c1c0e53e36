import type { Context, Handler, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { METHOD_NAME_ALL } from 'hono/router';
import { safeEqual, sha256 } from '../crypto/tokens.js';
import { fail } from '../http/envelope.js';
import { AppError } from '../http/errors.js';
import { DISCOVERY_PATH, OP_PREFIX, OP_ROUTES } from '../oidc-provider/urls.js';
import type { Metrics } from './registry.js';

export const METRICS_PATH = '/metrics';
/** The route label of a request no route matched (404). */
export const UNMATCHED_ROUTE = 'unmatched';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** A closed set: any other method is `OTHER`. */
export const methodLabel = (method: string) => (METHODS.has(method) ? method : 'OTHER');

/**
 * The pattern of the route that answered (`/api/user/organizations/:organizationId/domains`), never
 * the path: the last matched handler that is not middleware (`app.use` registers method ALL). A
 * request refused by a middleware (401, 403, 413) still counts under the route it asked for.
 */
export function routeLabel(c: Context): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    const route = routes[i]!;
    if (route.method !== METHOD_NAME_ALL) return route.path;
  }
  return UNMATCHED_ROUTE;
}

/** The Hono app's middleware: every request it answers, its route pattern, status and latency. */
export function httpMetrics(metrics: Pick<Metrics, 'request'>): MiddlewareHandler {
  return async (c, next) => {
    const start = performance.now();
    const observe = (status: number) => metrics.request({ method: methodLabel(c.req.method), route: routeLabel(c), status, seconds: (performance.now() - start) / 1000 });
    try {
      await next();
    } catch (e) {
      observe(500);
      throw e;
    }
    observe(c.res.status);
  };
}

const PROVIDER_ROUTES = new Set<string>([DISCOVERY_PATH, ...Object.values(OP_ROUTES)]);
/** The OpenID Provider answers outside Hono (server.ts requestListener): its endpoints by their fixed path, anything else under /oidc as one name. */
export const providerRouteLabel = (path: string) => (PROVIDER_ROUTES.has(path) ? path : `${OP_PREFIX}/*`);

/**
 * GET /metrics: the registry in Prometheus text format. With GATEHOUSE_METRICS_TOKEN set, only
 * `Authorization: Bearer <token>` is let in (compared in constant time, as hashes of equal length).
 */
export function metricsHandler(metrics: Pick<Metrics, 'registry'>, token: string | null): Handler {
  const expected = token === null ? null : sha256(token);
  return async (c) => {
    if (expected !== null) {
      const presented = /^Bearer +(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
      if (presented === undefined || !safeEqual(sha256(presented), expected)) {
        c.header('WWW-Authenticate', 'Bearer realm="metrics"');
        return fail(c, new AppError('UNAUTHENTICATED', 'GET /metrics needs Authorization: Bearer with GATEHOUSE_METRICS_TOKEN'));
      }
    }
    const text = await metrics.registry.metrics();
    return c.body(text, 200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
  };
}
