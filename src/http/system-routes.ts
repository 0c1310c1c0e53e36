import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Db } from '../db/database.js';
import { ping } from '../db/database.js';
import { DATABASE_RETRY_AFTER_SECONDS } from '../db/faults.js';
import { ERROR_CODES, ERROR_DESCRIPTIONS, AppError } from './errors.js';
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

export function registerSystemRoutes(app: OpenAPIHono<AppEnv>, db: Db) {
  app.get('/healthz', (c) => c.json({ success: true, status: 200, code: 'OK', message: 'up', data: { status: 'up' } }));

  app.get('/readyz', async (c) => {
    try {
      await ping(db);
    } catch (e) {
      throw new AppError('SERVICE_UNAVAILABLE', 'The database is not reachable', { retryAfter: DATABASE_RETRY_AFTER_SECONDS }, { cause: e });
    }
    return c.json({ success: true, status: 200, code: 'OK', message: 'ready', data: { status: 'ready', database: 'up' } });
  });

  app.openAPIRegistry.registerComponent('securitySchemes', 'session', { type: 'apiKey', in: 'cookie', name: 'gatehouse_session' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'apiKey', { type: 'apiKey', in: 'header', name: 'X-Api-Key' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });

  let cached: unknown = null;
  const document = () =>
    (cached ??= app.getOpenAPIDocument({ ...OPENAPI_INFO, security: [{ session: [] }, { apiKey: [] }, { bearer: [] }] }));

  app.get('/api/openapi.json', (c) => c.json(document()));

  registerApiDocsRoutes(app, document);
}
