/**
 * Every path of the OpenID Provider in one place (DESIGN.md: nothing builds these by hand). The
 * provider is mounted at the root of the base URL; its endpoints live under /oidc, its discovery
 * document where OpenID Connect Discovery puts it, its keys at the JWKS shared with session tokens.
 */
export const OP_PREFIX = '/oidc';
export const DISCOVERY_PATH = '/.well-known/openid-configuration';

export const OP_ROUTES = {
  authorization: `${OP_PREFIX}/auth`,
  token: `${OP_PREFIX}/token`,
  userinfo: `${OP_PREFIX}/userinfo`,
  jwks: '/.well-known/jwks.json',
  revocation: `${OP_PREFIX}/token/revocation`,
  introspection: `${OP_PREFIX}/token/introspection`,
  end_session: `${OP_PREFIX}/session/end`,
  pushed_authorization_request: `${OP_PREFIX}/request`,
} as const;

/** Gatehouse's own interaction pages (login, organization picker, consent) — served by Hono, not by the provider. */
export const INTERACTION_PREFIX = `${OP_PREFIX}/interaction`;
export const interactionPath = (uid: string) => `${INTERACTION_PREFIX}/${encodeURIComponent(uid)}`;

/** Whether a request path belongs to the provider (it answers it itself, outside the Hono app). */
export function isProviderPath(path: string): boolean {
  if (path === DISCOVERY_PATH) return true;
  if (!path.startsWith(`${OP_PREFIX}/`)) return false;
  return !path.startsWith(`${INTERACTION_PREFIX}/`) && path !== INTERACTION_PREFIX;
}
