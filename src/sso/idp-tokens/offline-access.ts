/**
 * How each provider is asked for a refresh token (SPEC §9), added to the authorization request of
 * a connection that keeps the IdP's tokens:
 * - `oidc`, `auth0`: the `offline_access` scope, which OIDC Core §11 honours only with
 *   `prompt=consent` (an OpenID Provider such as oidc-provider drops the scope otherwise);
 * - `okta`, `azure` (Entra ID): the `offline_access` scope alone;
 * - `google`: `access_type=offline` (Google refuses the `offline_access` scope). Google issues a
 *   refresh token at the first consent only; later logins keep the stored one (vault.ts).
 * The connection's own scopes (e.g. `https://graph.microsoft.com/Mail.Read`) are sent as they are.
 */
export function offlineAccessParams(provider: string, scopes: string[]): Record<string, string> {
  if (provider === 'google') return { access_type: 'offline' };
  const scope = (scopes.includes('offline_access') ? scopes : [...scopes, 'offline_access']).join(' ');
  return provider === 'oidc' || provider === 'auth0' ? { scope, prompt: 'consent' } : { scope };
}
