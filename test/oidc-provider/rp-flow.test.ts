import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorize, browserOf, makeSuperadmin, registerClient, rpConfig, startOpServer, type OpServer } from '../helpers/op.js';
import type { TestUser } from '../helpers/app.js';

const REDIRECT = 'http://127.0.0.1:9/cb';

describe('OpenID Provider, driven by openid-client (confidential client)', () => {
  // Also: "an app's access token from the OpenID Provider is refused by Gatehouse's own API" (below).
  let op: OpServer;
  let admin: TestUser;
  let alice: TestUser;
  let client: { clientId: string; clientSecret: string | null };

  beforeAll(async () => {
    op = await startOpServer();
    admin = await op.gh.signUp('root@gatehouse.test');
    await makeSuperadmin(op.gh, admin);
    alice = await op.gh.signUp('alice@example.com', undefined, 'Alice');
    client = await registerClient(op.gh, admin, { name: 'Web app', redirectUris: [REDIRECT], firstParty: true, postLogoutRedirectUris: ['http://127.0.0.1:9/bye'] });
  });
  afterAll(async () => op?.close());

  it('discovery, code + PKCE, ID token verified against the JWKS, UserInfo', async () => {
    const config = await rpConfig(op, client.clientId, client.clientSecret);
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(op.base);
    expect(meta.jwks_uri).toBe(`${op.base}/.well-known/jwks.json`);
    expect(meta.authorization_response_iss_parameter_supported).toBe(true);
    const browser = browserOf(op, alice);
    const { callback, verifier, state, nonce } = await authorize(browser, config, { scope: 'openid email profile offline_access', prompt: 'consent', resource: op.base }, REDIRECT);
    expect(callback.searchParams.get('iss')).toBe(op.base);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(alice.id);
    expect(claims.email).toBe('alice@example.com');
    const session = await op.gh.request('GET', '/api/auth/session', { as: alice });
    expect(claims.sid).toBe(session.body.data.session.id);
    const jwks = createRemoteJWKSet(new URL(meta.jwks_uri!));
    const { protectedHeader } = await jwtVerify(tokens.id_token!, jwks, { issuer: op.base, audience: client.clientId, algorithms: ['ES256'] });
    expect(protectedHeader.alg).toBe('ES256');
    const info = await oidc.fetchUserInfo(config, tokens.access_token, alice.id);
    expect(info.email).toBe('alice@example.com');
    expect(tokens.refresh_token).toBeTruthy();
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    // For the app's API: resource=GATEHOUSE_TOKEN_AUDIENCE gives a JWT access token, verifiable with the JWKS.
    const forApi = await oidc.refreshTokenGrant(config, refreshed.refresh_token!, { resource: op.base });
    const at = await jwtVerify(forApi.access_token, jwks, { issuer: op.base, audience: op.base, algorithms: ['ES256'], typ: 'at+jwt' });
    expect(at.payload).toMatchObject({ sub: alice.id, client_id: client.clientId, sid: claims.sid });
    expect(String(at.payload.scope).split(' ')).toContain('email');
    // An app's token is for the app's API: Gatehouse's own API does not take it as the user's session.
    const asGatehouse = await fetch(`${op.base}/api/auth/session`, { headers: { authorization: `Bearer ${forApi.access_token}` } });
    expect(asGatehouse.status).toBe(401);
  });
});
