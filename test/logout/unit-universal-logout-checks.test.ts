import { describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as ul from '../../src/logout/universal-logout/checks.js';
import { UNIVERSAL_LOGOUT_DEFAULTS, type Connection } from '../../src/sso/connections/model.js';
import type { Jwks } from '../../src/sso/oidc/metadata.js';

/** One test per check of src/logout/universal-logout/checks.ts, in its order, each with its own reason. */
const NOW = new Date('2026-06-01T12:00:00Z');
const T = Math.floor(NOW.getTime() / 1000);
const AUD = 'https://gh.example/api/auth/sso/universal-logout';
const X: ul.TokenExpectations = { issuers: ['https://acme.okta.com'], subject: '0oa-client', audience: AUD, now: NOW };

async function reasonOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof ul.UniversalLogoutError) return e.reason;
    throw e;
  }
  return 'passed';
}

const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const fake = (header: unknown, payload: unknown = { iss: 'https://acme.okta.com', sub: '0oa-client' }) => `${b64u(header)}.${b64u(payload)}.sig`;

function connection(over: Partial<Connection> & { oidc?: Connection['oidc']; saml?: Connection['saml'] }): Connection {
  return {
    id: 'c1', organizationId: 'o1', protocol: 'oidc', provider: 'okta', status: 'active', enabled: true, configVersion: 1,
    issuer: 'https://acme.okta.com/oauth2/default',
    oidc: { protocol: 'oidc', issuerUrl: 'https://acme.okta.com/oauth2/default', clientId: '0oa-client', scopes: ['openid'] },
    saml: null, hasSecret: true, secretSealed: null, allowJitProvisioning: true, defaultRole: 'member', allowedDomains: null, allowIdpInitiated: false,
    signOutOfIdp: false, storeIdpTokens: false, universalLogout: UNIVERSAL_LOGOUT_DEFAULTS, lastTest: null, createdAt: '', updatedAt: '', ...over,
  };
}

describe('token checks', () => {
  it('1 readBearer: needs "Bearer <token>"', async () => {
    expect(await reasonOf(() => ul.readBearer(undefined))).toBe('token_missing');
    expect(await reasonOf(() => ul.readBearer('Basic abc'))).toBe('token_missing');
    expect(await reasonOf(() => ul.readBearer('Bearer'))).toBe('token_missing');
    expect(ul.readBearer('bearer a.b.c')).toBe('a.b.c');
  });

  it('2 readHeader: a compact JWS with a JSON header', async () => {
    expect(await reasonOf(() => ul.readHeader('abc'))).toBe('token_malformed');
    expect(await reasonOf(() => ul.readHeader('%%.b.c'))).toBe('token_malformed');
    expect(await reasonOf(() => ul.readHeader('a.b.c.d.e'))).toBe('token_malformed');
    expect(ul.readHeader(fake({ alg: 'RS256' })).alg).toBe('RS256');
  });

  it('3 checkType: global-token-revocation+jwt, case-insensitive, application/ prefix allowed', async () => {
    expect(await reasonOf(() => ul.checkType({ typ: 'global-token-revocation+jwt' }))).toBe('passed');
    expect(await reasonOf(() => ul.checkType({ typ: 'Global-Token-Revocation+JWT' }))).toBe('passed');
    expect(await reasonOf(() => ul.checkType({ typ: 'application/global-token-revocation+jwt' }))).toBe('passed');
    for (const typ of ['JWT', 'logout+jwt', 'xglobal-token-revocation+jwt', undefined]) expect(await reasonOf(() => ul.checkType(typ === undefined ? {} : { typ }))).toBe('typ_invalid');
  });

  it('4 checkAlgorithm: asymmetric only', async () => {
    for (const alg of ['none', 'HS256', 'HS512', 'RSA1_5', undefined]) expect(await reasonOf(() => ul.checkAlgorithm(alg === undefined ? {} : { alg }))).toBe('alg_not_allowed');
    for (const alg of ['RS256', 'ES256', 'PS256', 'EdDSA']) expect(ul.checkAlgorithm({ alg })).toBe(alg);
  });

  it('5 readUnverifiedClaims: a JSON payload with string iss and sub', async () => {
    expect(await reasonOf(() => ul.readUnverifiedClaims('a.bm90IGpzb24.c'))).toBe('token_malformed');
    expect(await reasonOf(() => ul.readUnverifiedClaims(fake({}, { iss: 'x' })))).toBe('token_malformed');
    expect(await reasonOf(() => ul.readUnverifiedClaims(fake({}, { iss: 1, sub: 'y' })))).toBe('token_malformed');
    expect(await reasonOf(() => ul.readUnverifiedClaims(fake({}, [1])))).toBe('token_malformed');
    expect(ul.readUnverifiedClaims(fake({}))).toEqual({ iss: 'https://acme.okta.com', sub: '0oa-client' });
  });

  it('6 selectKey: by kid (refetching once), the only key without kid, never a symmetric or private key', async () => {
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    const k1 = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' };
    const k2 = { ...k1, kid: 'k2' };
    let fetched = 0;
    const jwks = (keys: Jwks['keys']) => async (refresh: boolean) => {
      if (refresh) fetched += 1;
      return { keys, fetchedAt: 0 };
    };
    expect((await ul.selectKey({ kid: 'k2' }, 'RS256', jwks([k1, k2]))).kid).toBe('k2');
    expect(await reasonOf(() => ul.selectKey({ kid: 'k9' }, 'RS256', jwks([k1])))).toBe('unknown_kid');
    expect(fetched).toBe(1);
    expect((await ul.selectKey({}, 'RS256', jwks([k1]))).kid).toBe('k1');
    expect(await reasonOf(() => ul.selectKey({}, 'RS256', jwks([k1, k2])))).toBe('kid_ambiguous');
    expect(await reasonOf(() => ul.selectKey({ kid: 'oct' }, 'RS256', jwks([{ kty: 'oct', k: 'c2VjcmV0', kid: 'oct' }])))).toBe('unknown_kid');
    expect(await reasonOf(() => ul.selectKey({ kid: 'k1' }, 'ES256', jwks([k1])))).toBe('unknown_kid');
  });

  it('7 verifySignature: the signature must verify with the selected key', async () => {
    const a = await generateKeyPair('RS256', { extractable: true });
    const b = await generateKeyPair('RS256', { extractable: true });
    const token = await new SignJWT({ iss: 'x', sub: 'y' }).setProtectedHeader({ alg: 'RS256' }).sign(a.privateKey);
    expect(await ul.verifySignature(token, await exportJWK(a.publicKey), 'RS256')).toMatchObject({ iss: 'x' });
    const other = await exportJWK(b.publicKey);
    expect(await reasonOf(() => ul.verifySignature(token, other, 'RS256'))).toBe('signature_invalid');
    const [h, p] = token.split('.');
    expect(await reasonOf(() => ul.verifySignature(`${h}.${p}.${'A'.repeat(342)}`, other, 'RS256'))).toBe('signature_invalid');
  });

  it('8 checkIssuer: one of the expected issuers (a trailing slash is no difference)', async () => {
    expect(await reasonOf(() => ul.checkIssuer({ iss: 'https://acme.okta.com/' }, X))).toBe('passed');
    for (const iss of ['https://acme.okta.com.evil.test', 'https://acme.okta.com/oauth2/default', undefined]) expect(await reasonOf(() => ul.checkIssuer({ iss }, X))).toBe('issuer_mismatch');
  });

  it('9 checkSubject: exactly the expected subject', async () => {
    expect(await reasonOf(() => ul.checkSubject({ sub: '0oa-client' }, X))).toBe('passed');
    for (const sub of ['0oa-client2', '0OA-CLIENT', '', undefined]) expect(await reasonOf(() => ul.checkSubject({ sub }, X))).toBe('subject_mismatch');
  });

  it('10 checkAudience: exactly this endpoint, never a prefix or suffix', async () => {
    expect(await reasonOf(() => ul.checkAudience({ aud: AUD }, X))).toBe('passed');
    expect(await reasonOf(() => ul.checkAudience({ aud: [AUD, 'https://other'] }, X))).toBe('passed');
    for (const aud of [`${AUD}/`, `${AUD}x`, AUD.slice(0, -1), 'https://gh.example', [], [1], undefined, AUD.toUpperCase()]) expect(await reasonOf(() => ul.checkAudience({ aud }, X))).toBe('audience_mismatch');
  });

  it('11 checkTimes: exp, nbf and iat with 60 s of skew', async () => {
    expect(await reasonOf(() => ul.checkTimes({ iat: T, exp: T + 300 }, X))).toBe('passed');
    expect(await reasonOf(() => ul.checkTimes({ iat: T - 400, exp: T - 59 }, X))).toBe('passed');
    expect(await reasonOf(() => ul.checkTimes({ iat: T - 400, exp: T - 60 }, X))).toBe('expired');
    expect(await reasonOf(() => ul.checkTimes({ iat: T, exp: T + 300, nbf: T + 60 }, X))).toBe('passed');
    expect(await reasonOf(() => ul.checkTimes({ iat: T, exp: T + 300, nbf: T + 61 }, X))).toBe('not_yet_valid');
    expect(await reasonOf(() => ul.checkTimes({ iat: T, exp: T + 300, nbf: 'soon' }, X))).toBe('not_yet_valid');
    expect(await reasonOf(() => ul.checkTimes({ iat: T + 61, exp: T + 300 }, X))).toBe('iat_invalid');
    expect(await reasonOf(() => ul.checkTimes({ exp: T + 300 }, X))).toBe('times_missing');
    expect(await reasonOf(() => ul.checkTimes({ iat: T, exp: String(T + 300) }, X))).toBe('times_missing');
  });

  it('12 checkLifetime: at most 10 minutes from iat to exp', async () => {
    expect(await reasonOf(() => ul.checkLifetime({ iat: T, exp: T + 600 }))).toBe('passed');
    expect(await reasonOf(() => ul.checkLifetime({ iat: T, exp: T + 601 }))).toBe('lifetime_too_long');
  });

  it('13 checkJti: present', async () => {
    expect(await reasonOf(() => ul.checkJti({ jti: 'x' }))).toBe('passed');
    for (const jti of ['', 1, undefined, 'x'.repeat(513)]) expect(await reasonOf(() => ul.checkJti({ jti }))).toBe('jti_missing');
  });

  it('the replay key is per issuer and jti, and lives until exp plus the skew', () => {
    const claims = { iss: 'https://acme.okta.com', sub: 's', exp: T + 300, iat: T, jti: 'j1' };
    expect(ul.replayKeyOf(claims)).toBe('ul:https://acme.okta.com:j1');
    expect(ul.replayUntil(claims)).toBe(new Date((T + 360) * 1000).toISOString());
  });
});

describe('14 readSubject', () => {
  it('reads sub_id or subject in email or iss_sub format', () => {
    expect(ul.readSubject({ sub_id: { format: 'email', email: 'a@b.test' } })).toEqual({ format: 'email', email: 'a@b.test' });
    expect(ul.readSubject({ subject: { format: 'iss_sub', iss: 'https://i', sub: 's' } })).toEqual({ format: 'iss_sub', iss: 'https://i', sub: 's' });
  });
  it('refuses another format as format_unsupported, anything else as body_invalid', async () => {
    expect(await reasonOf(() => ul.readSubject({ sub_id: { format: 'opaque', id: 'x' } }))).toBe('format_unsupported');
    for (const body of [undefined, null, [], {}, { sub_id: {} }, { sub_id: 'x' }, { sub_id: { format: 'email', email: 'a@b.test' }, extra: 1 }, { sub_id: { format: 'email', email: 'not-an-email' } }, { sub_id: { format: 'email', email: 'a@b.test', x: 1 } }, { sub_id: { format: 'iss_sub', iss: 'i' } }]) {
      expect(await reasonOf(() => ul.readSubject(body))).toBe('body_invalid');
    }
  });
});

describe('expected iss and sub of a connection', () => {
  it('Okta OIDC: the issuer URL or its origin (the org authorization server), and the client id', () => {
    const c = connection({});
    expect(ul.expectedIssuers(c)).toEqual(['https://acme.okta.com/oauth2/default', 'https://acme.okta.com']);
    expect(ul.expectedSubject(c)).toBe('0oa-client');
    expect(ul.isCandidate(c, { iss: 'https://acme.okta.com', sub: '0oa-client' })).toBe(true);
    expect(ul.isCandidate(c, { iss: 'https://acme.okta.com', sub: 'other' })).toBe(false);
  });
  it('another OIDC provider: only the issuer URL', () => {
    expect(ul.expectedIssuers(connection({ provider: 'oidc' }))).toEqual(['https://acme.okta.com/oauth2/default']);
  });
  it('configured issuer and subject override', () => {
    const c = connection({ universalLogout: { enabled: true, issuer: 'https://corp.okta.com', subject: '0oa-app' } });
    expect(ul.expectedIssuers(c)).toEqual(['https://corp.okta.com']);
    expect(ul.expectedSubject(c)).toBe('0oa-app');
  });
  it('SAML: nothing unless configured', () => {
    const saml = connection({ protocol: 'saml', oidc: null, issuer: 'http://www.okta.com/exk1' });
    expect(ul.expectedIssuers(saml)).toEqual([]);
    expect(ul.expectedSubject(saml)).toBeNull();
    expect(ul.isCandidate({ ...saml, universalLogout: { enabled: true, issuer: 'https://acme.okta.com', subject: null } }, { iss: 'https://acme.okta.com', sub: '' })).toBe(false);
    expect(ul.isCandidate({ ...saml, universalLogout: { enabled: true, issuer: 'https://acme.okta.com', subject: '0oa-saml' } }, { iss: 'https://acme.okta.com', sub: '0oa-saml' })).toBe(true);
  });
  it('disabled connection or Universal Logout off: never a candidate', () => {
    const claims = { iss: 'https://acme.okta.com', sub: '0oa-client' };
    expect(ul.isCandidate(connection({ enabled: false }), claims)).toBe(false);
    expect(ul.isCandidate(connection({ universalLogout: { enabled: false, issuer: null, subject: null } }), claims)).toBe(false);
    expect(ul.isCandidate(connection({ status: 'replaced' }), claims)).toBe(false);
  });
});

describe('docs/universal-logout.md', () => {
  it('explains every refusal reason of the registry', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync(new URL('../../docs/universal-logout.md', import.meta.url), 'utf8');
    const missing = Object.keys(ul.UNIVERSAL_LOGOUT_REASONS).filter((r) => !doc.includes(`| \`${r}\` |`));
    expect(missing).toEqual([]);
  });
});
