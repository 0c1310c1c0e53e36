import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../http/middleware.js';
import type { Services } from '../services.js';

/** Path of the public key set: SPEC §8, also the OpenID Provider's `jwks_uri`. */
export const JWKS_PATH = '/.well-known/jwks.json';

/**
 * GET /.well-known/jwks.json: every signing key a verifier may meet now (pending, active and
 * retired-but-unexpired), as a plain JWKS — not the §3 envelope, since JOSE libraries read it as is.
 */
export function registerJwksRoutes(app: OpenAPIHono<AppEnv>, services: Pick<Services, 'signingKeys'>) {
  app.get(JWKS_PATH, async (c) => {
    const jwks = await services.signingKeys.jwks();
    c.header('Cache-Control', 'public, max-age=300');
    return c.json(jwks, 200, { 'Content-Type': 'application/jwk-set+json' });
  });
}
