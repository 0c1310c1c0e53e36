import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { ok, pageOf, responses } from '../../http/envelope.js';
import { ctxOf, type AppEnv } from '../../http/middleware.js';
import { pageParams, pageQuery } from '../../http/pagination.js';
import { Empty, OrgParams, Ulid } from '../../http/schemas.js';
import type { Services } from '../../services.js';
import { OIDC_REDIRECT_MODES } from '../../config.js';
import { MIX_UP_PROTECTIONS } from '../oidc/mix-up.js';
import { IDP_TOKEN_STATUSES } from '../idp-tokens/vault.js';
import { OIDC_PROVIDERS, SAML_MAPPED_FIELDS, SAML_PROVIDERS, TENANT_ID_PATTERN } from './model.js';

const Domain = z.string().trim().min(1).max(253).regex(/^@?[A-Za-z0-9.-]+\.?$/, 'must be a domain such as example.com');

const UniversalLogoutBody = z
  .object({
    enabled: z.boolean().optional().openapi({ description: 'Default true' }),
    issuer: z.url().max(2048).nullable().optional().openapi({ description: "The request JWT's iss. Default: for okta the issuer URL or its origin (Okta signs with the org authorization server), otherwise the issuer URL; required for SAML connections" }),
    subject: z.string().trim().min(1).max(512).nullable().optional().openapi({ description: "The request JWT's sub. Default: the client id; for SAML connections the Okta app instance id (required)" }),
  })
  .strict()
  .openapi({ description: 'Okta Universal Logout (Global Token Revocation) for this connection' });

const OidcSettings = z
  .object({
    protocol: z.literal('oidc').openapi({ description: 'Optional: implied by an OIDC provider' }),
    provider: z.enum(OIDC_PROVIDERS, { message: `an OIDC provider is one of ${OIDC_PROVIDERS.join(', ')}; for SAML use ${SAML_PROVIDERS.join(' or ')} (or "protocol": "saml")` }),
    issuerUrl: z.url({ message: 'must be an absolute URL such as https://your-org.okta.com' }).max(2048),
    clientId: z.string().trim().min(1).max(512),
    clientSecret: z.string().min(1).max(4096).optional().openapi({ description: 'Omit to keep the stored secret' }),
    scopes: z.union([z.string().max(1024), z.array(z.string().max(128)).max(50)]).optional().openapi({ description: 'Default "openid profile email"' }),
    enabled: z.boolean().optional(),
    allowJitProvisioning: z.boolean().optional(),
    defaultRole: z.enum(['admin', 'member']).optional(),
    allowedDomains: z.array(Domain).max(100).nullable().optional(),
    allowIdpInitiated: z.boolean().optional(),
    redirectUriMode: z.enum(OIDC_REDIRECT_MODES).optional().openapi({
      description: '"dedicated": this organization\'s own redirect URI {base}/api/auth/sso/callback/{organizationId}; "shared": {base}/api/auth/sso/callback, protected only by the IdP\'s RFC 9207 iss or PAR. Omitted: the deployment default (GATEHOUSE_OIDC_REDIRECT_MODE, itself "dedicated" by default), stored with the connection',
    }),
    signOutOfIdp: z.boolean().optional().openapi({ description: 'Signing out of a session from this connection also ends the IdP session (OIDC end_session_endpoint; SAML Single Logout). Default false' }),
    universalLogout: UniversalLogoutBody.optional(),
    storeIdpTokens: z.boolean().optional().openapi({ description: "Keep each user's IdP access and refresh tokens (sealed), refreshed automatically, for the app's backend (GET …/sso/identities/{identityId}/idp-token). Asks the IdP for offline access. Default false; turning it off erases the stored tokens" }),
    allowedTenants: z
      .array(z.string().trim().regex(TENANT_ID_PATTERN, 'must be a tenant id (a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47)'))
      .min(1).max(100).optional()
      .openapi({ description: 'Entra ID multi-tenant issuers (/common, /organizations): the tenant ids whose users may sign in. Required when the discovered issuer is a {tenantid} template, refused otherwise' }),
  })
  .strict();

const required = (what: string) => ({ message: `${what} is required for a SAML connection (or give idpMetadataXml / idpMetadataUrl)` });
const AttributeNames = z.union([z.string().trim().min(1).max(512), z.array(z.string().trim().min(1).max(512)).min(1).max(10)]);
const SamlSettings = z
  .object({
    protocol: z.literal('saml').openapi({ description: 'Optional with provider onelogin or saml; required with any other provider name' }),
    provider: z.string().trim().min(1).max(64).regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, - and _ only'),
    idpEntityId: z.string(required('idpEntityId')).trim().min(1).max(1024).optional(),
    idpSsoUrl: z.url(required('idpSsoUrl')).max(2048).optional(),
    idpCertificate: z
      .union([z.string().min(1).max(100_000), z.array(z.string().min(1).max(20_000)).min(1).max(10)])
      .optional()
      .openapi({ description: 'PEM; several PEM blocks in one string or an array for a rotation. Omit (with no metadata) to keep the stored certificates of the same IdP (same idpEntityId)' }),
    idpMetadataXml: z.string().min(1).max(500_000).optional().openapi({ description: 'Pasted IdP metadata instead of the three IdP fields' }),
    idpMetadataUrl: z.url().max(2048).optional().openapi({ description: 'IdP metadata URL, fetched once at save time (https, SSRF-guarded)' }),
    spEntityId: z.string().trim().min(1).max(1024).optional().openapi({ description: 'Default {base}/api/auth/sso/{slug}/saml/metadata' }),
    attributeMapping: z.partialRecord(z.enum(SAML_MAPPED_FIELDS), AttributeNames).optional().openapi({ description: 'email, firstName, lastName, name, groups → IdP attribute name(s)' }),
    signAuthnRequests: z.boolean().optional(),
    authnRequestBinding: z.enum(['redirect', 'post']).optional(),
    enabled: z.boolean().optional(),
    allowJitProvisioning: z.boolean().optional(),
    defaultRole: z.enum(['admin', 'member']).optional(),
    allowedDomains: z.array(Domain).max(100).nullable().optional(),
    allowIdpInitiated: z.boolean().optional(),
    idpSloUrl: z.url().max(2048).nullable().optional().openapi({ description: "The IdP's SingleLogoutService (HTTP-Redirect), for signOutOfIdp; default: the one in the imported metadata" }),
    signOutOfIdp: z.boolean().optional().openapi({ description: 'Signing out of a session from this connection also ends the IdP session (OIDC end_session_endpoint; SAML Single Logout). Default false' }),
    universalLogout: UniversalLogoutBody.optional(),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.idpMetadataXml || v.idpMetadataUrl) return;
    // idpCertificate may be omitted to keep the saved IdP's (checked by the service, which knows them).
    for (const key of ['idpEntityId', 'idpSsoUrl'] as const) {
      if (v[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: required(key).message });
    }
  });

/** The body names its protocol, or the provider implies it (onelogin and saml are SAML). */
const SsoSettingsBody = z.preprocess(
  (v) => {
    if (!v || typeof v !== 'object' || Array.isArray(v) || 'protocol' in v) return v;
    const provider = (v as { provider?: unknown }).provider;
    return { ...v, protocol: (SAML_PROVIDERS as readonly unknown[]).includes(provider) ? 'saml' : 'oidc' };
  },
  z.discriminatedUnion('protocol', [OidcSettings, SamlSettings]),
);

const Settings = z
  .object({
    id: z.string(), protocol: z.enum(['oidc', 'saml']), provider: z.string(), issuerUrl: z.string().nullable(), issuer: z.string(),
    clientId: z.string().nullable(), clientSecret: z.string().nullable(), hasClientSecret: z.boolean(), scopes: z.string().nullable(),
    enabled: z.boolean(), allowJitProvisioning: z.boolean(), defaultRole: z.string(), allowedDomains: z.array(z.string()).nullable(),
    allowIdpInitiated: z.boolean(), configVersion: z.number(),
    lastTest: z.object({ ok: z.boolean(), at: z.string() }).nullable().openapi({ description: 'The last test of these saved settings (POST …/settings/sso/test without a body); null when never tested or saved since. The dashboard offers authRequired "sso" only while ok is true' }),
    signOutOfIdp: z.boolean(),
    storeIdpTokens: z.boolean().openapi({ description: 'OIDC: whether the IdP tokens are kept for the app (always false for SAML)' }),
    universalLogout: z.object({ enabled: z.boolean(), issuer: z.string().nullable(), subject: z.string().nullable() }),
    universalLogoutUri: z.string().openapi({ description: 'Okta Universal Logout (Global Token Revocation) endpoint to enter in the Okta app' }),
    postLogoutRedirectUri: z.string().openapi({ description: 'Where the IdP sends the browser after signing it out (register it at the IdP for signOutOfIdp)' }),
    backchannelLogoutUri: z.string().optional().openapi({ description: "OIDC only: the back-channel logout URI to register at the IdP" }),
    sloUrl: z.string().optional().openapi({ description: 'SAML only: the SP Single Logout service (Redirect and POST bindings)' }),
    idpSloUrl: z.string().nullable().optional(),
    redirectUri: z.string().openapi({ description: 'The redirect URI to register at the IdP: per redirectUriMode, dedicated {base}/api/auth/sso/callback/{organizationId} or shared {base}/api/auth/sso/callback' }),
    loginUrl: z.string(), initiateLoginUri: z.string(),
    redirectUriMode: z.enum(OIDC_REDIRECT_MODES).optional().openapi({ description: 'OIDC only: the stored mode, or the deployment default for connections saved before it was stored' }),
    mixUpProtection: z.enum(MIX_UP_PROTECTIONS).optional().openapi({ description: 'OIDC only: what stops another organization\'s IdP from having this IdP\'s codes sent to it (OAuth mix-up): "dedicated" (own redirect URI), "iss" (shared URI, IdP sends RFC 9207 iss), "par" (shared URI, requests pushed per RFC 9126; protects only if the IdP app requires PAR), "none"' }),
    allowedTenants: z.array(z.string()).nullable().optional().openapi({ description: 'OIDC only: the accepted Entra ID tenants of a multi-tenant issuer; null otherwise' }),
    idpEntityId: z.string().optional(), idpSsoUrl: z.string().optional(),
    idpCertificates: z.array(z.object({ fingerprintSha256: z.string(), subject: z.string(), notAfter: z.string() })).optional(),
    idpMetadataUrl: z.string().nullable().optional(), spEntityId: z.string().optional(), acsUrl: z.string().optional(), spMetadataUrl: z.string().optional(),
    spCertificate: z.string().optional(), attributeMapping: z.record(z.string(), z.array(z.string())).optional(),
    signAuthnRequests: z.boolean().optional(), authnRequestBinding: z.enum(['redirect', 'post']).optional(),
    createdAt: z.string(), updatedAt: z.string(),
  })
  .openapi('SsoSettings');

const ServiceProvider = z
  .object({
    redirectUri: z.string().openapi({ description: 'OIDC redirect URI for the mode below' }),
    redirectUriMode: z.enum(OIDC_REDIRECT_MODES).openapi({ description: "The saved OIDC connection's mode, else the deployment default" }),
    acsUrl: z.string(), spEntityId: z.string(), spMetadataUrl: z.string(), sloUrl: z.string(),
    loginUrl: z.string(), initiateLoginUri: z.string(),
    backchannelLogoutUri: z.string(), universalLogoutUri: z.string(), postLogoutRedirectUri: z.string(),
  })
  .openapi('SsoServiceProvider');

const CheckResult = z.object({ name: z.string(), ok: z.boolean(), message: z.string() });
const TestWarning = z.object({ name: z.string(), message: z.string() }).openapi({ description: 'Not a failure, but something the owner should act on (mix_up_protection when mixUpProtection is "none" or an unenforced "par"; shared_redirect_uri for a dedicated connection while the deployment also serves the shared redirect URI)' });
const TestResult = z.object({
  success: z.literal(true), message: z.string(), checks: z.array(CheckResult),
  warnings: z.array(TestWarning).optional().openapi({ description: 'OIDC: present, possibly empty' }),
  mixUpProtection: z.enum(MIX_UP_PROTECTIONS).nullable().optional(),
});
const IdpTokens = z
  .object({
    status: z.enum(IDP_TOKEN_STATUSES).openapi({ description: 'valid; expired (the access token expired: refreshed on use or by the sweep when there is a refresh token); refresh_failed (the IdP refused the refresh: the user must sign in again); revoked (Universal Logout)' }),
    accessTokenExpiresAt: z.string().nullable(),
    scopes: z.array(z.string()),
    obtainedAt: z.string().openapi({ description: 'The login that brought them' }),
    lastRefreshedAt: z.string().nullable(),
    lastRefreshError: z.string().nullable().openapi({ description: "Why the last refresh did not succeed (the IdP's error), or null" }),
  })
  .openapi('IdpTokens');
const Identity = z
  .object({
    id: z.string(),
    user: z.object({ id: z.string(), email: z.string(), name: z.string().nullable() }),
    connection: z.object({ id: z.string(), provider: z.string(), protocol: z.string(), active: z.boolean() }),
    subject: z.string(), email: z.string().nullable(), lastLoginAt: z.string(), createdAt: z.string(), claims: z.record(z.string(), z.unknown()),
    idpTokens: IdpTokens.nullable().openapi({ description: 'The IdP tokens kept for the app (storeIdpTokens), never a token; null when none are kept' }),
  })
  .openapi('SsoIdentity');
const IdpToken = z
  .object({
    accessToken: z.string().openapi({ description: "The IdP's access token (e.g. a Microsoft Graph token), good for at least a minute unless the IdP said no expiry" }),
    expiresAt: z.string().nullable().openapi({ description: 'null: the IdP gave no expires_in' }),
    scopes: z.array(z.string()),
  })
  .openapi('IdpToken');

const ORG = '/api/user/organizations/{organizationId}';

export function registerSsoSettingsRoutes(app: OpenAPIHono<AppEnv>, services: Services) {
  const tags = ['SSO settings'];
  app.openapi(
    createRoute({ method: 'get', path: `${ORG}/settings/sso`, tags, summary: 'The SSO connection, redacted, with the URLs to paste into the IdP (owner)', request: { params: OrgParams }, responses: responses(Settings, 'Settings', [400, 401, 403, 404]) }),
    async (c) => ok(c, await services.connections.get(ctxOf(c), c.req.valid('param').organizationId)),
  );

  app.openapi(
    createRoute({
      method: 'put', path: `${ORG}/settings/sso`, tags, summary: 'Configure (replace) the SSO connection (owner); OIDC is checked against the IdP’s discovery, SAML certificates and URLs are validated',
      request: { params: OrgParams, body: { required: true, content: { 'application/json': { schema: SsoSettingsBody } } } },
      responses: responses(Settings, 'Saved', [400, 401, 403, 404, 422]),
    }),
    async (c) => {
      const { organizationId } = c.req.valid('param');
      const body = c.req.valid('json');
      const saved = body.protocol === 'saml'
        ? await services.connections.putSaml(ctxOf(c), organizationId, body)
        : await services.connections.putOidc(ctxOf(c), organizationId, body);
      return ok(c, saved, { message: 'SSO connection saved' });
    },
  );

  app.openapi(
    createRoute({ method: 'delete', path: `${ORG}/settings/sso`, tags, summary: 'Remove SSO (lowers authRequired "sso" to "any") (owner)', request: { params: OrgParams }, responses: responses(Empty, 'Removed', [400, 401, 403, 404]) }),
    async (c) => {
      await services.connections.remove(ctxOf(c), c.req.valid('param').organizationId);
      return ok(c, null, { message: 'SSO connection removed' });
    },
  );

  app.openapi(
    createRoute({
      method: 'post', path: `${ORG}/settings/sso/test`, tags,
      summary: 'Test SSO settings against the IdP (owner); never creates a session. No body: the saved connection, the result kept as lastTest. A body of the PUT shape: those settings, nothing saved (a dry run)',
      request: { params: OrgParams, body: { required: false, content: { 'application/json': { schema: SsoSettingsBody } } } },
      responses: responses(TestResult, 'Every check passed (OIDC: with warnings, e.g. mixUpProtection "none")', [400, 401, 403, 404, 409, 422]),
    }),
    async (c) => {
      const { organizationId } = c.req.valid('param');
      // A body is validated only when one is sent (Content-Type set); an empty POST tests the saved connection.
      const body = c.req.header('content-type') ? c.req.valid('json') : undefined;
      return ok(c, await services.connections.test(ctxOf(c), organizationId, body), { message: 'SSO configuration is valid' });
    },
  );

  app.openapi(
    createRoute({
      method: 'get', path: `${ORG}/settings/sso/service-provider`, tags,
      summary: 'The values to paste into the IdP, before any connection exists (owner; a setup link with scope sso)',
      request: { params: OrgParams }, responses: responses(ServiceProvider, 'Values', [400, 401, 403, 404]),
    }),
    async (c) => ok(c, await services.connections.serviceProvider(ctxOf(c), c.req.valid('param').organizationId)),
  );

  app.openapi(
    createRoute({ method: 'get', path: `${ORG}/sso/identities`, tags: ['SSO identities'], summary: 'Linked IdP identities (owner, admin)', request: { params: OrgParams, query: pageQuery }, responses: responses(pageOf(Identity), 'Identities, newest first', [400, 401, 403, 404]) }),
    async (c) => ok(c, await services.identities.list(ctxOf(c), c.req.valid('param').organizationId, pageParams(c.req.valid('query')))),
  );

  app.openapi(
    createRoute({
      method: 'get', path: `${ORG}/sso/identities/{identityId}/idp-token`, tags: ['SSO identities'],
      summary: "The user's IdP access token for the app's backend (owner, admin; an API key needs the scope sso:idp-tokens, which a full-access key does not have); refreshed first when it expires within a minute; audited without the token",
      request: { params: z.object({ organizationId: Ulid, identityId: Ulid }).strict() }, responses: responses(IdpToken, 'The access token', [400, 401, 403, 404, 409, 502]),
    }),
    async (c) => {
      const { organizationId, identityId } = c.req.valid('param');
      const token = await services.idpTokens.getForApp(ctxOf(c), organizationId, identityId);
      c.header('Cache-Control', 'no-store');
      return ok(c, token);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete', path: `${ORG}/sso/identities/{identityId}`, tags: ['SSO identities'], summary: 'Unlink an IdP identity (owner, admin); ends the SSO sessions it created (the user\'s sessions through its connection) and erases its IdP tokens',
      request: { params: z.object({ organizationId: Ulid, identityId: Ulid }).strict() }, responses: responses(Empty, 'Unlinked', [400, 401, 403, 404]),
    }),
    async (c) => {
      const { organizationId, identityId } = c.req.valid('param');
      const { sessionsRevoked } = await services.identities.unlink(ctxOf(c), organizationId, identityId);
      return ok(c, null, { message: `Identity unlinked; ${sessionsRevoked} session(s) it created ended` });
    },
  );
}
