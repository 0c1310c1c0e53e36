import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Deps } from '../services.js';
import { METRICS_PATH, metricsHandler } from '../metrics/http.js';
import { ping } from '../db/database.js';
import { DATABASE_RETRY_AFTER_SECONDS } from '../db/faults.js';
import { ERROR_CODES, ERROR_DESCRIPTIONS, AppError } from './errors.js';
import { fail } from './envelope.js';
import type { AppEnv } from './middleware.js';
import { registerApiDocsRoutes } from './api-docs/routes.js';

const OPENAPI_INFO = {
  openapi: '3.0.3',
  info: {
    title: 'Gatehouse API',
    version: '0.1.0',
    description:
      'Enterprise SSO for B2B SaaS. Every JSON response is an envelope `{success, status, code, message, data | details}`.\n\n' +
      'Error codes:\n\n' +
      (Object.keys(ERROR_CODES) as Array<keyof typeof ERROR_CODES>)
        .map((k) => `- \`${k}\` (${ERROR_CODES[k]}): ${ERROR_DESCRIPTIONS[k]}`)
        .join('\n'),
  },
};

export function registerSystemRoutes(app: OpenAPIHono<AppEnv>, { db, config, metrics, lifecycle }: Pick<Deps, 'db' | 'config' | 'metrics' | 'lifecycle'>) {
  app.get('/healthz', (c) => c.json({ success: true, status: 200, code: 'OK', message: 'up', data: { status: 'up' } }));

  app.get('/readyz', async (c) => {
    // Shutting down (server.ts shutDown): a load balancer stops sending here. Answered, not thrown: nothing to log.
    if (lifecycle.draining) return fail(c, new AppError('SERVICE_UNAVAILABLE', 'This instance is shutting down', { retryAfter: DATABASE_RETRY_AFTER_SECONDS }));
    try {
      // Twice before "not ready": a pooled connection whose backend has just ended (a restart, a
      // failover) fails once and leaves the pool; the next one tells whether the database is there.
      await ping(db).catch(() => ping(db));
    } catch (e) {
      throw new AppError('SERVICE_UNAVAILABLE', 'The database is not reachable', { retryAfter: DATABASE_RETRY_AFTER_SECONDS }, { cause: e });
    }
    return c.json({ success: true, status: 200, code: 'OK', message: 'ready', data: { status: 'ready', database: 'up' } });
  });

  // Prometheus (docs/metrics.md). Outside /api: no session, CSRF or JSON rules; GATEHOUSE_METRICS=false leaves it a 404.
  if (metrics.enabled) app.get(METRICS_PATH, metricsHandler(metrics, config.metricsToken));

  app.openAPIRegistry.registerComponent('securitySchemes', 'session', { type: 'apiKey', in: 'cookie', name: 'gatehouse_session' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'apiKey', { type: 'apiKey', in: 'header', name: 'X-Api-Key' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });

  let cached: unknown = null;
  const document = () =>
    (cached ??= app.getOpenAPIDocument({ ...OPENAPI_INFO, security: [{ session: [] }, { apiKey: [] }, { bearer: [] }] }));

  app.get('/api/openapi.json', (c) => c.json(document()));

  registerApiDocsRoutes(app, document);
}
