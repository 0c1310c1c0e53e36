import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Config } from '../../config.js';
import type { AppEnv } from '../../http/middleware.js';
import type { Services } from '../../services.js';

/** `/setup/{token}` (SPEC §5): the guided SSO and domain setup a setup link opens. */
export function registerSetupPages(_app: OpenAPIHono<AppEnv>, _services: Services, _config: Config): void {
  // filled in by the setup-wizard work
}
