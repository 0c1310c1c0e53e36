import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, type CryptoKey } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestUser } from '../helpers/app.js';
import { authorize, browserOf, makeSuperadmin, oauthError, registerClient, rpConfig, startOpServer, tokenRequest, userinfoStatus, type OpServer } from '../helpers/op.js';

/**
 * The same end-to-end flow for every way a client authenticates at the token endpoint (SPEC §8):
 * discovery, code + PKCE, the ID token verified with jose against the published JWKS, UserInfo,
 * refresh with rotation, introspection (RFC 7662) and revocation (RFC 7009).
 */

const REDIRECT = 'http://127.0.0.1:9/cb';
const OFFLINE = { scope: 'openid email profile offline_access', prompt: 'consent' };

type Method = 'client_secret_basic' | 'client_secret_post' | 'none' | 'private_key_jwt';

describe('OpenID Provider clients, one flow per token endpoint authentication method', () => {
  let op: OpServer;
  let admin: TestUser;
  let n = 0;

  beforeAll(async () => {
    op = await startOpServer();
    admin = await op.gh.signUp('root@gatehouse.test');
    await makeSuperadmin(op.gh, admin);
  });
  afterAll(async () => op?.close());

  /** Register a client of `method` and build openid-client's configuration for it. */
  async function clientFor(method: Method): Promise<{ clientId: string; clientSecret: string | null; config: oidc.Configuration }> {
    const body: Record<string, unknown> = { name: `App ${method}`, redirectUris: [REDIRECT], firstParty: true, tokenEndpointAuthMethod: method };
    let privateKey: CryptoKey | undefined;
    if (method === 'private_key_jwt') {
      const pair = await generateKeyPair('ES256');
      privateKey = pair.privateKey;
      body.jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'app-key-1', alg: 'ES256', use: 'sig' }] };
    }
    const { clientId, clientSecret } = await registerClient(op.gh, admin, body);
    if (method === 'none' || method === 'private_key_jwt') expect(clientSecret).toBeNull();
    else expect(clientSecret).toMatch(/^gcs_/);
    const auth =
      method === 'client_secret_basic' ? oidc.ClientSecretBasic(clientSecret!)
      : method === 'client_secret_post' ? oidc.ClientSecretPost(clientSecret!)
      : method === 'none' ? oidc.None()
      : oidc.PrivateKeyJwt(privateKey!, { [oidc.modifyAssertion]: (header) => void (header.kid = 'app-key-1') });
    return { clientId, clientSecret, config: await rpConfig(op, clientId, clientSecret, auth) };
  }

  it('the clients API defaults to both grants, so offline_access can be asked for', async () => {
    const res = await op.gh.request('POST', '/api/admin/clients', { as: admin, body: { name: 'Defaults', redirectUris: [REDIRECT] } });
    expect(res.status).toBe(201);
    const got = await op.gh.request('GET', `/api/admin/clients/${res.body.data.clientId}`, { as: admin });
    expect(got.body.data).toMatchObject({ tokenEndpointAuthMethod: 'client_secret_basic', grantTypes: ['authorization_code', 'refresh_token'] });
  });

  it('a client without the refresh_token grant gets no refresh token, even asking for offline_access', async () => {
    const { clientId, clientSecret } = await registerClient(op.gh, admin, { name: 'No refresh', redirectUris: [REDIRECT], firstParty: true, grantTypes: ['authorization_code'] });
    const config = await rpConfig(op, clientId, clientSecret);
    const user = await op.gh.signUp(`user${++n}@example.com`);
    const flow = await authorize(browserOf(op, user), config, OFFLINE, REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce });
    expect(tokens.access_token).toBeTruthy();
    expect(tokens.refresh_token).toBeUndefined();
  });

  it('a client with the refresh_token grant gets none without offline_access', async () => {
    const { config } = await clientFor('client_secret_basic');
    const user = await op.gh.signUp(`user${++n}@example.com`);
    const flow = await authorize(browserOf(op, user), config, { scope: 'openid email' }, REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce });
    expect(tokens.refresh_token).toBeUndefined();
  });

  const METHODS: Method[] = ['client_secret_basic', 'client_secret_post', 'none', 'private_key_jwt'];
  it.each(METHODS)('%s: discovery, code + PKCE, verified ID token, UserInfo, refresh, introspection, revocation', async (method) => {
    const { clientId, config } = await clientFor(method);
    expect(config.serverMetadata().token_endpoint_auth_methods_supported).toContain(method);
    const user = await op.gh.signUp(`user${++n}@example.com`, undefined, `User ${n}`);

    const { callback, verifier, state, nonce } = await authorize(browserOf(op, user), config, OFFLINE, REDIRECT);
    expect(callback.searchParams.get('iss')).toBe(op.base);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true });
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.refresh_token).toBeTruthy();

    // The ID token's signature, checked by jose against the JWKS (openid-client does not check it).
    const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
    const { payload, protectedHeader } = await jwtVerify(tokens.id_token!, jwks, { issuer: op.base, audience: clientId, algorithms: ['ES256'] });
    expect(protectedHeader.kid).toBeTruthy();
    expect(payload).toMatchObject({ sub: user.id, email: user.email, nonce });
    expect(payload.sid).toBe((await op.gh.request('GET', '/api/auth/session', { as: user })).body.data.session.id);

    const info = await oidc.fetchUserInfo(config, tokens.access_token, user.id);
    expect(info).toMatchObject({ sub: user.id, email: user.email, name: `User ${n}` });

    const active = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(active).toMatchObject({ active: true, client_id: clientId, sub: user.id });
    expect(await oidc.tokenIntrospection(config, tokens.refresh_token!)).toMatchObject({ active: true, client_id: clientId });

    // Refresh rotates the refresh token; the new ID token verifies too.
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    await jwtVerify(refreshed.id_token!, jwks, { issuer: op.base, audience: clientId, algorithms: ['ES256'] });
    expect(await userinfoStatus(op, refreshed.access_token)).toBe(200);

    // Revocation (RFC 7009): the refresh token and the access token stop working.
    await oidc.tokenRevocation(config, refreshed.refresh_token!);
    expect((await oidc.tokenIntrospection(config, refreshed.refresh_token!)).active).toBe(false);
    expect(await oauthError(oidc.refreshTokenGrant(config, refreshed.refresh_token!))).toBe('invalid_grant');
    await oidc.tokenRevocation(config, refreshed.access_token);
    expect((await oidc.tokenIntrospection(config, refreshed.access_token)).active).toBe(false);
    expect(await userinfoStatus(op, refreshed.access_token)).toBe(401);
  });

  it.each(['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const)('a %s client that does not authenticate is refused (invalid_client)', async (method) => {
    const { clientId, config } = await clientFor(method);
    const user = await op.gh.signUp(`user${++n}@example.com`);
    const { callback, verifier } = await authorize(browserOf(op, user), config, {}, REDIRECT);
    const res = await tokenRequest(op, { grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier, client_id: clientId });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('a private_key_jwt assertion signed with another key is refused (invalid_client)', async () => {
    const { clientId, config } = await clientFor('private_key_jwt');
    const { privateKey: stranger } = await generateKeyPair('ES256');
    const forged = await rpConfig(op, clientId, null, oidc.PrivateKeyJwt(stranger, { [oidc.modifyAssertion]: (header) => void (header.kid = 'app-key-1') }));
    const user = await op.gh.signUp(`user${++n}@example.com`);
    const flow = await authorize(browserOf(op, user), config, {}, REDIRECT);
    expect(await oauthError(oidc.authorizationCodeGrant(forged, flow.callback, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce }))).toBe('invalid_client');
    // The genuine key still redeems the code the forged assertion could not.
    const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce });
    expect(tokens.access_token).toBeTruthy();
  });

  it("another client cannot revoke an app's tokens", async () => {
    const a = await clientFor('client_secret_basic');
    const b = await clientFor('client_secret_post');
    const user = await op.gh.signUp(`user${++n}@example.com`);
    const flow = await authorize(browserOf(op, user), a.config, OFFLINE, REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(a.config, flow.callback, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce });
    for (const token of [tokens.refresh_token!, tokens.access_token]) {
      expect(await oauthError(oidc.tokenRevocation(b.config, token))).toBe('invalid_request');
    }
    expect(await userinfoStatus(op, tokens.access_token)).toBe(200);
    expect((await oidc.refreshTokenGrant(a.config, tokens.refresh_token!)).access_token).toBeTruthy();
  });

  it("another client cannot introspect an app's tokens (it learns neither the user nor the scopes)", async () => {
    const a = await clientFor('client_secret_basic');
    const b = await clientFor('client_secret_post');
    const user = await op.gh.signUp(`user${++n}@example.com`);
    const flow = await authorize(browserOf(op, user), a.config, OFFLINE, REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(a.config, flow.callback, { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce });
    for (const token of [tokens.refresh_token!, tokens.access_token]) {
      const seen = await oidc.tokenIntrospection(b.config, token);
      expect(seen).toEqual({ active: false });
      expect((await oidc.tokenIntrospection(a.config, token)).active).toBe(true);
    }
  });
});
