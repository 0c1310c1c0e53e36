import * as oidc from 'openid-client';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MINUTE } from '../../src/clock.js';
import { CACHE_TTL_MS } from '../../src/tokens/signing-keys.js';
import type { TestUser } from '../helpers/app.js';
import { authorize, browserOf, makeSuperadmin, registerClient, rpConfig, startOpServer, type OpServer } from '../helpers/op.js';

/**
 * SPEC §8: the OpenID Provider signs with the key ring's current key. A rotation publishes the new
 * key at once; ID tokens keep coming from the old key until the activation delay has passed, and
 * tokens signed by the old key still verify afterwards (the old key stays published).
 */
const REDIRECT = 'http://127.0.0.1:9/cb';
let op: OpServer;
let user: TestUser;
let client: { clientId: string; clientSecret: string | null };

beforeAll(async () => {
  op = await startOpServer();
  const admin = await op.gh.signUp('root@gatehouse.test');
  await makeSuperadmin(op.gh, admin);
  user = await op.gh.signUp('rotating@example.com');
  client = await registerClient(op.gh, admin, { name: 'App', redirectUris: [REDIRECT], firstParty: true });
});
afterAll(async () => op?.close());

async function idToken(): Promise<string> {
  const config = await rpConfig(op, client.clientId, client.clientSecret);
  const run = await authorize(browserOf(op, user), config, {}, REDIRECT);
  const tokens = await oidc.authorizationCodeGrant(config, run.callback, { pkceCodeVerifier: run.verifier, expectedState: run.state, expectedNonce: run.nonce });
  return tokens.id_token!;
}

const jwks = async () => (await fetch(`${op.base}/.well-known/jwks.json`)).json() as Promise<{ keys: Array<{ kid: string }> }>;

describe('key rotation while tokens are in flight', () => {
  it('a rotated key is published at once, signs ID tokens only after the delay, and old ID tokens still verify', async () => {
    const before = await idToken();
    const oldKid = decodeProtectedHeader(before).kid!;
    const rotated = await op.gh.services.signingKeys.rotate();
    expect(rotated.state).toBe('pending');

    // Published at once (after this instance's ring cache), still not signing.
    op.gh.clock.advance(CACHE_TTL_MS + 1000);
    expect((await jwks()).keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, rotated.kid]));
    expect(decodeProtectedHeader(await idToken()).kid).toBe(oldKid);

    // After the activation delay the provider signs with the new key.
    op.gh.clock.advance(10 * MINUTE);
    const after = await idToken();
    expect(decodeProtectedHeader(after).kid).toBe(rotated.kid);

    // The old token still verifies against the published set; so does the new one.
    const set = createLocalJWKSet(await jwks());
    await expect(jwtVerify(before, set, { issuer: op.base, audience: client.clientId })).resolves.toBeTruthy();
    await expect(jwtVerify(after, set, { issuer: op.base, audience: client.clientId })).resolves.toBeTruthy();
  });
});
