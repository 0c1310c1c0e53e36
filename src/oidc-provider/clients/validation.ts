import { z } from '@hono/zod-openapi';
import { importJWK } from 'jose';
import type { ZodError } from 'zod';
import type { ClientAuthMethod } from '../../db/schema.js';
import { AppError } from '../../http/errors.js';
import { GRANT_TYPES, type Jwks, type OAuthClient } from './store.js';

/**
 * What a client registration may hold (SPEC §8 "Exact choices", docs/clients.md "Validation"):
 * the zod schemas of the admin API (also used by the CLI through the service) and the rules
 * across fields, checked on the client as it would be after a create or an update.
 */

export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const satisfies readonly ClientAuthMethod[];
export const SECRET_METHODS: readonly ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post'];
export const MAX_URIS = 20;
const MAX_URI_LENGTH = 2048;
const MAX_JWKS_KEYS = 10;
/** RFC 8252 §7.3: plain http only towards the user's own machine. */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
/** JWK members that carry private or symmetric key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
export const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

export const isSecretMethod = (m: ClientAuthMethod) => SECRET_METHODS.includes(m);

// ---- validation: one rule per function -----------------------------------------------------

/**
 * Why `value` cannot be a redirect URI, post-logout redirect URI, back-channel logout URI or
 * JWKS URI, or null. Absolute, no fragment, no credentials, no wildcard (the provider matches
 * exactly), https — or http on a loopback host (RFC 8252). Custom schemes are refused.
 */
export function uriRefusal(value: string): string | null {
  if (value.length > MAX_URI_LENGTH) return `must be at most ${MAX_URI_LENGTH} characters`;
  if (/[\s\u0000-\u001f\u007f]/.test(value)) return 'must not contain whitespace or control characters';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL such as https://app.example.com/callback';
  }
  if (value.includes('#')) return 'must not contain a fragment (#)';
  if (url.username || url.password) return 'must not contain user credentials';
  if (url.protocol === 'https:') return url.hostname.includes('*') ? 'wildcards are not supported: URIs are matched exactly' : null;
  if (url.protocol === 'http:') {
    return LOOPBACK_HOSTS.has(url.hostname) ? null : 'http is allowed only on localhost, 127.0.0.1 or [::1] (RFC 8252); use https';
  }
  return `the scheme "${url.protocol}" is not allowed: use https (or http on localhost, 127.0.0.1 or [::1])`;
}

const Uri = z.string().superRefine((v, ctx) => {
  const why = uriRefusal(v);
  if (why) ctx.addIssue({ code: 'custom', message: why });
});

const noDuplicates = (values: readonly string[], ctx: z.RefinementCtx) => {
  const seen = new Set<string>();
  values.forEach((v, i) => {
    if (seen.has(v)) ctx.addIssue({ code: 'custom', path: [i], message: `duplicate value "${v}"` });
    seen.add(v);
  });
};

const UriList = (min: number) =>
  z.array(Uri).min(min, `must hold at least ${min} URI`).max(MAX_URIS, `must hold at most ${MAX_URIS} URIs`).superRefine(noDuplicates);

/** The members a public JWK of each type must have (RFC 7518 §6). */
const REQUIRED_JWK_MEMBERS: Record<string, string[]> = { EC: ['crv', 'x', 'y'], RSA: ['n', 'e'], OKP: ['crv', 'x'] };

const Jwk = z
  .object({ kty: z.enum(['EC', 'RSA', 'OKP']).openapi({ description: 'Public keys only: EC, RSA or OKP' }) })
  .catchall(z.unknown())
  .superRefine((jwk, ctx) => {
    for (const m of PRIVATE_JWK_MEMBERS) {
      if (m in jwk) ctx.addIssue({ code: 'custom', path: [m], message: `a private or symmetric key member ("${m}") is not allowed: register the public key only` });
    }
    for (const m of REQUIRED_JWK_MEMBERS[jwk.kty] ?? []) {
      if (typeof jwk[m] !== 'string') ctx.addIssue({ code: 'custom', path: [m], message: `a ${jwk.kty} public key needs "${m}"` });
    }
  });

const JwksSchema = z
  .object({ keys: z.array(Jwk).min(1, 'must hold at least one key').max(MAX_JWKS_KEYS, `must hold at most ${MAX_JWKS_KEYS} keys`) })
  .strict()
  .openapi({ description: "The client's public keys for private_key_jwt (a JWKS, RFC 7517)" });

const GrantTypes = z
  .array(z.enum(GRANT_TYPES))
  .min(1)
  .superRefine(noDuplicates)
  .refine((g) => g.includes('authorization_code'), 'must include authorization_code (the provider issues codes)');

const Name = z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters');

const fields = {
  name: Name,
  redirectUris: UriList(1).openapi({ description: `1–${MAX_URIS} exact redirect URIs: https, or http on localhost/127.0.0.1/[::1]; no fragment, no custom schemes` }),
  postLogoutRedirectUris: UriList(0).openapi({ description: `0–${MAX_URIS} URIs for RP-initiated logout; same rules` }),
  backchannelLogoutUri: Uri.openapi({ description: 'Where Back-Channel Logout tokens are posted; https or http on a loopback host' }),
  tokenEndpointAuthMethod: z.enum(AUTH_METHODS).openapi({ description: 'Default client_secret_basic; none = a public client (PKCE required)' }),
  firstParty: z.boolean().openapi({ description: 'First-party clients skip the consent page (default false)' }),
  jwksUri: Uri.openapi({ description: 'private_key_jwt: where the client publishes its public keys' }),
  jwks: JwksSchema,
  grantTypes: GrantTypes.openapi({ description: 'Subset of authorization_code, refresh_token (default both)' }),
};

export const CreateClientInput = z
  .object({
    name: fields.name,
    redirectUris: fields.redirectUris,
    postLogoutRedirectUris: fields.postLogoutRedirectUris.optional(),
    backchannelLogoutUri: fields.backchannelLogoutUri.optional(),
    tokenEndpointAuthMethod: fields.tokenEndpointAuthMethod.optional(),
    firstParty: fields.firstParty.optional(),
    jwksUri: fields.jwksUri.optional(),
    jwks: fields.jwks.optional(),
    grantTypes: fields.grantTypes.optional(),
  })
  .strict()
  .openapi('CreateOAuthClient');
export type CreateClientInput = z.input<typeof CreateClientInput>;

export const UpdateClientInput = z
  .object({
    name: fields.name.optional(),
    redirectUris: fields.redirectUris.optional(),
    postLogoutRedirectUris: fields.postLogoutRedirectUris.optional(),
    backchannelLogoutUri: fields.backchannelLogoutUri.nullable().optional(),
    tokenEndpointAuthMethod: fields.tokenEndpointAuthMethod.optional(),
    firstParty: fields.firstParty.optional(),
    jwksUri: fields.jwksUri.nullable().optional(),
    jwks: fields.jwks.nullable().optional(),
    grantTypes: fields.grantTypes.optional(),
    rotateSecret: z.boolean().optional().openapi({ description: 'true: issue a new secret (shown once); the old one stops working at once' }),
  })
  .strict()
  .refine((o) => Object.keys(o).length > 0, 'send at least one field to change')
  .openapi('UpdateOAuthClient');
export type UpdateClientInput = z.input<typeof UpdateClientInput>;

export interface Issue {
  path: string;
  code: string;
  message: string;
}

/** The same `details.issues` shape as the HTTP validation hook (app.ts). */
function issuesOf(error: ZodError): Issue[] {
  return error.issues.map((i) => {
    const keys = i.code === 'unrecognized_keys' ? (i as { keys?: string[] }).keys ?? [] : [];
    return {
      path: i.path.join('.') || keys.join(','),
      code: i.code,
      message: i.code === 'unrecognized_keys' ? `unknown field(s): ${keys.join(', ')}` : i.message,
    };
  });
}

export const invalid = (issues: Issue[]) => new AppError('VALIDATION_FAILED', 'Invalid OAuth client', { issues });

export function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const res = schema.safeParse(input);
  if (!res.success) throw invalid(issuesOf(res.error));
  return res.data;
}

/** Rules across fields, checked on the client as it would be after the write (create or update). */
export function settingsIssues(c: Pick<OAuthClient, 'authMethod' | 'jwksUri' | 'jwks'>): Issue[] {
  const issues: Issue[] = [];
  const custom = (path: string, message: string) => issues.push({ path, code: 'custom', message });
  if (c.jwksUri !== null && c.jwks !== null) custom('jwks', 'send jwksUri or jwks, not both');
  if (c.authMethod === 'private_key_jwt') {
    if (c.jwksUri === null && c.jwks === null) custom('jwks', 'private_key_jwt needs jwksUri or jwks (the public keys the client signs its assertions with)');
  } else {
    if (c.jwksUri !== null) custom('jwksUri', 'only used with tokenEndpointAuthMethod private_key_jwt (send null to remove it)');
    if (c.jwks !== null) custom('jwks', 'only used with tokenEndpointAuthMethod private_key_jwt (send null to remove it)');
  }
  return issues;
}

/** Each key must be a public key the JOSE library can use (a point on its curve, a sane RSA modulus). */
export async function unusableKeys(jwks: Jwks | null | undefined): Promise<Issue[]> {
  const issues: Issue[] = [];
  for (const [i, jwk] of (jwks?.keys ?? []).entries()) {
    try {
      await importJWK(jwk as Parameters<typeof importJWK>[0], typeof jwk.alg === 'string' ? jwk.alg : jwk.kty === 'EC' ? 'ES256' : jwk.kty === 'RSA' ? 'RS256' : 'EdDSA');
    } catch (e) {
      issues.push({ path: `jwks.keys.${i}`, code: 'custom', message: `not a usable public key (${e instanceof Error ? e.message : 'rejected'})` });
    }
  }
  return issues;
}
