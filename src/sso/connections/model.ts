import { z } from 'zod';
import { OIDC_REDIRECT_MODES, type OidcRedirectMode } from '../../config.js';
import type { Role } from '../../db/schema.js';
import type { ConnectionRow } from './store.js';

export const OIDC_PROVIDERS = ['okta', 'azure', 'google', 'auth0', 'oidc'] as const;
export const SAML_PROVIDERS = ['onelogin', 'saml'] as const;
export type OidcProvider = (typeof OIDC_PROVIDERS)[number];

export const DEFAULT_SCOPES = ['openid', 'profile', 'email'];

/**
 * SPEC §8 Okta Universal Logout: whether the connection's IdP may end its users' sessions, and
 * the request JWT's expected `iss` and `sub` when they are not the defaults (universal-logout
 * checks: the issuer URL or, for Okta, its origin; the client id, or for SAML the Okta app
 * instance id, which must then be given).
 */
export const universalLogoutSettings = z.object({ enabled: z.boolean(), issuer: z.string().nullable(), subject: z.string().nullable() });
export type UniversalLogoutSettings = z.infer<typeof universalLogoutSettings>;
export const UNIVERSAL_LOGOUT_DEFAULTS: UniversalLogoutSettings = { enabled: true, issuer: null, subject: null };

/** Logout settings of either protocol (rows saved before them have none: the defaults). */
const logoutFields = {
  /** SPEC §8: signing out of a session from this connection also ends the IdP session. */
  signOutOfIdp: z.boolean().optional(),
  universalLogout: universalLogoutSettings.optional(),
};

/** The non-secret OIDC settings kept in `sso_connections.config`. */
const oidcConfig = z.object({
  ...logoutFields,
  protocol: z.literal('oidc'),
  /** What the admin configured (suffix stripped); discovery is fetched from here. */
  issuerUrl: z.string(),
  clientId: z.string(),
  scopes: z.array(z.string()),
  /**
   * SPEC §12. Stored by every PUT since the mix-up fix; rows saved before it have none and take
   * the deployment default (GATEHOUSE_OIDC_REDIRECT_MODE) — see redirectUriModeOf.
   */
  redirectUriMode: z.enum(OIDC_REDIRECT_MODES).optional(),
  /** Entra ID multi-tenant issuers only: the tenant ids (lower-case GUIDs) whose tokens are accepted. */
  allowedTenants: z.array(z.string()).optional(),
  /** SPEC §9: keep the IdP's access and refresh tokens for the app (rows saved before it: false). */
  storeIdpTokens: z.boolean().optional(),
});
export type OidcConfig = z.infer<typeof oidcConfig>;

/**
 * The redirect URI mode of an OIDC connection: its own, else the deployment's default — and
 * always `dedicated` on a deployment that turned the shared redirect URI off
 * (GATEHOUSE_OIDC_SHARED_REDIRECT=false), so a connection stored as shared moves to its own URI.
 */
export function redirectUriModeOf(oidc: OidcConfig, deployment: { oidcRedirectMode: OidcRedirectMode; oidcSharedRedirect: boolean }): OidcRedirectMode {
  if (!deployment.oidcSharedRedirect) return 'dedicated';
  return oidc.redirectUriMode ?? deployment.oidcRedirectMode;
}

/**
 * Entra ID's multi-tenant discovery (`/common`, `/organizations`, or `/{tenantid}` itself)
 * announces the issuer as a template: any tenant's tokens would fill it (SPEC §12).
 */
export const TENANT_TEMPLATE = '{tenantid}';
export const isTemplatedIssuer = (issuer: string) => issuer.includes(TENANT_TEMPLATE);

/** An Entra ID tenant id: a GUID (compared lower-case). */
export const TENANT_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const SAML_MAPPED_FIELDS = ['email', 'firstName', 'lastName', 'name', 'groups'] as const;
export type SamlMappedField = (typeof SAML_MAPPED_FIELDS)[number];
export type AttributeMapping = Partial<Record<SamlMappedField, string[]>>;

/** The non-secret SAML settings kept in `sso_connections.config` (the SP private key is in `secret_enc`). */
const samlConfig = z.object({
  ...logoutFields,
  protocol: z.literal('saml'),
  /** The IdP's SingleLogoutService (HTTP-Redirect) for SP-initiated Single Logout; from metadata or given. */
  idpSloUrl: z.string().nullable().optional(),
  idpEntityId: z.string(),
  idpSsoUrl: z.string(),
  /** Pinned IdP signing certificates (PEM); several during a rotation. */
  idpCertificates: z.array(z.string()).min(1),
  /** null: the default `{base}/api/auth/sso/{slug}/saml/metadata`. */
  spEntityId: z.string().nullable(),
  /** Per field, the attribute names to read (first present wins); a field left out uses SPEC §11 defaults. */
  attributeMapping: z.partialRecord(z.enum(SAML_MAPPED_FIELDS), z.array(z.string())),
  signAuthnRequests: z.boolean(),
  authnRequestBinding: z.enum(['redirect', 'post']),
  /** The organization's SP certificate (public); its private key is sealed in `secret_enc`. */
  spCertificate: z.string(),
  /** Where the IdP metadata was fetched from, when it was. */
  idpMetadataUrl: z.string().nullable(),
});
export type SamlConfig = z.infer<typeof samlConfig>;

const connectionConfig = z.discriminatedUnion('protocol', [oidcConfig, samlConfig]);

/** A connection as the rest of the code sees it: parsed once, here. */
export interface Connection {
  id: string;
  organizationId: string;
  protocol: 'oidc' | 'saml';
  provider: string;
  status: 'active' | 'replaced';
  enabled: boolean;
  configVersion: number;
  /** The issuer the IdP announces in discovery (may hold Entra's `{tenantid}` template). */
  issuer: string;
  oidc: OidcConfig | null;
  saml: SamlConfig | null;
  hasSecret: boolean;
  secretSealed: string | null;
  allowJitProvisioning: boolean;
  defaultRole: Role;
  allowedDomains: string[] | null;
  allowIdpInitiated: boolean;
  signOutOfIdp: boolean;
  universalLogout: UniversalLogoutSettings;
  /** SPEC §9 (OIDC only; false for SAML). */
  storeIdpTokens: boolean;
  /** SPEC §5: the last test of these saved settings (null when never tested, or saved again since). */
  lastTest: { ok: boolean; at: string } | null;
  createdAt: string;
  updatedAt: string;
}

export function parseConnection(row: ConnectionRow): Connection {
  const config = connectionConfig.parse(JSON.parse(row.config));
  return {
    id: row.id,
    organizationId: row.organization_id,
    protocol: row.protocol,
    provider: row.provider,
    status: row.status,
    enabled: row.enabled === 1,
    configVersion: row.config_version,
    issuer: row.issuer,
    oidc: config.protocol === 'oidc' ? config : null,
    saml: config.protocol === 'saml' ? config : null,
    hasSecret: row.secret_enc !== null,
    secretSealed: row.secret_enc,
    allowJitProvisioning: row.allow_jit === 1,
    defaultRole: row.default_role,
    allowedDomains: row.allowed_domains ? z.array(z.string()).parse(JSON.parse(row.allowed_domains)) : null,
    allowIdpInitiated: row.allow_idp_initiated === 1,
    signOutOfIdp: config.signOutOfIdp ?? false,
    universalLogout: config.universalLogout ?? UNIVERSAL_LOGOUT_DEFAULTS,
    storeIdpTokens: config.protocol === 'oidc' && config.storeIdpTokens === true,
    lastTest: row.last_test_at !== null && row.last_test_version === row.config_version ? { ok: row.last_test_ok === 1, at: row.last_test_at } : null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Strip a pasted discovery suffix and surrounding blanks; keep a trailing slash the IdP uses (Auth0). */
export function normalizeIssuerUrl(input: string): string {
  return input.trim().replace(/\/\.well-known\/openid-configuration\/?$/, '');
}

/** Issuers compare exactly, except that one trailing slash is not a difference worth failing on. */
export function sameIssuer(a: string, b: string): boolean {
  return a.replace(/\/$/, '') === b.replace(/\/$/, '');
}
