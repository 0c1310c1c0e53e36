import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdversarialIdp, type AdversarialIdp } from './adversarial-idp.js';
import { startRealIdp, type RealIdp } from './oidc-idp.js';

const REDIRECT_URI = 'http://127.0.0.1:9/oidc/callback'; // never requested

interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  userinfo_endpoint: string;
}

interface AuthRequest {
  url: string;
  state: string;
  nonce: string;
  verifier: string;
}

async function discover(issuer: string): Promise<Discovery> {
  const res = await fetch(`${issuer}/.well-known/openid-configuration`);
  expect(res.status).toBe(200);
  const doc = (await res.json()) as Discovery;
  expect(doc.issuer).toBe(issuer);
  return doc;
}

function authorizationUrl(doc: Discovery, clientId: string, loginHint?: string): AuthRequest {
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL(doc.authorization_endpoint);
  const params: Record<string, string> = {
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile email',
    state,
    nonce,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  };
  if (loginHint) params.login_hint = loginHint;
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return { url: url.href, state, nonce, verifier };
}

async function exchange(
  doc: Discovery,
  client: { clientId: string; clientSecret: string },
  auth: 'client_secret_basic' | 'client_secret_post',
  code: string,
  verifier: string,
): Promise<Response> {
  const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (auth === 'client_secret_basic') {
    const enc = (s: string) => encodeURIComponent(s);
    headers.authorization = `Basic ${Buffer.from(`${enc(client.clientId)}:${enc(client.clientSecret)}`).toString('base64')}`;
  } else {
    body.set('client_id', client.clientId);
    body.set('client_secret', client.clientSecret);
  }
  return fetch(doc.token_endpoint, { method: 'POST', headers, body });
}

interface TokenResponse {
  access_token: string;
  id_token: string;
  token_type: string;
}

async function verifyIdToken(doc: Discovery, idToken: string, clientId: string): Promise<JWTPayload> {
  const { payload } = await jwtVerify(idToken, createRemoteJWKSet(new URL(doc.jwks_uri)), {
    issuer: doc.issuer,
    audience: clientId,
    algorithms: ['RS256'],
  });
  return payload;
}

async function userinfo(doc: Discovery, accessToken: string): Promise<Record<string, unknown>> {
  const res = await fetch(doc.userinfo_endpoint, { headers: { authorization: `Bearer ${accessToken}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

describe('real IdP (oidc-provider)', () => {
  let idp: RealIdp;
  beforeAll(async () => {
    idp = await startRealIdp({
      redirectUris: [REDIRECT_URI],
      users: [{ sub: 'alice', email: 'alice@acme.test', email_verified: true, name: 'Alice A', given_name: 'Alice' }],
    });
  });
  afterAll(() => idp.close());

  it('runs the code + PKCE flow end to end', async () => {
    const doc = await discover(idp.issuer);
    const auth = authorizationUrl(doc, idp.clientId, 'alice@acme.test');
    const back = await idp.login(auth.url, 'alice');
    expect(`${back.origin}${back.pathname}`).toBe(REDIRECT_URI);
    expect(back.searchParams.get('state')).toBe(auth.state);
    expect(back.searchParams.get('iss')).toBe(idp.issuer); // RFC 9207
    expect(idp.lastLoginHint()).toBe('alice@acme.test');
    const code = back.searchParams.get('code');
    expect(code).toBeTruthy();

    // Wrong verifier is rejected (and burns the code, as oidc-provider does).
    const bad = await exchange(doc, idp, 'client_secret_basic', code!, randomBytes(32).toString('base64url'));
    expect(bad.status).toBe(400);

    const auth2 = authorizationUrl(doc, idp.clientId);
    const back2 = await idp.login(auth2.url, 'alice');
    expect(idp.lastLoginHint()).toBeUndefined();
    const res = await exchange(doc, idp, 'client_secret_basic', back2.searchParams.get('code')!, auth2.verifier);
    expect(res.status).toBe(200);
    const tokens = (await res.json()) as TokenResponse;
    const claims = await verifyIdToken(doc, tokens.id_token, idp.clientId);
    expect(claims).toMatchObject({ sub: 'alice', nonce: auth2.nonce, email: 'alice@acme.test', email_verified: true, name: 'Alice A' });

    idp.users.set('alice', { sub: 'alice', email: 'alice@new.test', email_verified: false });
    expect(await userinfo(doc, tokens.access_token)).toEqual({ sub: 'alice', email: 'alice@new.test', email_verified: false });
  });

  it('redirects back with access_denied when the user refuses; rejects the other auth method', async () => {
    const doc = await discover(idp.issuer);
    const denied = await idp.login(authorizationUrl(doc, idp.clientId).url, 'alice', { deny: true });
    expect(denied.searchParams.get('error')).toBe('access_denied');

    const auth = authorizationUrl(doc, idp.clientId);
    const back = await idp.login(auth.url, 'alice');
    const res = await exchange(doc, idp, 'client_secret_post', back.searchParams.get('code')!, auth.verifier);
    expect(res.status).toBe(401);
  });

  it('builds third-party initiated login URLs', () => {
    const u = new URL(idp.initiateUrl('http://127.0.0.1:9/sso/initiate', { targetLinkUri: 'http://127.0.0.1:9/app', loginHint: 'alice@acme.test' }));
    expect(u.searchParams.get('iss')).toBe(idp.issuer);
    expect(u.searchParams.get('target_link_uri')).toBe('http://127.0.0.1:9/app');
    expect(u.searchParams.get('login_hint')).toBe('alice@acme.test');
  });
});

describe('adversarial IdP', () => {
  let idp: AdversarialIdp;
  beforeAll(async () => {
    idp = await startAdversarialIdp({ clientAuth: 'client_secret_post', pathPrefix: '/tenant-1/v2.0' });
    idp.setUser({ sub: 'bob', email: 'bob@acme.test', email_verified: true, name: 'Bob B', groups: ['eng'] });
  });
  afterAll(() => idp.close());

  async function flow(): Promise<{ doc: Discovery; auth: AuthRequest; tokens: TokenResponse }> {
    const doc = await discover(idp.issuer);
    const auth = authorizationUrl(doc, idp.clientId);
    const back = idp.authorize(auth.url);
    expect(back.searchParams.get('state')).toBe(auth.state);
    const res = await exchange(doc, idp, 'client_secret_post', back.searchParams.get('code')!, auth.verifier);
    expect(res.status).toBe(200);
    return { doc, auth, tokens: (await res.json()) as TokenResponse };
  }

  it('behaves correctly by default', async () => {
    expect(idp.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/tenant-1\/v2\.0$/);
    const { doc, auth, tokens } = await flow();
    const claims = await verifyIdToken(doc, tokens.id_token, idp.clientId);
    expect(claims).toMatchObject({ sub: 'bob', nonce: auth.nonce, email: 'bob@acme.test', email_verified: true, name: 'Bob B' });
    expect(claims.exp! - claims.iat!).toBe(300);
    expect(decodeProtectedHeader(tokens.id_token).kid).toBeTruthy();
    expect(await userinfo(doc, tokens.access_token)).toMatchObject({ sub: 'bob', email: 'bob@acme.test', groups: ['eng'] });
    expect(idp.requests.some((r) => r.path === '/tenant-1/v2.0/token' && r.body.includes('client_secret='))).toBe(true);
  });

  it('checks PKCE, single use codes and client auth', async () => {
    const doc = await discover(idp.issuer);
    const auth = authorizationUrl(doc, idp.clientId);
    const code = idp.authorize(auth.url).searchParams.get('code')!;
    expect((await exchange(doc, idp, 'client_secret_basic', code, auth.verifier)).status).toBe(400);
    const auth2 = authorizationUrl(doc, idp.clientId);
    const code2 = idp.authorize(auth2.url).searchParams.get('code')!;
    expect((await exchange(doc, idp, 'client_secret_post', code2, randomBytes(32).toString('base64url'))).status).toBe(400);
    expect((await exchange(doc, idp, 'client_secret_post', code2, auth2.verifier)).status).toBe(400); // burnt
  });

  it("alg 'none' yields an unsigned token; corruptSignature fails verification", async () => {
    try {
      idp.misbehave({ alg: 'none' });
      const { tokens } = await flow();
      expect(decodeProtectedHeader(tokens.id_token).alg).toBe('none');
      expect(tokens.id_token.endsWith('.')).toBe(true);

      idp.reset();
      idp.misbehave({ corruptSignature: true });
      const { doc, tokens: t2 } = await flow();
      await expect(verifyIdToken(doc, t2.id_token, idp.clientId)).rejects.toThrow(/signature/);
    } finally {
      idp.reset();
    }
  });

  it('rotates keys; imitates Entra multi-tenant metadata', async () => {
    try {
      idp.misbehave({ signWithUnpublishedKey: true });
      const { doc, tokens } = await flow();
      await expect(verifyIdToken(doc, tokens.id_token, idp.clientId)).rejects.toThrow();
      idp.reset();
      idp.rotateKeys();
      const jwks = (await (await fetch(doc.jwks_uri)).json()) as { keys: Array<{ kid: string }> };
      expect(jwks.keys.map((k) => k.kid)).toEqual([decodeProtectedHeader(tokens.id_token).kid]);

      idp.misbehave({ entraTemplate: { tenantId: 'tid-123' } });
      const raw = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as Discovery;
      expect(raw.issuer).toMatch(/\/\{tenantid\}\/v2\.0$/);
      const auth = authorizationUrl(raw, idp.clientId);
      const code = idp.authorize(auth.url).searchParams.get('code')!;
      const t = (await (await exchange(raw, idp, 'client_secret_post', code, auth.verifier)).json()) as TokenResponse;
      const { payload } = await jwtVerify(t.id_token, createRemoteJWKSet(new URL(raw.jwks_uri)), {
        issuer: raw.issuer.replace('{tenantid}', 'tid-123'),
        audience: idp.clientId,
      });
      expect(payload.tid).toBe('tid-123');
    } finally {
      idp.reset();
    }
  });
});
