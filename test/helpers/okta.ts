/**
 * A mock Okta org on 127.0.0.1, shaped as Okta is (Okta itself cannot run here):
 *
 * - the ORG authorization server, issuer `http://127.0.0.1:<port>`: discovery at
 *   `/.well-known/openid-configuration`, keys at `/oauth2/v1/keys`. Okta signs Universal Logout
 *   (Global Token Revocation) requests with this key, whatever authorization server the app uses.
 * - a CUSTOM authorization server, issuer `http://127.0.0.1:<port>/oauth2/default`: discovery at
 *   `/oauth2/default/.well-known/openid-configuration`, keys at `/oauth2/default/v1/keys`,
 *   `/v1/authorize` (code flow, PKCE S256), `/v1/token` (client_secret_basic or _post),
 *   `/v1/userinfo`. Its ID tokens are signed with its own key (RS256), never the org key.
 *
 * `universalLogoutToken()` builds what Okta posts to an app's Global Token Revocation endpoint:
 * header `{alg: RS256, kid, typ: global-token-revocation+jwt}`, claims `iss` (org URL), `sub`
 * (client id), `aud` (the endpoint), `iat`, `exp` (5 minutes), `jti` — each overridable for the
 * attack tests.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type CryptoKey } from 'jose';

export interface OktaUser {
  /** Okta user id (00u…), the OIDC `sub`. */
  id: string;
  email: string;
  name?: string;
}

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface UniversalLogoutTokenOptions {
  /** Claims to set (undefined values remove a claim). */
  claims?: Record<string, unknown>;
  /** Header members to set (undefined removes one). */
  header?: Record<string, unknown>;
  /** Sign with this key instead of the org key. */
  key?: SigningKey;
  /** `alg: none`, unsigned. */
  unsigned?: boolean;
  /** HS256 with this secret. */
  hmacSecret?: Uint8Array;
  /** Seconds since the epoch (default: now from the clock given at start). */
  now?: number;
}

export interface MockOkta {
  /** The org URL: the org authorization server's issuer. */
  orgUrl: string;
  /** The custom authorization server's issuer (the connection's issuerUrl). */
  customIssuer: string;
  clientId: string;
  clientSecret: string;
  orgKey: SigningKey;
  customKey: SigningKey;
  users: Map<string, OktaUser>;
  /** Follow an authorization URL as `userId`; returns the redirect back (code and state). */
  login(authorizationUrl: string, userId: string): Promise<URL>;
  addRedirectUri(uri: string): void;
  universalLogoutToken(audience: string, opts?: UniversalLogoutTokenOptions): Promise<string>;
  /** How many times each path was requested (to prove no key was fetched). */
  hits: Map<string, number>;
  close(): Promise<void>;
}

export async function newSigningKey(kid = `k-${randomBytes(6).toString('hex')}`): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

async function readBody(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const p of req) parts.push(p as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

export async function startMockOkta(opts: { users?: OktaUser[]; now?: () => Date } = {}): Promise<MockOkta> {
  const clientId = `0oa${randomBytes(8).toString('hex')}`;
  const clientSecret = randomBytes(24).toString('base64url');
  const orgKey = await newSigningKey();
  const customKey = await newSigningKey();
  const users = new Map((opts.users ?? []).map((u) => [u.id, u]));
  const redirectUris = new Set<string>();
  const codes = new Map<string, { userId: string; nonce: string | null; challenge: string; redirectUri: string }>();
  const accessTokens = new Map<string, string>();
  const hits = new Map<string, number>();
  const now = () => Math.floor((opts.now?.() ?? new Date()).getTime() / 1000);
  let orgUrl = '';
  let customIssuer = '';

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };

  async function token(req: IncomingMessage, res: ServerResponse) {
    const form = new URLSearchParams(await readBody(req));
    let id = form.get('client_id');
    let secret = form.get('client_secret');
    const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
    if (basic) [id, secret] = Buffer.from(basic[1]!, 'base64').toString().split(':').map(decodeURIComponent) as [string, string];
    if (id !== clientId || secret !== clientSecret) return json(res, 401, { error: 'invalid_client' });
    const grant = codes.get(form.get('code') ?? '');
    codes.delete(form.get('code') ?? '');
    if (form.get('grant_type') !== 'authorization_code' || !grant || grant.redirectUri !== form.get('redirect_uri')) return json(res, 400, { error: 'invalid_grant' });
    const verifier = form.get('code_verifier') ?? '';
    if (createHash('sha256').update(verifier).digest('base64url') !== grant.challenge) return json(res, 400, { error: 'invalid_grant', error_description: 'PKCE verification failed' });
    const user = users.get(grant.userId)!;
    const t = now();
    const idToken = await new SignJWT({ email: user.email, email_verified: true, name: user.name ?? user.email, ...(grant.nonce ? { nonce: grant.nonce } : {}), auth_time: t, ver: 1 })
      .setProtectedHeader({ alg: 'RS256', kid: customKey.kid })
      .setIssuer(customIssuer).setSubject(user.id).setAudience(clientId).setIssuedAt(t).setExpirationTime(t + 3600).setJti(`ID.${randomBytes(12).toString('base64url')}`)
      .sign(customKey.privateKey);
    const at = randomBytes(24).toString('base64url');
    accessTokens.set(at, user.id);
    json(res, 200, { token_type: 'Bearer', expires_in: 3600, access_token: at, scope: 'openid profile email', id_token: idToken });
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    const p = url.pathname;
    void (async () => {
      if (p === '/.well-known/openid-configuration') {
        return json(res, 200, {
          issuer: orgUrl, authorization_endpoint: `${orgUrl}/oauth2/v1/authorize`, token_endpoint: `${orgUrl}/oauth2/v1/token`, userinfo_endpoint: `${orgUrl}/oauth2/v1/userinfo`,
          jwks_uri: `${orgUrl}/oauth2/v1/keys`, registration_endpoint: `${orgUrl}/oauth2/v1/clients`, response_types_supported: ['code', 'id_token', 'code id_token'],
          subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'], scopes_supported: ['openid', 'email', 'profile', 'okta.users.read'],
          token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'],
          code_challenge_methods_supported: ['S256'], end_session_endpoint: `${orgUrl}/oauth2/v1/logout`, revocation_endpoint: `${orgUrl}/oauth2/v1/revoke`,
        });
      }
      if (p === '/oauth2/v1/keys') return json(res, 200, { keys: [orgKey.publicJwk] });
      if (p === '/oauth2/default/.well-known/openid-configuration') {
        return json(res, 200, {
          issuer: customIssuer, authorization_endpoint: `${customIssuer}/v1/authorize`, token_endpoint: `${customIssuer}/v1/token`, userinfo_endpoint: `${customIssuer}/v1/userinfo`,
          registration_endpoint: `${orgUrl}/oauth2/v1/clients`, jwks_uri: `${customIssuer}/v1/keys`, response_types_supported: ['code', 'id_token', 'code id_token'],
          subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'], scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
          token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'],
          code_challenge_methods_supported: ['S256'], end_session_endpoint: `${customIssuer}/v1/logout`, revocation_endpoint: `${customIssuer}/v1/revoke`,
        });
      }
      if (p === '/oauth2/default/v1/keys') return json(res, 200, { keys: [customKey.publicJwk] });
      if (p === '/oauth2/default/v1/authorize') {
        const q = url.searchParams;
        const redirectUri = q.get('redirect_uri') ?? '';
        const userId = String(req.headers['x-okta-user'] ?? '');
        if (q.get('client_id') !== clientId || !redirectUris.has(redirectUri) || !users.has(userId)) return json(res, 400, { error: 'invalid_request' });
        if (q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) return json(res, 400, { error: 'invalid_request', error_description: 'PKCE required' });
        const code = randomBytes(16).toString('base64url');
        codes.set(code, { userId, nonce: q.get('nonce'), challenge: q.get('code_challenge')!, redirectUri });
        const back = new URL(redirectUri);
        back.searchParams.set('code', code);
        if (q.get('state')) back.searchParams.set('state', q.get('state')!);
        res.writeHead(302, { location: back.href });
        return res.end();
      }
      if (p === '/oauth2/default/v1/token' && req.method === 'POST') return token(req, res);
      if (p === '/oauth2/default/v1/userinfo') {
        const at = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
        const user = at ? users.get(accessTokens.get(at) ?? '') : undefined;
        if (!user) return json(res, 401, { error: 'invalid_token' });
        return json(res, 200, { sub: user.id, email: user.email, email_verified: true, name: user.name ?? user.email });
      }
      json(res, 404, { errorCode: 'E0000022', errorSummary: 'The endpoint does not support the provided HTTP method' });
    })().catch((e: unknown) => json(res, 500, { error: String(e) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  orgUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  customIssuer = `${orgUrl}/oauth2/default`;

  return {
    orgUrl, customIssuer, clientId, clientSecret, orgKey, customKey, users, hits,
    addRedirectUri: (uri) => void redirectUris.add(uri),
    async login(authorizationUrl, userId) {
      const res = await fetch(authorizationUrl, { redirect: 'manual', headers: { 'x-okta-user': userId } });
      const location = res.headers.get('location');
      if (res.status !== 302 || !location) throw new Error(`mock okta: authorize answered ${res.status}: ${await res.text()}`);
      return new URL(location);
    },
    async universalLogoutToken(audience, o = {}) {
      const t = o.now ?? now();
      const claims: Record<string, unknown> = { iss: orgUrl, sub: clientId, aud: audience, iat: t, exp: t + 300, jti: `gtr-${randomBytes(12).toString('hex')}` };
      for (const [k, v] of Object.entries(o.claims ?? {})) if (v === undefined) delete claims[k]; else claims[k] = v;
      const key = o.key ?? orgKey;
      const header: Record<string, unknown> = { alg: 'RS256', kid: key.kid, typ: 'global-token-revocation+jwt' };
      if (o.unsigned) header.alg = 'none';
      if (o.hmacSecret) header.alg = 'HS256';
      for (const [k, v] of Object.entries(o.header ?? {})) if (v === undefined) delete header[k]; else header[k] = v;
      if (o.unsigned) return `${b64u(header)}.${b64u(claims)}.`;
      if (o.hmacSecret) {
        const input = `${b64u(header)}.${b64u(claims)}`;
        return `${input}.${createHmac('sha256', o.hmacSecret).update(input).digest('base64url')}`;
      }
      // jose refuses some header shapes (e.g. no alg); the claims go through as given.
      return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
    },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
