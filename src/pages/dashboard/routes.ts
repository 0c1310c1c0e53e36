import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Config } from '../../config.js';
import type { AppEnv } from '../../http/middleware.js';
import type { Services } from '../../services.js';

/** `/dashboard` (SPEC §5): the organization admin's console. */
export function registerDashboardPages(_app: OpenAPIHono<AppEnv>, _services: Services, _config: Config): void {
  // filled in by the dashboard work
}
