/**
 * A REAL OpenID Provider for tests: the certified `oidc-provider` package, listening on
 * 127.0.0.1 (random port), plain http, in-memory storage, non-interactive login/consent.
 *
 * Issuer: `http://127.0.0.1:<port>` (no path). Endpoints (from discovery):
 *   authorization `/auth`, token `/token`, jwks `/jwks`, userinfo `/me`.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK as JoseJwk } from 'jose';
import Provider, { type Adapter, type AdapterPayload, type Configuration, type JWK } from 'oidc-provider';

export interface IdpUser {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  given_name?: string;
  family_name?: string;
}

export interface RealIdp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Mutable: accounts are looked up here on every login / token / userinfo request. */
  users: Map<string, IdpUser>;
  /**
   * Follow an authorization URL (as Gatehouse would redirect a browser to) as the user `sub`:
   * performs login (and consent) non-interactively with its own cookie jar, and returns the final
   * redirect URL back to the client's redirect_uri (with code & state, or error & state), without
   * requesting it.
   * `opts.deny` makes the user refuse (the IdP then redirects back with `error=access_denied`).
   * Throws if the IdP answers with an error page instead of redirecting back (e.g. unknown
   * client_id, unregistered redirect_uri), or if `sub` is not a known user.
   */
  login(authorizationUrl: string, sub: string, opts?: { deny?: boolean; browser?: IdpBrowser }): Promise<URL>;
  /**
   * A browser of its own at the IdP (its cookie jar): pass it to login() to keep the IdP session,
   * then to followLogout() to end that IdP session. Without one, every login() is a fresh browser
   * (and so a new IdP session with its own `sid`).
   */
  browser(): IdpBrowser;
  /**
   * Follow an RP-initiated logout URL (the end_session_endpoint with id_token_hint …) in `browser`:
   * GET it, submit the IdP's "sign me out" confirmation form, and return where the IdP sends the
   * browser back (the post_logout_redirect_uri with state), without requesting it. The IdP sends
   * its back-channel logout tokens before it answers the confirmation.
   */
  followLogout(logoutUrl: string, browser: IdpBrowser): Promise<URL>;
  /**
   * The IdP's private signing key (RS256, with its kid): lets a test sign tokens exactly as this
   * IdP would, to forge the logout tokens an IdP might send.
   */
  signingKey: JoseJwk;
  /** Register the client's backchannel_logout_uri (with backchannel_logout_session_required: true). */
  setBackchannelLogoutUri(uri: string): Promise<void>;
  /** The login_hint the IdP received on the last authorization request (to test forwarding). */
  lastLoginHint(): string | undefined;
  /**
   * IdP-initiated: build the third-party initiated login URL for `initiateUri`:
   * `${initiateUri}?iss=<issuer>&target_link_uri=<target>&login_hint=<hint>` (target/hint only if given).
   * `initiateUri` defaults to `startRealIdp({ initiateLoginUri })`.
   */
  initiateUrl(initiateUri?: string, opts?: { targetLinkUri?: string; loginHint?: string }): string;
  /** Register one more redirect URI for the client (as an admin adds one in the IdP's console). */
  addRedirectUri(uri: string): Promise<void>;
  /** Every token request answered so far (grant type, account, success). */
  grants: TokenGrantSeen[];
  /** The query of the last authorization request (scope, prompt, access_type…). */
  lastAuthorizationParams(): URLSearchParams | undefined;
  /** Revoke every refresh token of `sub` (as an admin revoking the user's grants at the IdP). */
  revokeRefreshTokens(sub: string): number;
  /** While set, the token endpoint answers this instead (status and raw body), or never answers ('hang'). */
  tokenEndpointOverride: { status: number; body: string } | 'hang' | null;
  close(): Promise<void>;
}

/** One browser's cookies at the IdP. */
export interface IdpBrowser {
  readonly jar: CookieJar;
}

export interface StartRealIdpOptions {
  redirectUris: string[];
  clientAuth?: 'client_secret_basic' | 'client_secret_post';
  users?: IdpUser[];
  /**
   * The client's initiate_login_uri. oidc-provider only accepts https URIs in client metadata, so
   * an http URI is kept only by this helper (as the default of `initiateUrl()`), not registered.
   */
  initiateLoginUri?: string;
  /** RFC 9126: refuse authorization requests that were not pushed (oidc-provider's requirePushedAuthorizationRequests). */
  requirePar?: boolean;
  /**
   * The client's backchannel_logout_uri (registered with backchannel_logout_session_required, so
   * ID tokens carry `sid`); features.backchannelLogout is always enabled.
   */
  backchannelLogoutUri?: string;
  /** The client's post_logout_redirect_uris (RP-initiated logout). */
  postLogoutRedirectUris?: string[];
  /** RP-initiated logout (the end_session_endpoint in discovery); default true. */
  rpInitiatedLogout?: boolean;
  /**
   * Issue refresh tokens (the client gets the refresh_token grant; oidc-provider issues one when
   * `offline_access` was granted, which needs prompt=consent). `rotate`: every refresh returns a
   * new refresh token and the old one is spent (oidc-provider revokes the grant when a spent one
   * comes back).
   */
  refreshTokens?: { rotate?: boolean };
  /** Access token lifetime in seconds (default 3600). */
  accessTokenTtl?: number;
}

/** A token request the IdP answered (test/idp-tokens counts refreshes per user). */
export interface TokenGrantSeen {
  grantType: string;
  accountId: string | undefined;
  ok: boolean;
}

const LOGIN_SUB_HEADER = 'x-test-login-sub';
const LOGIN_DENY_HEADER = 'x-test-login-deny';

function rsaSigningJwk(): JWK {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' }) as JWK;
  return { ...jwk, kid: `real-idp-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}

export async function startRealIdp(opts: StartRealIdpOptions): Promise<RealIdp> {
  const clientId = `gatehouse-test-${randomBytes(4).toString('hex')}`;
  const clientSecret = randomBytes(24).toString('base64url');
  const clientAuth = opts.clientAuth ?? 'client_secret_basic';
  const users = new Map<string, IdpUser>((opts.users ?? []).map((u) => [u.sub, u]));
  const redirectUris = [...opts.redirectUris];
  // The client lives in the adapter (a "dynamic" client, re-read on every request) rather than in
  // the static configuration, so addRedirectUri() takes effect at once.
  const adapterFactory = memoryAdapterFactory();
  let loginHint: string | undefined;
  let lastAuthParams: URLSearchParams | undefined;
  const grants: TokenGrantSeen[] = [];
  const idp = { tokenEndpointOverride: null as { status: number; body: string } | 'hang' | null };
  let provider: Provider | undefined;
  let providerHandler: ReturnType<Provider['callback']> | undefined;

  // The server is created first so the (random) port is known before building the issuer.
  const server = createServer((req, res) => {
    if (!provider || !providerHandler) {
      res.statusCode = 503;
      res.end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/auth' && (req.method === 'GET' || req.method === 'POST')) {
      // Record what the authorization endpoint got (GET is what Gatehouse's redirect produces).
      loginHint = url.searchParams.get('login_hint') ?? undefined;
      lastAuthParams = url.searchParams;
    }
    if (url.pathname === '/token' && req.method === 'POST' && idp.tokenEndpointOverride) {
      const o = idp.tokenEndpointOverride;
      if (o === 'hang') return; // never answered: the client's timeout must end it
      res.writeHead(o.status, { 'content-type': 'application/json' });
      res.end(o.body);
      return;
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      // oidc-provider treats client_secret_basic and client_secret_post as interchangeable; be
      // strict about the registered method so tests can tell which one the RP used.
      const basic = /^Basic\s/i.test(req.headers.authorization ?? '');
      if (basic !== (clientAuth === 'client_secret_basic')) {
        res.writeHead(401, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ error: 'invalid_client', error_description: `client must use ${clientAuth}` }));
        return;
      }
    }
    if (url.pathname.startsWith('/interaction/')) {
      void handleInteraction(provider, users, req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.setHeader('content-type', 'text/plain');
        }
        res.end(`interaction failed: ${err instanceof Error ? err.message : String(err)}`);
      });
      return;
    }
    void providerHandler(req, res);
  });
  const port = await listen(server);
  const signingKey = rsaSigningJwk();
  const issuer = `http://127.0.0.1:${port}`;

  const clientMetadata: NonNullable<Configuration['clients']>[number] = {
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    response_types: ['code'],
    grant_types: opts.refreshTokens ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
    token_endpoint_auth_method: clientAuth,
    id_token_signed_response_alg: 'RS256',
  };
  if (opts.backchannelLogoutUri) {
    clientMetadata.backchannel_logout_uri = opts.backchannelLogoutUri;
    clientMetadata.backchannel_logout_session_required = true;
  }
  if (opts.postLogoutRedirectUris) clientMetadata.post_logout_redirect_uris = [...opts.postLogoutRedirectUris];
  if (opts.initiateLoginUri?.startsWith('https://')) {
    clientMetadata.initiate_login_uri = opts.initiateLoginUri;
  }

  const configuration: Configuration = {
    adapter: adapterFactory,
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    // Only the authorization code flow; PKCE (S256 — the only method v9 supports) always required.
    responseTypes: ['code'],
    pkce: { required: () => true },
    // Explicit lifetimes (the defaults work but print a NOTICE each).
    ttl: {
      AuthorizationCode: 60,
      AccessToken: opts.accessTokenTtl ?? 3600,
      RefreshToken: 24 * 3600,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name'],
    },
    // Put scope-requested claims in the ID token too (default: only in userinfo when an access
    // token is issued).
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      // Enabled by default in oidc-provider; whether it is required is the test's choice.
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: opts.requirePar === true },
      // OpenID Connect Back-Channel Logout 1.0: logout tokens to clients with a backchannel_logout_uri.
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: { enabled: opts.rpInitiatedLogout !== false },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    ...(opts.refreshTokens ? { rotateRefreshToken: () => opts.refreshTokens?.rotate === true } : {}),
    // The IdP's own outgoing requests (back-channel logout tokens): oidc-provider refuses
    // special-use addresses such as loopback; this test IdP only ever calls 127.0.0.1.
    fetch: (url, init) => {
      const href = url instanceof Request ? url.url : String(url);
      if (new URL(href).hostname !== '127.0.0.1') return Promise.reject(new Error(`real-idp: refusing to call ${href} (tests call loopback only)`));
      const { dispatcher: _dispatcher, ...rest } = init as RequestInit & { dispatcher?: unknown };
      return fetch(url, rest);
    },
    findAccount: (_ctx, sub) => {
      if (!users.has(sub)) return undefined;
      return {
        accountId: sub,
        claims: () => {
          const u = users.get(sub) ?? { sub };
          const out: { sub: string; [k: string]: unknown } = { sub };
          for (const [k, v] of Object.entries(u)) if (v !== undefined) out[k] = v;
          out.sub = sub;
          return out;
        },
      };
    },
    // Plain-text error pages (unknown client, unregistered redirect_uri...): login() puts them in
    // the Error it throws.
    renderError: (ctx, out) => {
      ctx.type = 'text/plain';
      ctx.body = `${out.error}: ${out.error_description ?? ''}`;
    },
  };

  const saveClient = () => adapterFactory('Client').upsert(clientId, { ...clientMetadata, redirect_uris: [...redirectUris] } as unknown as AdapterPayload, 0);
  await saveClient();
  provider = new Provider(issuer, configuration);
  providerHandler = provider.callback();
  // Surface unexpected provider failures in test output (they'd otherwise be a silent 500).
  provider.on('server_error', (_ctx, err) => {
    console.error('[real-idp] server_error', err);
  });
  provider.on('grant.success', (ctx) => {
    const params = ctx.oidc.params as { grant_type?: string } | undefined;
    const entities = ctx.oidc.entities as { Account?: { accountId: string }; RefreshToken?: { accountId: string }; AuthorizationCode?: { accountId: string } };
    grants.push({ grantType: params?.grant_type ?? '?', accountId: entities.RefreshToken?.accountId ?? entities.AuthorizationCode?.accountId ?? entities.Account?.accountId, ok: true });
  });
  provider.on('grant.error', (ctx) => {
    const params = ctx.oidc?.params as { grant_type?: string } | undefined;
    grants.push({ grantType: params?.grant_type ?? '?', accountId: undefined, ok: false });
  });
  provider.on('backchannel.error', (_ctx, err, client) => {
    console.error('[real-idp] back-channel logout delivery failed', client?.clientId, err instanceof Error ? err.message : err);
  });

  async function login(authorizationUrl: string, sub: string, loginOpts?: { deny?: boolean; browser?: IdpBrowser }): Promise<URL> {
    if (!users.has(sub) && !loginOpts?.deny) throw new Error(`real-idp: unknown user ${sub}`);
    const jar = loginOpts?.browser?.jar ?? new CookieJar();
    let url = new URL(authorizationUrl);
    if (url.origin !== issuer) throw new Error(`real-idp: ${authorizationUrl} is not on the IdP (${issuer})`);
    for (let hop = 0; hop < 20; hop++) {
      const headers: Record<string, string> = { [LOGIN_SUB_HEADER]: sub };
      if (loginOpts?.deny) headers[LOGIN_DENY_HEADER] = '1';
      const cookie = jar.header(url);
      if (cookie) headers.cookie = cookie;
      const res = await fetch(url, { redirect: 'manual', headers });
      jar.store(url, res.headers.getSetCookie());
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) {
        const body = await res.text();
        throw new Error(`real-idp: expected a redirect from ${url.pathname}, got ${res.status}: ${body.slice(0, 500)}`);
      }
      await res.body?.cancel();
      const next = new URL(location, url);
      const withoutQuery = `${next.origin}${next.pathname}`;
      const isRedirectUri = (r: string) =>
        r === withoutQuery || next.href.startsWith(r + (r.includes('?') ? '&' : '?'));
      if (redirectUris.some(isRedirectUri)) return next;
      if (next.origin !== issuer) throw new Error(`real-idp: redirect leaves the IdP to ${next.href}`);
      url = next;
    }
    throw new Error('real-idp: too many redirects');
  }

  async function followLogout(logoutUrl: string, browser: IdpBrowser): Promise<URL> {
    const { jar } = browser;
    const url = new URL(logoutUrl);
    if (url.origin !== issuer) throw new Error(`real-idp: ${logoutUrl} is not on the IdP (${issuer})`);
    const page = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header(url) } });
    jar.store(url, page.headers.getSetCookie());
    const body = await page.text();
    const action = /<form id="op\.logoutForm" method="post" action="([^"]+)"/.exec(body)?.[1];
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(body)?.[1];
    if (page.status !== 200 || !action || !xsrf) throw new Error(`real-idp: expected the logout confirmation form, got ${page.status}: ${body.slice(0, 500)}`);
    const confirmUrl = new URL(action, url);
    const res = await fetch(confirmUrl, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(confirmUrl), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }).toString(),
    });
    jar.store(confirmUrl, res.headers.getSetCookie());
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) throw new Error(`real-idp: expected a redirect after the logout confirmation, got ${res.status}: ${(await res.text()).slice(0, 500)}`);
    await res.body?.cancel();
    return new URL(location, confirmUrl);
  }

  return {
    issuer,
    clientId,
    clientSecret,
    users,
    login,
    browser: () => ({ jar: new CookieJar() }),
    followLogout,
    signingKey: { ...signingKey, key_ops: signingKey.key_ops ? [...signingKey.key_ops] : undefined } as JoseJwk,
    async setBackchannelLogoutUri(uri) {
      clientMetadata.backchannel_logout_uri = uri;
      clientMetadata.backchannel_logout_session_required = true;
      await saveClient();
    },
    lastLoginHint: () => loginHint,
    initiateUrl(initiateUri = opts.initiateLoginUri, o = {}) {
      if (!initiateUri) throw new Error('real-idp: no initiate_login_uri given');
      const u = new URL(initiateUri);
      u.searchParams.set('iss', issuer);
      if (o.targetLinkUri !== undefined) u.searchParams.set('target_link_uri', o.targetLinkUri);
      if (o.loginHint !== undefined) u.searchParams.set('login_hint', o.loginHint);
      return u.href;
    },
    async addRedirectUri(uri) {
      if (!redirectUris.includes(uri)) redirectUris.push(uri);
      await saveClient();
    },
    grants,
    lastAuthorizationParams: () => lastAuthParams,
    revokeRefreshTokens: (sub) => adapterFactory.revokeRefreshTokensOf(sub),
    get tokenEndpointOverride() {
      return idp.tokenEndpointOverride;
    },
    set tokenEndpointOverride(v) {
      idp.tokenEndpointOverride = v;
    },
    close: () => closeServer(server),
  };
}

/**
 * Per-IdP in-memory storage (oidc-provider's own dev adapter works too, but warns and is shared by
 * every Provider in the process).
 */
function memoryAdapterFactory(): ((model: string) => Adapter) & { revokeRefreshTokensOf(accountId: string): number } {
  const store = new Map<string, { payload: AdapterPayload; expiresAt: number }>();
  const uidIndex = new Map<string, string>();
  const userCodeIndex = new Map<string, string>();
  const grantIndex = new Map<string, Set<string>>();
  const get = (key: string): AdapterPayload | undefined => {
    const e = store.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return e.payload;
  };
  const factory = (model: string): Adapter => {
    const key = (id: string) => `${model}:${id}`;
    return {
      async upsert(id, payload, expiresIn) {
        const k = key(id);
        store.set(k, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
        if (model === 'Session' && payload.uid) uidIndex.set(payload.uid, id);
        if (payload.userCode) userCodeIndex.set(payload.userCode, id);
        if (payload.grantId) {
          const set = grantIndex.get(payload.grantId) ?? new Set<string>();
          set.add(k);
          grantIndex.set(payload.grantId, set);
        }
      },
      async find(id) {
        return get(key(id));
      },
      async findByUid(uid) {
        const id = uidIndex.get(uid);
        return id === undefined ? undefined : get(key(id));
      },
      async findByUserCode(userCode) {
        const id = userCodeIndex.get(userCode);
        return id === undefined ? undefined : get(key(id));
      },
      async consume(id) {
        const p = get(key(id));
        if (p) p.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        store.delete(key(id));
      },
      async revokeByGrantId(grantId) {
        for (const k of grantIndex.get(grantId) ?? []) store.delete(k);
        grantIndex.delete(grantId);
      },
    };
  };
  return Object.assign(factory, {
    revokeRefreshTokensOf(accountId: string): number {
      let n = 0;
      for (const [k, e] of store) {
        if (k.startsWith('RefreshToken:') && e.payload.accountId === accountId) {
          store.delete(k);
          n++;
        }
      }
      return n;
    },
  });
}

/** Non-interactive login + consent: the user is named by a header that `login()` sends. */
async function handleInteraction(
  provider: Provider,
  users: Map<string, IdpUser>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  const header = req.headers[LOGIN_SUB_HEADER];
  const sub = Array.isArray(header) ? header[0] : header;
  if (req.headers[LOGIN_DENY_HEADER]) {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'the user refused' },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  const { prompt, params } = details;
  if (prompt.name === 'login') {
    if (!sub || !users.has(sub)) {
      res.statusCode = 200;
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end('<!doctype html><title>Sign in</title><p>Test IdP: no (known) user given.</p>');
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: sub } }, { mergeWithLastSubmission: false });
    return;
  }
  if (prompt.name === 'consent') {
    const accountId = details.session?.accountId;
    const clientId = typeof params.client_id === 'string' ? params.client_id : undefined;
    if (!accountId || !clientId) throw new Error('consent without session/client');
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId });
    if (!grant) throw new Error('grant not found');
    const d = prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  throw new Error(`unsupported prompt ${prompt.name}`);
}

/** Minimal cookie jar (single origin): honours Path, Max-Age/Expires deletion; ignores Domain/Secure. */
export class CookieJar {
  private cookies = new Map<string, { name: string; value: string; path: string }>();

  store(requestUrl: URL, setCookies: string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = requestUrl.pathname.replace(/\/[^/]*$/, '') || '/';
      let expired = false;
      for (const attr of attrs) {
        const [k = '', ...rest] = attr.split('=');
        const v = rest.join('=').trim();
        switch (k.trim().toLowerCase()) {
          case 'path':
            path = v || '/';
            break;
          case 'max-age':
            if (Number(v) <= 0) expired = true;
            break;
          case 'expires':
            if (Date.parse(v) <= Date.now()) expired = true;
            break;
        }
      }
      const key = `${name}\u0000${path}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, { name, value, path });
    }
  }

  header(url: URL): string {
    const out: string[] = [];
    for (const c of this.cookies.values()) {
      const p = c.path.endsWith('/') ? c.path : `${c.path}/`;
      if (url.pathname === c.path || url.pathname.startsWith(p)) out.push(`${c.name}=${c.value}`);
    }
    return out.join('; ');
  }
}
