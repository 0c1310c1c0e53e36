import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { OrganizationRow, Role, SessionRow, UserRow } from '../db/schema.js';
import { newId } from '../ids.js';
import type { SigningKeys } from './signing-keys.js';
import { amrOf } from '../sessions/amr.js';

/**
 * SPEC §8 access tokens: RFC 9068 JWTs (`typ: at+jwt`), ES256, signed by the key ring.
 *
 * Claims: iss (base URL), sub (user id), aud (GATEHOUSE_TOKEN_AUDIENCE), iat, exp, jti, sid (the
 * session), auth_time (the session's sign-in, seconds), amr (RFC 8176, see amrOf), email; with an
 * organization also org_id, org_slug, org_role.
 */
export const ACCESS_TOKEN_TYP = 'at+jwt';
/** Clock skew accepted on exp/nbf/iat when verifying. */
export const ACCESS_TOKEN_SKEW_S = 30;

export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string;
  iat: number;
  exp: number;
  jti: string;
  sid: string;
  auth_time: number;
  amr: string[];
  email: string;
  org_id?: string;
  org_slug?: string;
  org_role?: Role;
}


export function createAccessTokens(deps: { clock: Clock; config: Pick<Config, 'baseUrl' | 'tokenAudience' | 'accessTokenTtlMs'>; signingKeys: Pick<SigningKeys, 'sign' | 'verify'> }) {
  const { clock, config, signingKeys } = deps;
  return {
    /** Lifetime in seconds (the `expiresIn` of the answer). */
    ttlSeconds: Math.floor(config.accessTokenTtlMs / 1000),

    async mint(session: SessionRow, user: UserRow, org: { organization: OrganizationRow; role: Role } | null): Promise<{ token: string; claims: AccessTokenClaims }> {
      const iat = Math.floor(clock.now().getTime() / 1000);
      const claims: AccessTokenClaims = {
        iss: config.baseUrl,
        sub: user.id,
        aud: config.tokenAudience,
        iat,
        exp: iat + Math.floor(config.accessTokenTtlMs / 1000),
        jti: newId(),
        sid: session.id,
        auth_time: Math.floor(Date.parse(session.created_at) / 1000),
        amr: amrOf(session),
        email: user.email,
        ...(org ? { org_id: org.organization.id, org_slug: org.organization.slug, org_role: org.role } : {}),
      };
      return { token: await signingKeys.sign({ ...claims }, ACCESS_TOKEN_TYP), claims };
    },

    /**
     * Verify an access token: ES256 only, a published kid, typ at+jwt, iss, aud, exp/nbf/iat with
     * 30 s of skew, and the claims Gatehouse needs (sub, sid). Null on any failure — the caller
     * answers 401 without saying which check failed.
     */
    async verify(token: string): Promise<{ sub: string; sid: string } | null> {
      try {
        const payload = await signingKeys.verify(token, {
          typ: ACCESS_TOKEN_TYP,
          issuer: config.baseUrl,
          audience: config.tokenAudience,
          clockTolerance: ACCESS_TOKEN_SKEW_S,
          requiredClaims: ['exp', 'iat', 'sub', 'sid', 'jti'],
        });
        if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') return null;
        // An app's token from the OpenID Provider (resource = this audience) names its client: it is
        // for the app's API, with the scopes the user granted that app, never a credential for
        // Gatehouse's own API with the session's full rights (docs/openid-provider.md).
        if ('client_id' in payload) return null;
        return { sub: payload.sub, sid: payload.sid };
      } catch {
        return null;
      }
    },
  };
}

/** Whether a bearer value has the shape of a JWS compact serialization (never an API key: those start with their own prefix). */
export function looksLikeJwt(value: string): boolean {
  return value.startsWith('eyJ') && value.split('.').length === 3;
}

export type AccessTokens = ReturnType<typeof createAccessTokens>;
