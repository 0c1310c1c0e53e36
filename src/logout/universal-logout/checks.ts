import { decodeProtectedHeader, type JWK, type ProtectedHeaderParameters } from 'jose';
import { z } from 'zod';
import { AppError, type ErrorCode } from '../../http/errors.js';
import type { Connection } from '../../sso/connections/model.js';
import { sameIssuer } from '../../sso/connections/model.js';
import type { Jwks } from '../../sso/oidc/metadata.js';
import { chooseKey, verifyJsonJws } from '../../sso/oidc/jws.js';

/**
 * The checks of an Okta Universal Logout (Global Token Revocation) request (SPEC §8), each a
 * small named function that passes or throws with its own reason. `service.ts` runs them in order:
 *
 *   1  readBearer              token_missing                 (401)
 *   2  readHeader              token_malformed               (401)
 *   3  checkType               typ_invalid                   (401)  typ global-token-revocation+jwt
 *   4  checkAlgorithm          alg_not_allowed               (401)  asymmetric only: never none, never HS*
 *   5  readUnverifiedClaims    token_malformed               (401)  iss and sub, only to find candidates
 *      then service: candidate connections expecting (iss, sub)   no_connection (401)
 *      and the issuer's keys by OIDC discovery of iss            keys_unavailable (401)
 *   6  selectKey               unknown_kid | kid_ambiguous   (401)
 *   7  verifySignature         signature_invalid             (401)  from here on: only signed claims
 *   8  checkIssuer             issuer_mismatch               (401)
 *   9  checkSubject            subject_mismatch              (401)
 *  10  checkAudience           audience_mismatch             (401)  exactly {base}/api/auth/sso/universal-logout
 *  11  checkTimes              times_missing | expired | not_yet_valid | iat_invalid (401)
 *  12  checkLifetime           lifetime_too_long             (401)  exp - iat ≤ 10 min
 *  13  checkJti                jti_missing                   (401)
 *      then service, in the transaction that ends the sessions: jti once (replayed, 401)
 *  14  readSubject             body_invalid (400 VALIDATION_FAILED) | format_unsupported (400 UNSUPPORTED_SUBJECT_FORMAT)
 *      then service: the account (404 NOT_FOUND) and, for iss_sub, the IdP (issuer_foreign, 422 LOGOUT_NOT_POSSIBLE)
 *
 * The token is checked before the body: an unauthenticated caller learns nothing of the body rules.
 */

export const UNIVERSAL_LOGOUT_TYP = 'global-token-revocation+jwt';
export const CLOCK_SKEW_S = 60;
/** SPEC §8: at most 10 minutes of life (Okta issues 5). */
export const MAX_LIFETIME_S = 600;
export const ALLOWED_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

/** The stable `details.reason` words of a refused Universal Logout request (docs/universal-logout.md lists them). */
export const UNIVERSAL_LOGOUT_REASONS = {
  token_missing: 'no `Authorization: Bearer <JWT>` header',
  token_malformed: 'the bearer value is not a signed JWT (compact JWS) with a JSON header and payload, or lacks a string iss/sub',
  typ_invalid: 'the JWT header typ is not global-token-revocation+jwt',
  alg_not_allowed: 'the JWT is unsigned (alg none) or signed with a symmetric algorithm (HS256 …)',
  no_connection: 'no enabled connection with Universal Logout on expects this iss and sub',
  keys_unavailable: "the issuer's discovery document or JWKS could not be fetched or is invalid",
  unknown_kid: "the JWT's kid is not in the issuer's JWKS, even after one refetch",
  kid_ambiguous: 'the JWT names no kid and the JWKS has several keys (or none that fits)',
  signature_invalid: "the signature does not verify with the issuer's published key",
  issuer_mismatch: "iss is not the connection's Universal Logout issuer",
  subject_mismatch: "sub is not the connection's Universal Logout subject (client id or Okta app instance id)",
  audience_mismatch: 'aud is not exactly this endpoint URL',
  times_missing: 'exp or iat is missing or not a number',
  expired: 'exp has passed (beyond 60 s of skew)',
  not_yet_valid: 'nbf is in the future (beyond 60 s of skew)',
  iat_invalid: 'iat is in the future (beyond 60 s of skew)',
  lifetime_too_long: 'exp - iat is over 10 minutes',
  jti_missing: 'the JWT has no jti',
  replayed: 'this jti was already accepted (by any instance)',
  body_invalid: 'the body is not a JSON object with exactly one of sub_id or subject, or the subject lacks its fields',
  format_unsupported: 'the subject format is neither email nor iss_sub',
  user_unknown: 'no account this organization knows matches the subject (no such user, or one with no tie to the organization: not a member, no identity of its connection, email domain not verified by it)',
  issuer_foreign: "an iss_sub subject names an IdP that is not the connection's, so no account of it can be found",
} as const;
export type UniversalLogoutReason = keyof typeof UNIVERSAL_LOGOUT_REASONS;

/** Reasons that are not about the token (those are 401 UNAUTHENTICATED). */
const NON_TOKEN_CODES: Partial<Record<UniversalLogoutReason, ErrorCode>> = {
  body_invalid: 'VALIDATION_FAILED',
  format_unsupported: 'UNSUPPORTED_SUBJECT_FORMAT',
  user_unknown: 'NOT_FOUND',
  issuer_foreign: 'LOGOUT_NOT_POSSIBLE',
};

/** A refused request: its HTTP code by reason, `details.reason` the word above. */
export class UniversalLogoutError extends AppError {
  constructor(readonly reason: UniversalLogoutReason, message: string, extra: Record<string, unknown> = {}) {
    super(NON_TOKEN_CODES[reason] ?? 'UNAUTHENTICATED', message, { reason, ...extra });
  }
  /** A token refusal (401): answered with `WWW-Authenticate: Bearer error="invalid_token"`. */
  get isTokenError(): boolean {
    return this.status === 401;
  }
}

const fail = (reason: UniversalLogoutReason, message: string) => new UniversalLogoutError(reason, message);

/** What the checks know about one candidate connection. */
export interface TokenExpectations {
  issuers: string[];
  subject: string;
  audience: string;
  now: Date;
}

export type UnverifiedClaims = { iss: string; sub: string };
export type VerifiedClaims = Record<string, unknown> & { iss: string; sub: string; exp: number; iat: number; jti: string };

// 1
export function readBearer(authorization: string | undefined): string {
  const m = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!m) throw fail('token_missing', 'Send the Universal Logout token as "Authorization: Bearer <JWT>"');
  return m[1]!;
}

// 2
export function readHeader(token: string): ProtectedHeaderParameters {
  if (token.split('.').length !== 3) throw fail('token_malformed', 'The bearer token is not a signed JWT');
  try {
    return decodeProtectedHeader(token);
  } catch {
    throw fail('token_malformed', 'The bearer token is not a signed JWT');
  }
}

// 3 — media types compare case-insensitively (RFC 7515 §4.1.9); an "application/" prefix is the same type.
export function checkType(header: ProtectedHeaderParameters): void {
  const typ = typeof header.typ === 'string' ? header.typ.toLowerCase().replace(/^application\//, '') : null;
  if (typ !== UNIVERSAL_LOGOUT_TYP) throw fail('typ_invalid', `The token's typ is "${String(header.typ)}", not ${UNIVERSAL_LOGOUT_TYP}`);
}

// 4
export function checkAlgorithm(header: ProtectedHeaderParameters): string {
  const alg = header.alg ?? 'none';
  if (!(ALLOWED_ALGS as readonly string[]).includes(alg)) throw fail('alg_not_allowed', `The token is signed with "${alg}"; only asymmetric signatures (RS256, ES256, …) are accepted`);
  return alg;
}

function payloadOf(bytes: Uint8Array): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw fail('token_malformed', 'The token payload is not a JSON object');
}

// 5 — read without trusting: only to know which connections could have sent it.
export function readUnverifiedClaims(token: string): UnverifiedClaims {
  let bytes: Uint8Array;
  try {
    bytes = Buffer.from(token.split('.')[1] ?? '', 'base64url');
  } catch {
    throw fail('token_malformed', 'The token payload is not base64url');
  }
  const claims = payloadOf(bytes);
  if (typeof claims.iss !== 'string' || !claims.iss || typeof claims.sub !== 'string' || !claims.sub) throw fail('token_malformed', 'The token has no iss or no sub');
  return { iss: claims.iss, sub: claims.sub };
}

// 6 — by kid (refetching the JWKS once), or the only key when there is no kid.
export async function selectKey(header: ProtectedHeaderParameters, alg: string, loadJwks: (refresh: boolean) => Promise<Jwks>): Promise<JWK> {
  const choice = await chooseKey(header, alg, loadJwks);
  if ('key' in choice) return choice.key;
  if (choice.refusal === 'unknown_kid') throw fail('unknown_kid', `The token was signed with key "${String(header.kid).slice(0, 64)}", which the issuer's JWKS does not publish`);
  throw fail('kid_ambiguous', choice.published === 0 ? 'The issuer publishes no key that can verify this token' : 'The token names no key ("kid") and the issuer publishes several');
}

// 7
export async function verifySignature(token: string, key: JWK, alg: string): Promise<Record<string, unknown>> {
  const verified = await verifyJsonJws(token, key, alg);
  if ('claims' in verified) return verified.claims;
  if (verified.refusal === 'signature_invalid') throw fail('signature_invalid', "The token's signature does not verify with the issuer's published key");
  throw fail('token_malformed', 'The token payload is not a JSON object');
}

// 8
export function checkIssuer(claims: Record<string, unknown>, expect: TokenExpectations): void {
  if (typeof claims.iss !== 'string' || !expect.issuers.some((i) => sameIssuer(i, claims.iss as string))) throw fail('issuer_mismatch', `The token was issued by "${String(claims.iss)}", not by the connection's Universal Logout issuer`);
}

// 9
export function checkSubject(claims: Record<string, unknown>, expect: TokenExpectations): void {
  if (claims.sub !== expect.subject) throw fail('subject_mismatch', `The token's sub "${String(claims.sub)}" is not the connection's Universal Logout subject`);
}

// 10 — exact: never a prefix, never a suffix (DESIGN.md: audience checked by prefix is a peer's mistake).
export function checkAudience(claims: Record<string, unknown>, expect: TokenExpectations): void {
  const aud = claims.aud;
  const ok = typeof aud === 'string' ? aud === expect.audience : Array.isArray(aud) && aud.length > 0 && aud.every((a) => typeof a === 'string') && aud.includes(expect.audience);
  if (!ok) throw fail('audience_mismatch', `The token's aud is not ${expect.audience}`);
}

// 11
export function checkTimes(claims: Record<string, unknown>, expect: TokenExpectations): void {
  const now = Math.floor(expect.now.getTime() / 1000);
  if (typeof claims.exp !== 'number' || typeof claims.iat !== 'number') throw fail('times_missing', 'The token needs numeric exp and iat');
  if (claims.exp + CLOCK_SKEW_S <= now) throw fail('expired', 'The token has expired');
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf - CLOCK_SKEW_S > now)) throw fail('not_yet_valid', 'The token is not valid yet (nbf)');
  if (claims.iat - CLOCK_SKEW_S > now) throw fail('iat_invalid', 'The token was issued in the future (iat)');
}

// 12
export function checkLifetime(claims: Record<string, unknown>): void {
  const life = (claims.exp as number) - (claims.iat as number);
  if (life > MAX_LIFETIME_S) throw fail('lifetime_too_long', `The token lives ${life} s; at most ${MAX_LIFETIME_S} s is accepted`);
}

// 13
export function checkJti(claims: Record<string, unknown>): void {
  if (typeof claims.jti !== 'string' || claims.jti.length === 0 || claims.jti.length > 512) throw fail('jti_missing', 'The token has no jti');
}

/** The replay-cache key of a token: one per issuer and jti, kept until exp plus the skew. */
export const replayKeyOf = (claims: VerifiedClaims) => `ul:${claims.iss}:${claims.jti}`;
export const replayUntil = (claims: VerifiedClaims) => new Date((claims.exp + CLOCK_SKEW_S) * 1000).toISOString();

const emailSubject = z.object({ format: z.literal('email'), email: z.email().max(320) }).strict();
const issSubSubject = z.object({ format: z.literal('iss_sub'), iss: z.string().min(1).max(2048), sub: z.string().min(1).max(512) }).strict();
export type SubjectId = z.infer<typeof emailSubject> | z.infer<typeof issSubSubject>;
export const SUBJECT_FORMATS = ['email', 'iss_sub'] as const;

// 14 — `sub_id` (Global Token Revocation) or the older `subject`, exactly one.
export function readSubject(body: unknown): SubjectId {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw fail('body_invalid', 'The body must be a JSON object {"sub_id": {…}}');
  const keys = Object.keys(body);
  if (keys.length !== 1 || (keys[0] !== 'sub_id' && keys[0] !== 'subject')) throw fail('body_invalid', 'The body must have exactly one member, "sub_id" (or the older "subject")');
  const id: unknown = (body as Record<string, unknown>)[keys[0]];
  if (!id || typeof id !== 'object' || Array.isArray(id)) throw fail('body_invalid', `"${keys[0]}" must be an object with a "format"`);
  const format = (id as { format?: unknown }).format;
  if (typeof format !== 'string') throw fail('body_invalid', `"${keys[0]}.format" is missing`);
  if (!(SUBJECT_FORMATS as readonly string[]).includes(format)) {
    throw new UniversalLogoutError('format_unsupported', `Subject format "${format.slice(0, 64)}" is not supported; use email or iss_sub`, { supported: SUBJECT_FORMATS });
  }
  const parsed = (format === 'email' ? emailSubject : issSubSubject).safeParse(id);
  if (!parsed.success) throw fail('body_invalid', `"${keys[0]}" in format ${format} needs ${format === 'email' ? '"email"' : '"iss" and "sub"'} (and nothing else)`);
  return parsed.data;
}

/**
 * The `iss` a connection's Universal Logout token carries (SPEC §8): the configured one; else for
 * Okta the issuer URL or its origin (Okta signs with the org authorization server, whose keys are
 * at `{origin}/oauth2/v1/keys`, even for a connection on a custom authorization server); else the
 * issuer URL. A SAML connection has none unless configured.
 */
export function expectedIssuers(c: Connection): string[] {
  if (c.universalLogout.issuer) return [c.universalLogout.issuer];
  if (!c.oidc) return [];
  const url = c.oidc.issuerUrl;
  if (url.includes('{tenantid}')) return [];
  if (c.provider !== 'okta') return [url];
  let origin: string;
  try {
    origin = new URL(url).origin;
  } catch {
    return [url];
  }
  return sameIssuer(origin, url) ? [url] : [url, origin];
}

/** The `sub` it carries: the configured one, else the OIDC client id; a SAML connection has none unless configured. */
export function expectedSubject(c: Connection): string | null {
  return c.universalLogout.subject ?? c.oidc?.clientId ?? null;
}

/** Whether a connection takes this (unverified) iss and sub: enabled, Universal Logout on, both expected values equal. */
export function isCandidate(c: Connection, claims: UnverifiedClaims): boolean {
  return c.status === 'active' && c.enabled && c.universalLogout.enabled && expectedSubject(c) === claims.sub && expectedIssuers(c).some((i) => sameIssuer(i, claims.iss));
}
