import { generateKeyPairSync } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import * as checks from '../../src/logout/backchannel/checks.js';
import { issuerTemplateOf } from '../../src/logout/backchannel/service.js';
import type { Jwks } from '../../src/sso/oidc/metadata.js';

/** Each logout-token check of src/logout/backchannel/checks.ts on its own, with its own reason. */
const NOW = new Date('2026-06-01T12:00:00Z');
const NOW_S = Math.floor(NOW.getTime() / 1000);
const X: checks.LogoutTokenExpectations = { issuer: 'https://idp.example', allowedTenants: null, clientId: 'client-1', now: NOW };

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof checks.LogoutTokenError) return e.reason;
    throw e;
  }
  return 'passed';
}
async function asyncReasonOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof checks.LogoutTokenError) return e.reason;
    throw e;
  }
  return 'passed';
}

function rsaKey(kid: string): { priv: JWK; pub: JWK } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { priv: { ...(privateKey.export({ format: 'jwk' }) as JWK), kid, alg: 'RS256' }, pub: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg: 'RS256', use: 'sig' } };
}
const jwks = (...keys: JWK[]): Jwks => ({ keys, fetchedAt: 0 });

describe('reading the token', () => {
  it('1 refuses a missing logout_token', () => {
    expect(reasonOf(() => checks.checkPresent(undefined))).toBe('malformed');
    expect(reasonOf(() => checks.checkPresent(''))).toBe('malformed');
    expect(checks.checkPresent('a.b.c')).toBe('a.b.c');
  });

  it('2 refuses what is not a compact JWS with JSON header and payload', () => {
    expect(reasonOf(() => checks.readToken('not-a-jwt'))).toBe('malformed');
    expect(reasonOf(() => checks.readToken('a.b.c.d.e'))).toBe('malformed'); // JWE: Gatehouse registers no encryption key
    expect(reasonOf(() => checks.readToken('%%%.%%%.sig'))).toBe('malformed');
    const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    expect(checks.readToken(`${part({ alg: 'RS256' })}.${part({ iss: 'x' })}.sig`).unverified.iss).toBe('x');
  });

  it('3 accepts typ logout+jwt (or its media-type form) or none, refuses any other typ', () => {
    expect(reasonOf(() => checks.checkType({ alg: 'RS256' }))).toBe('passed');
    expect(reasonOf(() => checks.checkType({ alg: 'RS256', typ: 'logout+jwt' }))).toBe('passed');
    expect(reasonOf(() => checks.checkType({ alg: 'RS256', typ: 'application/logout+jwt' }))).toBe('passed');
    expect(reasonOf(() => checks.checkType({ alg: 'RS256', typ: 'JWT' }))).toBe('typ_invalid');
    expect(reasonOf(() => checks.checkType({ alg: 'RS256', typ: 'at+jwt' }))).toBe('typ_invalid');
  });

  it('4 accepts asymmetric algorithms only: never none, never HS*', () => {
    expect(checks.checkAlgorithm({ alg: 'RS256' })).toBe('RS256');
    expect(checks.checkAlgorithm({ alg: 'ES256' })).toBe('ES256');
    for (const alg of ['none', 'HS256', 'HS384', 'HS512', 'RS1', undefined]) expect(reasonOf(() => checks.checkAlgorithm(alg === undefined ? {} : { alg }))).toBe('alg_not_allowed');
  });

  it('5b accepts only an algorithm the IdP lists in discovery, when it lists any', () => {
    expect(reasonOf(() => checks.checkAlgorithmOfIdp('RS256', ['RS256', 'ES256']))).toBe('passed');
    expect(reasonOf(() => checks.checkAlgorithmOfIdp('PS256', undefined))).toBe('passed');
    expect(reasonOf(() => checks.checkAlgorithmOfIdp('ES512', ['RS256']))).toBe('alg_not_allowed');
  });

  it('reads aud as a string or an array of strings', () => {
    expect(checks.audiences('a')).toEqual(['a']);
    expect(checks.audiences(['a', 7, 'b'])).toEqual(['a', 'b']);
    expect(checks.audiences(undefined)).toEqual([]);
  });
});

describe('the signature', () => {
  it('6 picks the key by kid, refetching the JWKS once on a miss, and refuses an unknown kid', async () => {
    const k = rsaKey('k1');
    const loads: boolean[] = [];
    const load = (sets: Jwks[]) => async (refresh: boolean) => {
      loads.push(refresh);
      return sets[loads.length - 1] ?? sets[sets.length - 1]!;
    };
    expect((await checks.selectKey({ alg: 'RS256', kid: 'k1' }, 'RS256', load([jwks(k.pub)]))).kid).toBe('k1');
    loads.length = 0;
    expect((await checks.selectKey({ alg: 'RS256', kid: 'k1' }, 'RS256', load([jwks(), jwks(k.pub)]))).kid).toBe('k1');
    expect(loads).toEqual([false, true]);
    expect(await asyncReasonOf(() => checks.selectKey({ alg: 'RS256', kid: 'other' }, 'RS256', load([jwks(k.pub)])))).toBe('unknown_kid');
  });

  it('6 without a kid takes the only fitting key, refuses when several fit', async () => {
    const a = rsaKey('a');
    const b = rsaKey('b');
    expect((await checks.selectKey({ alg: 'RS256' }, 'RS256', async () => jwks(a.pub))).kid).toBe('a');
    expect(await asyncReasonOf(() => checks.selectKey({ alg: 'RS256' }, 'RS256', async () => jwks(a.pub, b.pub)))).toBe('kid_ambiguous');
    // A private key published by mistake, or a key for another algorithm, never fits.
    expect(await asyncReasonOf(() => checks.selectKey({ alg: 'RS256' }, 'RS256', async () => jwks(a.priv)))).toBe('kid_ambiguous');
    expect(await asyncReasonOf(() => checks.selectKey({ alg: 'ES256' }, 'ES256', async () => jwks(a.pub)))).toBe('kid_ambiguous');
  });

  it('7 verifies the signature with the selected key', async () => {
    const k = rsaKey('k1');
    const other = rsaKey('k1');
    const token = await new SignJWT({ iss: 'x' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(await importJWK(k.priv, 'RS256'));
    expect((await checks.verifySignature(token, k.pub, 'RS256')).iss).toBe('x');
    expect(await asyncReasonOf(() => checks.verifySignature(token, other.pub, 'RS256'))).toBe('signature_invalid');
  });
});

describe('the claims', () => {
  it('8 wants iss exactly the issuer (no trailing-slash or prefix games)', () => {
    expect(reasonOf(() => checks.checkIssuer({ iss: 'https://idp.example' }, X))).toBe('passed');
    expect(reasonOf(() => checks.checkIssuer({ iss: 'https://idp.example/' }, X))).toBe('issuer_mismatch');
    expect(reasonOf(() => checks.checkIssuer({ iss: 'https://idp.example.evil' }, X))).toBe('issuer_mismatch');
    expect(reasonOf(() => checks.checkIssuer({}, X))).toBe('issuer_mismatch');
  });

  it('8 with an Entra template accepts only the allowed tenants', () => {
    const tenant = '11111111-2222-3333-4444-555555555555';
    const entra = { ...X, issuer: 'https://login.microsoftonline.com/{tenantid}/v2.0', allowedTenants: [tenant] };
    expect(reasonOf(() => checks.checkIssuer({ iss: `https://login.microsoftonline.com/${tenant}/v2.0` }, entra))).toBe('passed');
    expect(reasonOf(() => checks.checkIssuer({ iss: 'https://login.microsoftonline.com/99999999-2222-3333-4444-555555555555/v2.0' }, entra))).toBe('issuer_mismatch');
    expect(reasonOf(() => checks.checkIssuer({ iss: `https://login.microsoftonline.com/${tenant}/v2.0` }, { ...entra, allowedTenants: null }))).toBe('issuer_mismatch');
    expect(issuerTemplateOf(`https://login.microsoftonline.com/${tenant}/v2.0`)).toBe('https://login.microsoftonline.com/{tenantid}/v2.0');
    expect(issuerTemplateOf('https://idp.example')).toBeNull();
  });

  it('9 wants the client id in aud (string or array), exactly', () => {
    expect(reasonOf(() => checks.checkAudience({ aud: 'client-1' }, X))).toBe('passed');
    expect(reasonOf(() => checks.checkAudience({ aud: ['x', 'client-1'] }, X))).toBe('passed');
    expect(reasonOf(() => checks.checkAudience({ aud: 'client-10' }, X))).toBe('audience_mismatch');
    expect(reasonOf(() => checks.checkAudience({}, X))).toBe('audience_mismatch');
  });

  it('10 wants iat, not in the future beyond 60 s', () => {
    expect(reasonOf(() => checks.checkIssuedAt({ iat: NOW_S }, X))).toBe('passed');
    expect(reasonOf(() => checks.checkIssuedAt({ iat: NOW_S + 60 }, X))).toBe('passed');
    expect(reasonOf(() => checks.checkIssuedAt({ iat: NOW_S + 61 }, X))).toBe('iat_invalid');
    expect(reasonOf(() => checks.checkIssuedAt({ iat: String(NOW_S) }, X))).toBe('iat_invalid');
    expect(reasonOf(() => checks.checkIssuedAt({}, X))).toBe('iat_invalid');
  });

  it('11 wants exp, not passed beyond 60 s', () => {
    expect(reasonOf(() => checks.checkExpiry({ exp: NOW_S }, X))).toBe('passed');
    expect(reasonOf(() => checks.checkExpiry({ exp: NOW_S - 60 }, X))).toBe('passed');
    expect(reasonOf(() => checks.checkExpiry({ exp: NOW_S - 61 }, X))).toBe('expired');
    expect(reasonOf(() => checks.checkExpiry({}, X))).toBe('expired');
  });

  it('12 wants events with the back-channel logout member, an object', () => {
    expect(reasonOf(() => checks.checkEvents({ events: { [checks.BACKCHANNEL_LOGOUT_EVENT]: {} } }))).toBe('passed');
    expect(reasonOf(() => checks.checkEvents({ events: { [checks.BACKCHANNEL_LOGOUT_EVENT]: {}, 'urn:other': {} } }))).toBe('passed');
    expect(reasonOf(() => checks.checkEvents({}))).toBe('events_invalid');
    expect(reasonOf(() => checks.checkEvents({ events: [checks.BACKCHANNEL_LOGOUT_EVENT] }))).toBe('events_invalid');
    expect(reasonOf(() => checks.checkEvents({ events: { 'urn:other': {} } }))).toBe('events_invalid');
    expect(reasonOf(() => checks.checkEvents({ events: { [checks.BACKCHANNEL_LOGOUT_EVENT]: true } }))).toBe('events_invalid');
    expect(reasonOf(() => checks.checkEvents({ events: { [checks.BACKCHANNEL_LOGOUT_EVENT]: null } }))).toBe('events_invalid');
  });

  it('13 refuses a nonce, whatever its value', () => {
    expect(reasonOf(() => checks.checkNoNonce({}))).toBe('passed');
    expect(reasonOf(() => checks.checkNoNonce({ nonce: 'n' }))).toBe('nonce_present');
    expect(reasonOf(() => checks.checkNoNonce({ nonce: null }))).toBe('nonce_present');
  });

  it('14 wants sub and/or sid, each a non-empty string', () => {
    expect(checks.checkSubjectOrSession({ sub: 's' })).toEqual({ sub: 's', sid: null });
    expect(checks.checkSubjectOrSession({ sid: 'x' })).toEqual({ sub: null, sid: 'x' });
    expect(checks.checkSubjectOrSession({ sub: 's', sid: 'x' })).toEqual({ sub: 's', sid: 'x' });
    expect(reasonOf(() => checks.checkSubjectOrSession({}))).toBe('sub_and_sid_missing');
    expect(reasonOf(() => checks.checkSubjectOrSession({ sid: '' }))).toBe('sub_and_sid_missing');
    expect(reasonOf(() => checks.checkSubjectOrSession({ sub: 5 }))).toBe('sub_and_sid_missing');
  });

  it('15 wants a jti', () => {
    expect(checks.checkJti({ jti: 'j' })).toBe('j');
    expect(reasonOf(() => checks.checkJti({}))).toBe('jti_missing');
    expect(reasonOf(() => checks.checkJti({ jti: 'x'.repeat(256) }))).toBe('jti_missing');
  });

  it('every refusal word has its meaning in the registry', () => {
    expect(Object.keys(checks.LOGOUT_TOKEN_REFUSALS).length).toBeGreaterThan(10);
    const e = new checks.LogoutTokenError('replayed', 'm');
    expect(e.status).toBe(400);
    expect(e.details).toEqual({ reason: 'replayed' });
  });
});
