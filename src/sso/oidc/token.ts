import { OutboundError, type OutboundFetch } from '../outbound.js';
import { SsoLoginError } from '../errors.js';
import type { Discovery } from './metadata.js';

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post';

/** The IdP's preference, per discovery; RFC 8414 says `client_secret_basic` when it lists nothing. */
export function chooseClientAuth(discovery: Discovery): ClientAuthMethod {
  const supported = discovery.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
  if (supported.includes('client_secret_basic')) return 'client_secret_basic';
  if (supported.includes('client_secret_post')) return 'client_secret_post';
  return 'client_secret_basic';
}

const formEncode = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');

export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
}

export interface ClientPostResult {
  status: number;
  error: string | null;
  body: Record<string, unknown>;
}

/**
 * POST a form to one of the IdP's client-authenticated endpoints (token, PAR). Client
 * authentication follows the IdP's discovery; when it offers both methods,
 * `client_secret_basic` is tried first and `client_secret_post` once more if the IdP answers
 * `invalid_client` (client authentication is checked before anything else, so a code is still
 * good for the second try). `what` names the endpoint in the error of an unreachable IdP.
 */
export async function postWithClientAuth(
  outbound: OutboundFetch,
  discovery: Discovery,
  endpoint: string,
  client: ClientCredentials,
  params: Record<string, string>,
  unreachable: (detail: string, cause: unknown) => SsoLoginError,
): Promise<ClientPostResult> {
  const first = chooseClientAuth(discovery);
  const supported = discovery.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
  let result = await clientPost(outbound, endpoint, first, client, params, unreachable);
  if (result.error === 'invalid_client' && first === 'client_secret_basic' && supported.includes('client_secret_post')) {
    result = await clientPost(outbound, endpoint, 'client_secret_post', client, params, unreachable);
  }
  return result;
}

/**
 * Authorization code → tokens (RFC 6749 §4.1.3 with PKCE). `redirectUri` is the one the
 * authorization request carried (the connection's mode decides which, SPEC §12).
 */
export async function exchangeCode(
  outbound: OutboundFetch,
  discovery: Discovery,
  client: ClientCredentials,
  grant: { code: string; redirectUri: string; codeVerifier: string },
): Promise<CodeTokens> {
  const form = { grant_type: 'authorization_code', code: grant.code, redirect_uri: grant.redirectUri, code_verifier: grant.codeVerifier };
  const result = await postWithClientAuth(outbound, discovery, discovery.token_endpoint, client, form, (detail, cause) =>
    new SsoLoginError('token_exchange_failed', `The IdP's token endpoint could not be reached: ${detail}`, { cause }));
  if (result.status !== 200) {
    const error = result.error ?? `HTTP ${result.status}`;
    const hint =
      error === 'invalid_client' ? ' Check the client ID and client secret.'
        : error === 'invalid_grant' ? ' The code was refused (already used, expired, or the redirect URI registered at the IdP differs).'
          : '';
    throw new SsoLoginError('token_exchange_failed', `The IdP refused the code exchange (${error}).${hint}`);
  }
  const body = result.body;
  if (typeof body.id_token !== 'string') throw new SsoLoginError('id_token_missing', 'The IdP answered the code exchange without an ID token (is the "openid" scope granted?)');
  return { idToken: body.id_token, ...grantedTokens(body) };
}

/** The tokens of a token endpoint answer besides the ID token (RFC 6749 §5.1), each null when absent or malformed. */
export interface GrantedTokens {
  accessToken: string | null;
  refreshToken: string | null;
  /** `expires_in` in seconds (a number, or a numeric string as some IdPs send it). */
  expiresIn: number | null;
  /** The granted scopes when the IdP says (`scope`); null: as requested. */
  scopes: string[] | null;
}
export interface CodeTokens extends GrantedTokens {
  idToken: string;
}

function grantedTokens(body: Record<string, unknown>): GrantedTokens {
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 && v.length <= 65_536 ? v : null);
  const raw = body.expires_in;
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  const scope = str(body.scope);
  return {
    accessToken: str(body.access_token),
    refreshToken: str(body.refresh_token),
    expiresIn: Number.isFinite(n) && n >= 0 ? Math.floor(n) : null,
    scopes: scope ? scope.split(' ').filter(Boolean) : null,
  };
}

/** What the IdP said to a refresh: new tokens, a refusal of the refresh token, or no usable answer. */
export type RefreshOutcome =
  | { kind: 'refreshed'; tokens: GrantedTokens & { accessToken: string } }
  | { kind: 'refused'; error: string; description: string | null }
  | { kind: 'failed'; detail: string };

/**
 * The refresh token grant (RFC 6749 §6). Only `invalid_grant` refuses the refresh token (it is
 * expired, revoked, or the user lost access); anything else — the IdP unreachable or slow, a 5xx,
 * an answer that is not JSON or has no access token, another error such as `invalid_client` —
 * says nothing about the refresh token and is `failed` (retried later).
 */
export async function refreshGrant(outbound: OutboundFetch, discovery: Discovery, client: ClientCredentials, refreshToken: string): Promise<RefreshOutcome> {
  let result: ClientPostResult;
  try {
    result = await postWithClientAuth(outbound, discovery, discovery.token_endpoint, client, { grant_type: 'refresh_token', refresh_token: refreshToken }, (detail, cause) =>
      new SsoLoginError('token_exchange_failed', `The IdP's token endpoint could not be reached: ${detail}`, { cause }));
  } catch (e) {
    if (e instanceof SsoLoginError) return { kind: 'failed', detail: e.message };
    throw e;
  }
  // Whatever the IdP says is kept as the reason (shown to admins, logged): never with a secret in it, scrubbed before it is cut.
  const secrets = [refreshToken, encodeURIComponent(refreshToken), client.clientSecret, encodeURIComponent(client.clientSecret)].filter((x) => x.length >= 8);
  const scrub = (v: unknown) => (typeof v === 'string' ? secrets.reduce((t, x) => t.split(x).join('[redacted]'), v).slice(0, 300) : null);
  if (result.status === 200) {
    const tokens = grantedTokens(result.body);
    if (tokens.accessToken) return { kind: 'refreshed', tokens: { ...tokens, accessToken: tokens.accessToken } };
    return { kind: 'failed', detail: "The IdP's token endpoint answered 200 without an access token" };
  }
  if (result.error === 'invalid_grant') return { kind: 'refused', error: 'invalid_grant', description: scrub(result.body.error_description) };
  return { kind: 'failed', detail: `The IdP's token endpoint answered HTTP ${result.status}${result.error ? ` (${scrub(result.body.error)?.slice(0, 100)})` : ''}` };
}

async function clientPost(
  outbound: OutboundFetch,
  endpoint: string,
  method: ClientAuthMethod,
  client: ClientCredentials,
  params: Record<string, string>,
  unreachable: (detail: string, cause: unknown) => SsoLoginError,
): Promise<ClientPostResult> {
  const form = new URLSearchParams(params);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (method === 'client_secret_basic') {
    headers.authorization = `Basic ${Buffer.from(`${formEncode(client.clientId)}:${formEncode(client.clientSecret)}`).toString('base64')}`;
  } else {
    form.set('client_id', client.clientId);
    form.set('client_secret', client.clientSecret);
  }
  let res;
  try {
    res = await outbound(endpoint, { method: 'POST', headers, body: form.toString() });
  } catch (e) {
    throw unreachable(e instanceof OutboundError ? e.message : 'network error', e);
  }
  let body: Record<string, unknown> = {};
  try {
    const parsed = res.json();
    if (parsed && typeof parsed === 'object') body = parsed as Record<string, unknown>;
  } catch {
    /* a non-JSON answer is reported by its status */
  }
  return { status: res.status, error: typeof body.error === 'string' ? body.error.slice(0, 100) : null, body };
}

/** UserInfo (OIDC Core §5.3); its `sub` must equal the ID token's. */
export async function fetchUserInfo(outbound: OutboundFetch, endpoint: string, accessToken: string, expectedSub: string): Promise<Record<string, unknown>> {
  let res;
  try {
    res = await outbound(endpoint, { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' } });
  } catch (e) {
    throw new SsoLoginError('userinfo_failed', `The IdP's UserInfo endpoint could not be reached: ${e instanceof OutboundError ? e.message : 'network error'}`, { cause: e });
  }
  if (res.status !== 200) throw new SsoLoginError('userinfo_failed', `The IdP's UserInfo endpoint answered HTTP ${res.status}`);
  let claims: unknown;
  try {
    claims = res.json();
  } catch {
    throw new SsoLoginError('userinfo_failed', "The IdP's UserInfo answer is not JSON (signed UserInfo is not supported)");
  }
  if (!claims || typeof claims !== 'object') throw new SsoLoginError('userinfo_failed', "The IdP's UserInfo answer is not a JSON object");
  const c = claims as Record<string, unknown>;
  if (c.sub !== expectedSub) throw new SsoLoginError('userinfo_sub_mismatch', 'The UserInfo subject differs from the ID token subject (token substitution)');
  return c;
}
