import { decodeJwt, decodeProtectedHeader, type JWK, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { AppError } from '../../http/errors.js';
import { ALLOWED_ALGS, acceptedIssuers } from '../../sso/oidc/id-token.js';
import type { Jwks } from '../../sso/oidc/metadata.js';
import { chooseKey, verifyJsonJws } from '../../sso/oidc/jws.js';

/**
 * The checks of an IdP's logout token (SPEC §8 "OIDC Back-Channel Logout from the IdP",
 * OpenID Connect Back-Channel Logout 1.0 §2.6), each a small named function that passes or throws
 * a LogoutTokenError with its own reason. `service.ts` runs them in this order:
 *
 *   1  checkPresent            malformed
 *   2  readToken               malformed               (header and claims, not yet trusted)
 *   3  checkType               typ_invalid             (`logout+jwt` when present, §2.4)
 *   4  checkAlgorithm          alg_not_allowed         (asymmetric only: never `none`, never HS*)
 *   5  (service) the connections of the unverified `iss` and `aud`:  unknown_connection
 *  5b  checkAlgorithmOfIdp     alg_not_allowed         (one the IdP's discovery lists, when it lists any)
 *   6  selectKey               unknown_kid | kid_ambiguous   (the connection's IdP JWKS; one refetch on a kid miss)
 *   7  verifySignature         signature_invalid
 *   8  checkIssuer             issuer_mismatch         (exact; an Entra template only for allowedTenants)
 *   9  checkAudience           audience_mismatch       (the client id; `aud` may be an array)
 *  10  checkIssuedAt           iat_invalid             (present, not in the future beyond 60 s)
 *  11  checkExpiry             expired                 (present, not passed beyond 60 s)
 *  12  checkEvents             events_invalid          (the back-channel logout member, an object)
 *  13  checkNoNonce            nonce_present           (§2.6: a logout token is not an ID token)
 *  14  checkSubjectOrSession   sub_and_sid_missing
 *  15  checkJti                jti_missing
 *  then, in service.ts, one transaction: the `jti` accepted once across instances (replayed),
 *  the sessions ended.
 */

export const LOGOUT_TOKEN_REFUSALS = {
  malformed: 'no logout_token, or it is not a signed JWT whose header and payload are JSON objects',
  typ_invalid: 'the JWT header carries a `typ` other than `logout+jwt`',
  alg_not_allowed: 'unsigned (`none`) or signed with a symmetric (HS*) or unknown algorithm',
  unknown_connection: 'no enabled OIDC connection has this `iss` as issuer and a client id in `aud`',
  keys_unavailable: "the IdP's discovery document or JWKS could not be fetched",
  unknown_kid: "the token's `kid` is not in the IdP's JWKS, even after one refetch",
  kid_ambiguous: 'the token names no `kid` and the JWKS has several keys (or none that fits)',
  signature_invalid: "the signature does not verify against the IdP's published keys",
  issuer_mismatch: "`iss` is not the connection's issuer",
  audience_mismatch: "`aud` does not contain the connection's client id",
  iat_invalid: 'no `iat`, or one in the future (beyond 60 s of clock skew)',
  expired: 'no `exp`, or it has passed (beyond 60 s of clock skew)',
  events_invalid: '`events` is not an object with the member `http://schemas.openid.net/event/backchannel-logout` whose value is an object',
  nonce_present: 'the token carries a `nonce` (forbidden in a logout token: it could be an ID token)',
  sub_and_sid_missing: 'the token has neither `sub` nor `sid`',
  jti_missing: 'the token has no `jti`',
  replayed: 'a logout token with this `iss` and `jti` was already accepted',
} as const;

export type LogoutTokenRefusal = keyof typeof LOGOUT_TOKEN_REFUSALS;

/** A refused logout token: 400, answered as `{"error":"invalid_request","error_description":…}` (§2.8). */
export class LogoutTokenError extends AppError {
  override name = 'LogoutTokenError';
  constructor(
    readonly reason: LogoutTokenRefusal,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super('INVALID_TOKEN', message, { reason }, options.cause === undefined ? {} : { cause: options.cause });
  }
}

export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
export const CLOCK_SKEW_S = 60;
/** A logout token's identifiers are stored and compared; an IdP's are short. */
const MAX_CLAIM_LENGTH = 255;

const fail = (reason: LogoutTokenRefusal, message: string, cause?: unknown) => new LogoutTokenError(reason, message, cause === undefined ? {} : { cause });

export interface ReadToken {
  token: string;
  header: ProtectedHeaderParameters;
  /** Not trusted before verifySignature: only for finding the connection. */
  unverified: JWTPayload;
}

/** What the checks after the signature know about the connection. */
export interface LogoutTokenExpectations {
  /** The connection's issuer (may hold Entra's `{tenantid}` template). */
  issuer: string;
  allowedTenants: string[] | null;
  clientId: string;
  now: Date;
}

export type LogoutClaims = Record<string, unknown> & { iss: string; jti: string; sub?: string; sid?: string };

// 1
export function checkPresent(logoutToken: string | undefined): string {
  if (!logoutToken) throw fail('malformed', 'The request carries no logout_token');
  return logoutToken;
}

// 2
export function readToken(token: string): ReadToken {
  if (token.split('.').length !== 3) throw fail('malformed', 'The logout_token is not a signed JWT (JWS compact serialization)');
  try {
    return { token, header: decodeProtectedHeader(token), unverified: decodeJwt(token) };
  } catch (e) {
    throw fail('malformed', 'The logout_token header or payload is not a JSON object', e);
  }
}

// 3
export function checkType(header: ProtectedHeaderParameters): void {
  if (header.typ === undefined) return;
  const typ = header.typ.toLowerCase().replace(/^application\//, '');
  if (typ !== 'logout+jwt') throw fail('typ_invalid', `The logout token's header says typ "${String(header.typ).slice(0, 64)}", not "logout+jwt"`);
}

// 4
export function checkAlgorithm(header: ProtectedHeaderParameters): string {
  const alg = header.alg ?? 'none';
  if (!(ALLOWED_ALGS as readonly string[]).includes(alg)) {
    throw fail('alg_not_allowed', `The logout token is signed with "${alg.slice(0, 32)}"; only asymmetric signatures (RS256, ES256, …) are accepted`);
  }
  return alg;
}

// 5b — once the connection is known: an IdP that lists its signing algorithms signs with one of them.
export function checkAlgorithmOfIdp(alg: string, supported: readonly string[] | undefined): void {
  if (supported && supported.length > 0 && !supported.includes(alg)) {
    throw fail('alg_not_allowed', `The logout token is signed with "${alg}", which the IdP does not list among its signing algorithms (${supported.join(', ').slice(0, 200)})`);
  }
}

/** The values of `aud`, whether a string or an array of strings. */
export function audiences(aud: unknown): string[] {
  if (typeof aud === 'string') return [aud];
  return Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
}

// 6 — by kid, refetching the JWKS once (metadata.ts rate-limits the refetch); the only key when there is no kid.
export async function selectKey(header: ProtectedHeaderParameters, alg: string, loadJwks: (refresh: boolean) => Promise<Jwks>): Promise<JWK> {
  const choice = await chooseKey(header, alg, loadJwks);
  if ('key' in choice) return choice.key;
  if (choice.refusal === 'unknown_kid') throw fail('unknown_kid', `The logout token was signed with key "${String(header.kid).slice(0, 64)}", which the IdP's JWKS does not publish`);
  throw fail('kid_ambiguous', choice.published === 0 ? 'The IdP publishes no key that can verify this logout token' : 'The logout token names no key ("kid") and the IdP publishes several');
}

// 7
export async function verifySignature(token: string, key: JWK, alg: string): Promise<Record<string, unknown>> {
  const verified = await verifyJsonJws(token, key, alg);
  if ('claims' in verified) return verified.claims;
  if (verified.refusal === 'signature_invalid') throw fail('signature_invalid', "The logout token's signature does not verify against the IdP's published keys", verified.cause);
  throw fail('malformed', 'The logout token payload is not a JSON object', verified.cause);
}

// 8
export function checkIssuer(claims: Record<string, unknown>, expect: LogoutTokenExpectations): void {
  if (typeof claims.iss !== 'string' || !acceptedIssuers(expect.issuer, expect.allowedTenants)(claims.iss)) {
    throw fail('issuer_mismatch', `The logout token was issued by "${String(claims.iss).slice(0, 256)}", not by the connection's issuer "${expect.issuer}"`);
  }
}

// 9
export function checkAudience(claims: Record<string, unknown>, expect: LogoutTokenExpectations): void {
  if (!audiences(claims.aud).includes(expect.clientId)) {
    throw fail('audience_mismatch', `The logout token is meant for "${audiences(claims.aud).join(', ').slice(0, 256)}", not for this connection's client ID "${expect.clientId}"`);
  }
}

// 10
export function checkIssuedAt(claims: Record<string, unknown>, expect: LogoutTokenExpectations): void {
  const now = Math.floor(expect.now.getTime() / 1000);
  if (typeof claims.iat !== 'number' || !Number.isFinite(claims.iat)) throw fail('iat_invalid', 'The logout token has no issue time (iat)');
  if (claims.iat > now + CLOCK_SKEW_S) throw fail('iat_invalid', 'The logout token was issued in the future: check the clocks of Gatehouse and the IdP');
}

// 11
export function checkExpiry(claims: Record<string, unknown>, expect: LogoutTokenExpectations): void {
  const now = Math.floor(expect.now.getTime() / 1000);
  if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp)) throw fail('expired', 'The logout token has no expiry (exp)');
  if (now > claims.exp + CLOCK_SKEW_S) throw fail('expired', 'The logout token has expired. If this repeats, check the clocks of Gatehouse and the IdP.');
}

// 12
export function checkEvents(claims: Record<string, unknown>): void {
  const events = claims.events;
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(events)) throw fail('events_invalid', 'The logout token has no events claim (an object)');
  if (!Object.hasOwn(events, BACKCHANNEL_LOGOUT_EVENT) || !isObject(events[BACKCHANNEL_LOGOUT_EVENT])) {
    throw fail('events_invalid', `The logout token's events has no member "${BACKCHANNEL_LOGOUT_EVENT}" whose value is an object`);
  }
}

// 13
export function checkNoNonce(claims: Record<string, unknown>): void {
  if (Object.hasOwn(claims, 'nonce')) throw fail('nonce_present', 'The token carries a nonce: a logout token never does (an ID token is not a logout token)');
}

const shortString = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_CLAIM_LENGTH;

// 14
export function checkSubjectOrSession(claims: Record<string, unknown>): { sub: string | null; sid: string | null } {
  const sub = claims.sub === undefined ? null : claims.sub;
  const sid = claims.sid === undefined ? null : claims.sid;
  if (sub !== null && !shortString(sub)) throw fail('sub_and_sid_missing', 'The logout token has a sub that is not a non-empty string');
  if (sid !== null && !shortString(sid)) throw fail('sub_and_sid_missing', 'The logout token has a sid that is not a non-empty string');
  if (sub === null && sid === null) throw fail('sub_and_sid_missing', 'The logout token names neither a subject (sub) nor a session (sid)');
  return { sub, sid };
}

// 15
export function checkJti(claims: Record<string, unknown>): string {
  if (!shortString(claims.jti)) throw fail('jti_missing', 'The logout token has no jti');
  return claims.jti;
}
