import { decodeProtectedHeader, type JWK, type ProtectedHeaderParameters } from 'jose';
import { isTemplatedIssuer, TENANT_TEMPLATE } from '../connections/model.js';
import { SsoLoginError, type SsoFailureReason } from '../errors.js';
import type { Jwks } from './metadata.js';
import { chooseKey, verifyJsonJws } from './jws.js';

/**
 * ID token verification (SPEC §4.4, OIDC Core §3.1.3.7), one named check per rule, run in order.
 * We verify the signature ourselves: openid-client v6 skips it for tokens from the token endpoint
 * unless told otherwise (DESIGN.md, library traps).
 */
export const ALLOWED_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export const CLOCK_SKEW_S = 60;

export interface IdTokenExpectations {
  issuer: string; // may hold Entra's {tenantid}
  /** With a templated issuer: the only tenants (lower-case GUIDs) whose tokens are accepted; null or empty accepts none. */
  allowedTenants: string[] | null;
  clientId: string;
  nonce: string;
  now: Date;
  /** Returns the JWKS; with refresh=true, refetched (at most once a minute per issuer). */
  loadJwks(refresh: boolean): Promise<Jwks>;
}

export type IdTokenClaims = Record<string, unknown> & { iss: string; sub: string; aud: string | string[]; exp: number; iat: number };

const fail = (reason: SsoFailureReason, message: string) => new SsoLoginError(reason, message);

export function readHeader(token: string): ProtectedHeaderParameters {
  try {
    return decodeProtectedHeader(token);
  } catch {
    throw fail('id_token_malformed', 'The IdP returned an ID token that is not a JWT');
  }
}

export function checkAlgorithm(header: ProtectedHeaderParameters): string {
  const alg = header.alg ?? 'none';
  if (!(ALLOWED_ALGS as readonly string[]).includes(alg)) {
    throw fail('alg_not_allowed', `The ID token is signed with "${alg}"; only asymmetric signatures (RS256, ES256, …) are accepted. Configure the IdP application to sign ID tokens with RS256.`);
  }
  return alg;
}

/** Pick the verification key: by kid (refetching the JWKS once), or the only key when there is no kid. */
export async function selectKey(header: ProtectedHeaderParameters, alg: string, expect: IdTokenExpectations): Promise<JWK> {
  const choice = await chooseKey(header, alg, (refresh) => expect.loadJwks(refresh));
  if ('key' in choice) return choice.key;
  if (choice.refusal === 'unknown_kid') throw fail('unknown_kid', `The ID token was signed with key "${header.kid}", which the IdP's JWKS does not publish`);
  throw fail('kid_ambiguous', choice.published === 0 ? 'The IdP publishes no key that can verify this ID token' : 'The ID token names no key ("kid") and the IdP publishes several; it cannot be verified (OIDC Core §10.1)');
}

export async function verifySignature(token: string, key: JWK, alg: string): Promise<Record<string, unknown>> {
  const verified = await verifyJsonJws(token, key, alg);
  if ('claims' in verified) return verified.claims;
  if (verified.refusal === 'signature_invalid') throw fail('signature_invalid', 'The ID token signature does not verify against the IdP’s published keys');
  throw fail('id_token_malformed', 'The ID token payload is not a JSON object');
}

/** Entra ID announces `…/{tenantid}/v2.0`: the expected issuer is that template filled with the token's `tid`. */
export function expectedIssuer(configured: string, claims: Record<string, unknown>): string | null {
  if (!isTemplatedIssuer(configured)) return configured;
  const tid = claims.tid;
  return typeof tid === 'string' && /^[A-Za-z0-9-]{1,64}$/.test(tid) ? configured.replace(TENANT_TEMPLATE, tid) : null;
}

/**
 * The issuer values a connection accepts: its issuer, or — for a templated (multi-tenant) one —
 * the template filled with each allowed tenant, never with a tenant the token names itself.
 */
export function acceptedIssuers(issuer: string, allowedTenants: string[] | null): (candidate: string) => boolean {
  if (!isTemplatedIssuer(issuer)) return (candidate) => candidate === issuer;
  const set = new Set((allowedTenants ?? []).map((t) => issuer.replace(TENANT_TEMPLATE, t.toLowerCase())));
  return (candidate) => set.has(candidate); // exact, as RFC 9207 §2.4 compares
}

export function checkIssuer(claims: Record<string, unknown>, expect: IdTokenExpectations) {
  const wanted = expectedIssuer(expect.issuer, claims);
  if (!wanted || claims.iss !== wanted) {
    throw fail('issuer_mismatch', `The ID token was issued by "${String(claims.iss)}", not by the configured issuer "${wanted ?? expect.issuer}"`);
  }
}

/**
 * SPEC §12: a multi-tenant issuer template is filled from the token's own `tid`, so any Entra
 * tenant — the attacker's own included — would pass checkIssuer. Only the tenants the owner
 * listed in `allowedTenants` do.
 */
export function checkTenant(claims: Record<string, unknown>, expect: IdTokenExpectations) {
  if (!isTemplatedIssuer(expect.issuer)) return;
  const tenants = expect.allowedTenants ?? [];
  if (tenants.length === 0) {
    throw fail('issuer_mismatch', 'This connection uses a multi-tenant issuer but lists no allowedTenants, so no tenant is trusted: the owner must set allowedTenants in the SSO settings');
  }
  const tid = typeof claims.tid === 'string' ? claims.tid.toLowerCase() : null;
  if (!tid || !tenants.includes(tid)) {
    throw fail('issuer_mismatch', `The ID token comes from tenant "${String(claims.tid).slice(0, 64)}", which is not among this connection's allowedTenants`);
  }
}

export function checkAudience(claims: Record<string, unknown>, expect: IdTokenExpectations) {
  const aud = claims.aud;
  const list = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!list.includes(expect.clientId)) {
    throw fail('audience_mismatch', `The ID token is meant for "${list.join(', ')}", not for this connection's client ID "${expect.clientId}"`);
  }
  if (list.length > 1 && claims.azp !== undefined && claims.azp !== expect.clientId) {
    throw fail('audience_mismatch', 'The ID token was issued to another authorized party (azp)');
  }
}

export function checkExpiry(claims: Record<string, unknown>, expect: IdTokenExpectations) {
  const now = Math.floor(expect.now.getTime() / 1000);
  if (typeof claims.exp !== 'number' || now > claims.exp + CLOCK_SKEW_S) {
    throw fail('token_expired', 'The ID token has expired. If this repeats, check that the clocks of Gatehouse and the IdP are correct.');
  }
}

export function checkIssuedAt(claims: Record<string, unknown>, expect: IdTokenExpectations) {
  const now = Math.floor(expect.now.getTime() / 1000);
  if (typeof claims.iat !== 'number') throw fail('iat_invalid', 'The ID token has no issue time (iat)');
  if (claims.iat > now + CLOCK_SKEW_S) throw fail('iat_invalid', 'The ID token was issued in the future: check the clocks of Gatehouse and the IdP');
}

export function checkNonce(claims: Record<string, unknown>, expect: IdTokenExpectations) {
  if (typeof claims.nonce !== 'string' || claims.nonce !== expect.nonce) {
    throw fail('nonce_mismatch', 'The ID token does not carry the nonce of this sign-in (possible replay)');
  }
}

export function checkSubject(claims: Record<string, unknown>) {
  if (typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub.length > 255) {
    throw fail('sub_missing', 'The ID token has no subject (sub)');
  }
}

/** Every check, in order. Returns the verified claims. */
export async function verifyIdToken(token: string, expect: IdTokenExpectations): Promise<IdTokenClaims> {
  const header = readHeader(token);
  const alg = checkAlgorithm(header);
  const key = await selectKey(header, alg, expect);
  const claims = await verifySignature(token, key, alg);
  checkIssuer(claims, expect);
  checkTenant(claims, expect);
  checkAudience(claims, expect);
  checkExpiry(claims, expect);
  checkIssuedAt(claims, expect);
  checkNonce(claims, expect);
  checkSubject(claims);
  return claims as IdTokenClaims;
}
