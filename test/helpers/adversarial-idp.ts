/**
 * A tiny hand-made OpenID Provider (node:http + jose) that behaves correctly by default and can be
 * told to misbehave, to test the Relying Party checks of the OpenID RP certification.
 *
 * Listens on 127.0.0.1 (random port). Issuer: `http://127.0.0.1:<port><pathPrefix>`. Endpoints:
 *   `<issuer>/.well-known/openid-configuration`, `<issuer>/authorize`, `<issuer>/token`,
 *   `<issuer>/jwks`, `<issuer>/userinfo`.
 * Only the authorization code flow with PKCE (S256) is supported. Lifetimes: code 60 s (single
 * use), access token and ID token 300 s. Uses the real clock.
 */
import { createHash, generateKeyPairSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactSign, type JWK } from 'jose';

export type Misbehaviour = {
  /** Edit the ID token claims just before signing (wrong iss/aud, delete sub/iat, expire, nonce...). */
  idTokenClaims?: (claims: Record<string, unknown>) => Record<string, unknown>;
  /**
   * 'none' = unsigned token (`alg: none`, empty signature); 'HS256-client-secret' = HMAC with the
   * client secret (no kid); 'ES256' = signed with a P-256 key that the JWKS then also publishes.
   * The discovery document's id_token_signing_alg_values_supported lists RS256 plus this alg.
   */
  alg?: 'RS256' | 'none' | 'HS256-client-secret' | 'ES256';
  /** Flip a byte in the middle of the signature. */
  corruptSignature?: boolean;
  /** No `kid` in the ID token header (the JWKS keys keep theirs). */
  omitKid?: boolean;
  /** How many RSA keys the JWKS publishes (the token is signed with the first). Default 'one'. */
  jwksKeys?: 'one' | 'two';
  /** Sign with the "next" key: not in the JWKS yet (rotateKeys() would publish it). */
  signWithUnpublishedKey?: boolean;
  /** UserInfo answers with this sub instead of the user's. */
  userinfoSub?: string;
  /** Issuer value in the discovery document. */
  discoveryIssuer?: string;
  /** Omit jwks_uri from discovery. */
  noJwksUri?: boolean;
  /** Omit userinfo_endpoint from discovery (the endpoint then also answers 404). */
  noUserinfo?: boolean;
  /** Discovery answers with this status (body: discoveryBody, else the normal document for 2xx, else a JSON error). */
  discoveryStatus?: number;
  /** Discovery answers with this raw body (with content-type application/json), e.g. non-JSON. */
  discoveryBody?: string;
  /** Token endpoint answers with this status (body: tokenBody, else a JSON `server_error`). The code is still consumed. */
  tokenStatus?: number;
  /** Token endpoint answers with this raw body (status: tokenStatus ?? 200). The code is still consumed. */
  tokenBody?: string;
  /**
   * Entra-ID style multi-tenant metadata: discovery `issuer` is the template
   * `http://127.0.0.1:<port>/{tenantid}/v2.0`, ID tokens have `iss` =
   * `http://127.0.0.1:<port>/<tenantId>/v2.0` and a `tid` claim. (discoveryIssuer, if also set, wins.)
   */
  entraTemplate?: { tenantId: string };
  /** authorize() (and GET /authorize) redirects back with `error=<this>` (and state) instead of a code. */
  authorizeError?: string;
  /**
   * OAuth mix-up (RFC 9700 §4.4): this IdP is the attacker's. Instead of answering, authorize()
   * (and GET /authorize) bounces the browser to another IdP's authorization endpoint with that
   * IdP's client id, the redirect URI the attacker chose there, the attacker's own PKCE challenge
   * and nonce, and the `state` Gatehouse gave this IdP.
   */
  mixUpBounce?: { authorizationEndpoint: string; clientId: string; redirectUri: string; codeChallenge: string; nonce?: string; scope?: string };
};

export interface AdversarialIdpUser {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  [k: string]: unknown;
}

export interface AdversarialIdpRequest {
  /** Raw request path, including pathPrefix and query string (e.g. `/jwks`, `/tenant-1/v2.0/token`). */
  path: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface AdversarialIdp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Applies to subsequent requests; merged into the current misbehaviour (reset() clears). */
  misbehave(m: Misbehaviour): void;
  reset(): void;
  /**
   * New signing key with a new kid: the JWKS then publishes only the new key, and tokens are signed
   * with it (to test "signing key rotated → JWKS refetch"). The new key is the one that
   * `signWithUnpublishedKey` was using.
   */
  rotateKeys(): void;
  /** The user that subsequent authorizations log in as (all fields go into ID token and UserInfo). */
  setUser(u: AdversarialIdpUser): void;
  /**
   * Given Gatehouse's authorization URL, return the redirect back (redirect_uri?code=...&state=...).
   * Remembers nonce/code_challenge/redirect_uri/user per code; the token endpoint checks PKCE like a
   * real IdP. Throws on a wrong client_id or a missing redirect_uri (a real IdP shows an error page);
   * other request errors are redirected back as `error=...`. Logged in `requests` as a GET.
   */
  authorize(authorizationUrl: string): URL;
  /** Log of every request (and of authorize() calls), to assert client auth method, JWKS fetch count... */
  requests: AdversarialIdpRequest[];
  /** The authorization endpoint (as discovery names it). */
  authorizationEndpoint: string;
  /**
   * Register a redirect URI for the client. Once one is registered (or `redirectUris` was given),
   * an authorization request with any other redirect_uri is refused like a real IdP does (an error
   * page: authorize() throws). With none registered, any redirect_uri is accepted.
   */
  addRedirectUri(uri: string): void;
  /**
   * Redeem a code as its client would (the attacker holding Corp's code in a Corp flow of their
   * own): POST /token with this IdP's client credentials, the code, its redirect URI and verifier.
   */
  redeem(code: string, redirectUri: string, codeVerifier: string): Promise<{ status: number; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

export interface StartAdversarialIdpOptions {
  /** The one client authentication method the token endpoint accepts. Default client_secret_basic. */
  clientAuth?: 'client_secret_basic' | 'client_secret_post';
  /** Path part of the issuer, e.g. `/tenant-1/v2.0`. Default none. */
  pathPrefix?: string;
  /** Sign in as the `login_hint` of the authorization request (sub = email = hint), when one is given. For load tests. */
  userFromLoginHint?: boolean;
  /** Keep no request log (long benchmark runs). */
  noRequestLog?: boolean;
  /** Registered redirect URIs (see addRedirectUri). Default none: any is accepted. */
  redirectUris?: string[];
  /**
   * RFC 9207: announce `authorization_response_iss_parameter_supported` and put `iss` in every
   * authorization response (success and error). Default false.
   */
  issParameter?: boolean;
  /**
   * RFC 9126 pushed authorization requests at `<issuer>/par`: 'supported' lists the endpoint;
   * 'required' also announces `require_pushed_authorization_requests` and refuses (redirecting
   * back with `error=invalid_request`) any authorization request that was not pushed. Default 'none'.
   */
  par?: 'none' | 'supported' | 'required';
}

interface SigningKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyObject;
  publicJwk: JWK;
}

interface CodeRecord {
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  nonce: string | undefined;
  scope: string;
  user: AdversarialIdpUser;
  expiresAt: number;
}

interface TokenRecord {
  user: AdversarialIdpUser;
  scope: string;
  expiresAt: number;
}

const CODE_TTL_S = 60;
const TOKEN_TTL_S = 300;

function newKey(alg: 'RS256' | 'ES256', label: string): SigningKey {
  const { privateKey, publicKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = `${label}-${randomBytes(6).toString('hex')}`;
  const publicJwk = { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk };
}

function b64url(input: string | Uint8Array): string {
  return Buffer.from(input).toString('base64url');
}

function sha256b64url(s: string): string {
  return createHash('sha256').update(s).digest('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

function formDecode(s: string): string {
  return decodeURIComponent(s.replace(/\+/g, ' '));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  send(res, status, JSON.stringify(value), headers);
}

export async function startAdversarialIdp(opts: StartAdversarialIdpOptions = {}): Promise<AdversarialIdp> {
  const clientAuth = opts.clientAuth ?? 'client_secret_basic';
  let prefix = opts.pathPrefix ?? '';
  if (prefix && !prefix.startsWith('/')) prefix = `/${prefix}`;
  prefix = prefix.replace(/\/+$/, '');

  const clientId = `adv-client-${randomBytes(4).toString('hex')}`;
  const clientSecret = randomBytes(24).toString('base64url');
  let current = newKey('RS256', 'rsa');
  let next = newKey('RS256', 'rsa');
  const secondRsa = newKey('RS256', 'rsa-extra');
  const ecKey = newKey('ES256', 'ec');

  let m: Misbehaviour = {};
  let user: AdversarialIdpUser = { sub: 'user-1', email: 'user-1@example.test', email_verified: true, name: 'User One' };
  const codes = new Map<string, CodeRecord>();
  const registered = new Set<string>(opts.redirectUris ?? []);
  const pushed = new Map<string, { params: URLSearchParams; expiresAt: number }>();
  const par = opts.par ?? 'none';
  const tokens = new Map<string, TokenRecord>();
  const requests: AdversarialIdpRequest[] = [];

  let origin = '';
  let issuer = '';
  const endpoint = (name: string) => `${issuer}/${name}`;

  function discoveryDocument(): Record<string, unknown> {
    const algs = ['RS256'];
    if (m.alg && m.alg !== 'RS256') algs.push(m.alg === 'HS256-client-secret' ? 'HS256' : m.alg);
    let docIssuer = issuer;
    if (m.entraTemplate) docIssuer = `${origin}/{tenantid}/v2.0`;
    if (m.discoveryIssuer !== undefined) docIssuer = m.discoveryIssuer;
    const doc: Record<string, unknown> = {
      issuer: docIssuer,
      authorization_endpoint: endpoint('authorize'),
      token_endpoint: endpoint('token'),
      jwks_uri: endpoint('jwks'),
      userinfo_endpoint: endpoint('userinfo'),
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: algs,
      scopes_supported: ['openid', 'profile', 'email'],
      token_endpoint_auth_methods_supported: [clientAuth],
      code_challenge_methods_supported: ['S256'],
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'email', 'email_verified', 'name'],
    };
    if (opts.issParameter) doc.authorization_response_iss_parameter_supported = true;
    if (par !== 'none') doc.pushed_authorization_request_endpoint = endpoint('par');
    if (par === 'required') doc.require_pushed_authorization_requests = true;
    if (m.noJwksUri) delete doc.jwks_uri;
    if (m.noUserinfo) delete doc.userinfo_endpoint;
    return doc;
  }

  function jwks(): { keys: JWK[] } {
    const keys = [current.publicJwk];
    if (m.jwksKeys === 'two') keys.push(secondRsa.publicJwk);
    if (m.alg === 'ES256') keys.push(ecKey.publicJwk);
    return { keys };
  }

  async function idToken(rec: CodeRecord): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    let claims: Record<string, unknown> = {
      ...rec.user,
      iss: m.entraTemplate ? `${origin}/${m.entraTemplate.tenantId}/v2.0` : issuer,
      sub: rec.user.sub,
      aud: rec.clientId,
      exp: now + TOKEN_TTL_S,
      iat: now,
    };
    if (rec.nonce !== undefined) claims.nonce = rec.nonce;
    if (m.entraTemplate) claims.tid = m.entraTemplate.tenantId;
    if (m.idTokenClaims) claims = m.idTokenClaims({ ...claims });
    const payload = new TextEncoder().encode(JSON.stringify(claims));

    let jwt: string;
    if (m.alg === 'none') {
      jwt = `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(payload)}.`;
    } else if (m.alg === 'HS256-client-secret') {
      jwt = await new CompactSign(payload)
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .sign(new TextEncoder().encode(clientSecret));
    } else {
      const key = m.alg === 'ES256' ? ecKey : m.signWithUnpublishedKey ? next : current;
      const header = m.omitKid ? { alg: key.alg, typ: 'JWT' } : { alg: key.alg, typ: 'JWT', kid: key.kid };
      jwt = await new CompactSign(payload).setProtectedHeader(header).sign(key.privateKey);
    }
    if (m.corruptSignature) {
      const [h = '', p = '', s = ''] = jwt.split('.');
      const sig = Buffer.from(s, 'base64url');
      if (sig.length > 0) {
        const i = sig.length >> 1;
        sig[i] = (sig[i] ?? 0) ^ 0xff;
      }
      jwt = `${h}.${p}.${sig.length > 0 ? sig.toString('base64url') : 'AAAA'}`;
    }
    return jwt;
  }

  function authorize(authorizationUrl: string): URL {
    const url = new URL(authorizationUrl);
    if (!opts.noRequestLog) requests.push({ path: `${url.pathname}${url.search}`, method: 'GET', headers: {}, body: '' });
    if (`${url.origin}${url.pathname}` !== endpoint('authorize')) {
      throw new Error(`adversarial-idp: ${url.origin}${url.pathname} is not ${endpoint('authorize')}`);
    }
    if (m.mixUpBounce) {
      // The attacker's IdP: never answers, sends the browser on to the victim IdP instead.
      const b = m.mixUpBounce;
      const to = new URL(b.authorizationEndpoint);
      to.search = new URLSearchParams({
        response_type: 'code', client_id: b.clientId, redirect_uri: b.redirectUri, scope: b.scope ?? 'openid profile email',
        state: url.searchParams.get('state') ?? '', code_challenge: b.codeChallenge, code_challenge_method: 'S256',
        ...(b.nonce ? { nonce: b.nonce } : {}),
      }).toString();
      return to;
    }
    let p = url.searchParams;
    if (p.get('client_id') !== clientId) throw new Error(`adversarial-idp: unknown client_id ${p.get('client_id')}`);
    const requestUri = p.get('request_uri');
    if (requestUri !== null) {
      const entry = pushed.get(requestUri);
      pushed.delete(requestUri); // one use
      if (!entry || entry.expiresAt < Date.now()) throw new Error('adversarial-idp: unknown or expired request_uri');
      p = entry.params;
    }
    const redirectUri = p.get('redirect_uri');
    if (!redirectUri || !URL.canParse(redirectUri)) throw new Error('adversarial-idp: missing/invalid redirect_uri');
    if (registered.size > 0 && !registered.has(redirectUri)) throw new Error(`adversarial-idp: redirect_uri ${redirectUri} is not registered for this client`);
    const back = new URL(redirectUri);
    const state = p.get('state');
    const fail = (error: string, description: string): URL => {
      back.searchParams.set('error', error);
      back.searchParams.set('error_description', description);
      if (state !== null) back.searchParams.set('state', state);
      if (opts.issParameter) back.searchParams.set('iss', issuer);
      return back;
    };
    if (par === 'required' && requestUri === null) return fail('invalid_request', 'pushed authorization request required');
    if (p.get('response_type') !== 'code') return fail('unsupported_response_type', 'only code is supported');
    const scope = p.get('scope') ?? '';
    if (!scope.split(' ').includes('openid')) return fail('invalid_scope', 'openid scope required');
    const codeChallenge = p.get('code_challenge');
    if (!codeChallenge || p.get('code_challenge_method') !== 'S256') {
      return fail('invalid_request', 'PKCE with S256 is required');
    }
    if (m.authorizeError) return fail(m.authorizeError, 'misbehaviour');
    const code = randomBytes(24).toString('base64url');
    codes.set(code, {
      clientId,
      redirectUri,
      codeChallenge,
      nonce: p.get('nonce') ?? undefined,
      scope,
      user: opts.userFromLoginHint && p.get('login_hint') ? { sub: p.get('login_hint')!, email: p.get('login_hint')!, email_verified: true, name: p.get('login_hint')! } : { ...user },
      expiresAt: Date.now() + CODE_TTL_S * 1000,
    });
    back.searchParams.set('code', code);
    if (state !== null) back.searchParams.set('state', state);
    if (opts.issParameter) back.searchParams.set('iss', issuer);
    return back;
  }

  /** Client authentication as the token endpoint does it; returns an error answer or null. */
  function authenticateClient(req: IncomingMessage, form: URLSearchParams): { status: number; error: string; description: string; headers?: Record<string, string> } | null {
    const authz = req.headers.authorization;
    let authId: string | undefined;
    let authSecret: string | undefined;
    if (clientAuth === 'client_secret_basic') {
      if (form.has('client_secret')) return { status: 400, error: 'invalid_request', description: 'client_secret in body, expected client_secret_basic' };
      const match = authz ? /^Basic\s+(.+)$/i.exec(authz) : null;
      if (!match?.[1]) return { status: 401, error: 'invalid_client', description: 'client_secret_basic required', headers: { 'www-authenticate': 'Basic realm="token"' } };
      const decoded = Buffer.from(match[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return { status: 401, error: 'invalid_client', description: 'malformed Basic credentials' };
      try {
        authId = formDecode(decoded.slice(0, colon));
        authSecret = formDecode(decoded.slice(colon + 1));
      } catch {
        return { status: 401, error: 'invalid_client', description: 'malformed Basic credentials' };
      }
      const bodyClientId = form.get('client_id');
      if (bodyClientId !== null && bodyClientId !== authId) return { status: 400, error: 'invalid_request', description: 'client_id mismatch' };
    } else {
      if (authz) return { status: 400, error: 'invalid_request', description: 'Authorization header present, expected client_secret_post' };
      authId = form.get('client_id') ?? undefined;
      authSecret = form.get('client_secret') ?? undefined;
      if (authId === undefined || authSecret === undefined) return { status: 401, error: 'invalid_client', description: 'client_secret_post required' };
    }
    if (authId !== clientId || !safeEqual(authSecret, clientSecret)) return { status: 401, error: 'invalid_client', description: 'client authentication failed' };
    return null;
  }

  /** RFC 9126 §2: a client-authenticated POST of the authorization request; answers 201 with a one-use request_uri. */
  function pushedAuthorizationRequest(req: IncomingMessage, res: ServerResponse, body: string): void {
    const form = new URLSearchParams(body);
    const refused = authenticateClient(req, form);
    if (refused) return sendJson(res, refused.status, { error: refused.error, error_description: refused.description }, refused.headers);
    if (form.has('request_uri')) return sendJson(res, 400, { error: 'invalid_request', error_description: 'request_uri must not be pushed' });
    const redirectUri = form.get('redirect_uri');
    if (!redirectUri || (registered.size > 0 && !registered.has(redirectUri))) return sendJson(res, 400, { error: 'invalid_redirect_uri', error_description: 'redirect_uri not registered' });
    const params = new URLSearchParams(form);
    params.delete('client_secret');
    params.set('client_id', clientId);
    const requestUri = `urn:ietf:params:oauth:request_uri:${randomBytes(16).toString('base64url')}`;
    pushed.set(requestUri, { params, expiresAt: Date.now() + 60_000 });
    sendJson(res, 201, { request_uri: requestUri, expires_in: 60 });
  }

  async function token(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
    const form = new URLSearchParams(body);
    const oauthError = (status: number, error: string, description: string, headers: Record<string, string> = {}) =>
      sendJson(res, status, { error, error_description: description }, headers);

    // Client authentication: exactly the registered method.
    const refused = authenticateClient(req, form);
    if (refused) return oauthError(refused.status, refused.error, refused.description, refused.headers);
    const authId = clientId;

    // The code is single use: consumed by the first attempt, whatever happens next.
    const code = form.get('code') ?? '';
    const rec = codes.get(code);
    codes.delete(code);

    if (m.tokenStatus !== undefined || m.tokenBody !== undefined) {
      const status = m.tokenStatus ?? 200;
      return send(res, status, m.tokenBody ?? JSON.stringify({ error: 'server_error', error_description: 'misbehaviour' }));
    }

    if (form.get('grant_type') !== 'authorization_code') {
      return oauthError(400, 'unsupported_grant_type', 'only authorization_code');
    }
    if (!rec || rec.expiresAt < Date.now()) return oauthError(400, 'invalid_grant', 'unknown, used or expired code');
    if (rec.clientId !== authId) return oauthError(400, 'invalid_grant', 'code issued to another client');
    if (form.get('redirect_uri') !== rec.redirectUri) return oauthError(400, 'invalid_grant', 'redirect_uri mismatch');
    const verifier = form.get('code_verifier');
    if (!verifier || !/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) {
      return oauthError(400, 'invalid_grant', 'missing or malformed code_verifier');
    }
    if (!safeEqual(sha256b64url(verifier), rec.codeChallenge)) {
      return oauthError(400, 'invalid_grant', 'PKCE verification failed');
    }

    const accessToken = randomBytes(24).toString('base64url');
    tokens.set(accessToken, { user: rec.user, scope: rec.scope, expiresAt: Date.now() + TOKEN_TTL_S * 1000 });
    sendJson(res, 200, {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: TOKEN_TTL_S,
      scope: rec.scope,
      id_token: await idToken(rec),
    });
  }

  function userinfo(req: IncomingMessage, res: ServerResponse, body: string): void {
    const authz = req.headers.authorization;
    let at = authz ? /^Bearer\s+(.+)$/i.exec(authz)?.[1] : undefined;
    if (!at && req.method === 'POST') at = new URLSearchParams(body).get('access_token') ?? undefined;
    const rec = at ? tokens.get(at) : undefined;
    if (!rec || rec.expiresAt < Date.now()) {
      return sendJson(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
    sendJson(res, 200, { ...rec.user, sub: m.userinfoSub ?? rec.user.sub });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const rawPath = req.url ?? '/';
    if (!opts.noRequestLog) requests.push({ path: rawPath, method: req.method ?? 'GET', headers: { ...req.headers }, body });
    const pathname = new URL(rawPath, origin).pathname;
    const route = pathname.startsWith(`${prefix}/`) ? pathname.slice(prefix.length) : undefined;

    if (route === '/.well-known/openid-configuration' && req.method === 'GET') {
      if (m.discoveryStatus !== undefined || m.discoveryBody !== undefined) {
        const status = m.discoveryStatus ?? 200;
        const fallback = status >= 200 && status < 300 ? discoveryDocument() : { error: 'server_error' };
        return send(res, status, m.discoveryBody ?? JSON.stringify(fallback));
      }
      return sendJson(res, 200, discoveryDocument(), { 'cache-control': 'public, max-age=0' });
    }
    if (route === '/jwks' && req.method === 'GET') {
      return send(res, 200, JSON.stringify(jwks()), { 'content-type': 'application/jwk-set+json' });
    }
    if (route === '/authorize' && req.method === 'GET') {
      if (!opts.noRequestLog) requests.pop(); // authorize() logs it
      let location: URL;
      try {
        location = authorize(new URL(rawPath, origin).href);
      } catch (err) {
        return send(res, 400, String(err), { 'content-type': 'text/plain' });
      }
      res.writeHead(302, { location: location.href });
      return void res.end();
    }
    if (route === '/token' && req.method === 'POST') return token(req, res, body);
    if (route === '/par' && req.method === 'POST' && par !== 'none') return pushedAuthorizationRequest(req, res, body);
    if (route === '/userinfo' && (req.method === 'GET' || req.method === 'POST') && !m.noUserinfo) {
      return userinfo(req, res, body);
    }
    sendJson(res, 404, { error: 'not_found' });
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err) });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  issuer = `${origin}${prefix}`;

  return {
    issuer,
    clientId,
    clientSecret,
    misbehave(x) {
      m = { ...m, ...x };
    },
    reset() {
      m = {};
    },
    rotateKeys() {
      current = next;
      next = newKey('RS256', 'rsa');
    },
    setUser(u) {
      user = { ...u };
    },
    authorize,
    requests,
    get authorizationEndpoint() {
      return endpoint('authorize');
    },
    addRedirectUri(uri) {
      registered.add(uri);
    },
    async redeem(code, redirectUri, codeVerifier) {
      const res = await fetch(endpoint('token'), {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          ...(clientAuth === 'client_secret_basic' ? { authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}` } : {}),
        },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: codeVerifier, ...(clientAuth === 'client_secret_post' ? { client_id: clientId, client_secret: clientSecret } : {}) }).toString(),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
