import type { Clock } from '../../clock.js';
import type { Config } from '../../config.js';
import type { Ctx } from '../../context.js';
import type { Db, Executor } from '../../db/database.js';
import type { Role } from '../../db/schema.js';
import type { KeyRing } from '../../crypto/keyring.js';
import { sealContext } from '../../crypto/sealed-columns.js';
import { AppError, notFound } from '../../http/errors.js';
import { normalizeDomain } from '../../domains/normalize.js';
import { newId } from '../../ids.js';
import type { AuditService } from '../../audit/service.js';
import type { OrganizationService } from '../../organizations/service.js';
import { updateOrganization } from '../../organizations/store.js';
import { MetadataError, signingKeys, type Discovery, type OidcMetadata } from '../oidc/metadata.js';
import { mixUpProtection, type MixUpProtection } from '../oidc/mix-up.js';
import { OIDC_SHARED_CALLBACK_PATH, oidcLoginUrls, oidcRedirectUri } from '../oidc/urls.js';
import type { OutboundFetch } from '../outbound.js';
import type { RateLimits } from '../../http/rate-limit.js';
import { generateSpKeyPair, parseCertificate } from '../saml/certs.js';
import { samlUrls } from '../saml/urls.js';
import { normalizeMapping, resolveIdp, samlChecks, type SamlCheck, type SamlSettingsInput } from '../saml/settings.js';
import type { OidcRedirectMode } from '../../config.js';
import {
  DEFAULT_SCOPES, isTemplatedIssuer, normalizeIssuerUrl, parseConnection, redirectUriModeOf, UNIVERSAL_LOGOUT_DEFAULTS,
  type Connection, type OidcConfig, type OidcProvider, type SamlConfig, type UniversalLogoutSettings,
} from './model.js';
import { logoutUrls } from '../../logout/urls.js';
import { deleteIdpTokensOfConnection } from '../idp-tokens/store.js';
import { findActiveConnection, findActiveConnectionBySlug, insertConnection, markReplaced, setLastTest, updateConnection, type ConnectionRow, type ConnectionWithOrganization } from './store.js';

export type { SamlSettingsInput };

export interface OidcSettingsInput {
  provider: OidcProvider;
  issuerUrl: string;
  clientId: string;
  clientSecret?: string | undefined;
  scopes?: string | string[] | undefined;
  enabled?: boolean | undefined;
  allowJitProvisioning?: boolean | undefined;
  defaultRole?: Exclude<Role, 'owner'> | undefined;
  allowedDomains?: string[] | null | undefined;
  allowIdpInitiated?: boolean | undefined;
  /** SPEC §12; omitted: the deployment default (GATEHOUSE_OIDC_REDIRECT_MODE), stored as such. */
  redirectUriMode?: OidcRedirectMode | undefined;
  /** SPEC §12: required (tenant GUIDs) when the discovered issuer is a multi-tenant template; refused otherwise. */
  allowedTenants?: string[] | undefined;
  signOutOfIdp?: boolean | undefined;
  universalLogout?: UniversalLogoutInput | undefined;
  /** SPEC §9 (default false). */
  storeIdpTokens?: boolean | undefined;
}

/** SPEC §8: omitted members take the defaults (enabled, the default issuer and subject). */
export interface UniversalLogoutInput {
  enabled?: boolean | undefined;
  issuer?: string | null | undefined;
  subject?: string | null | undefined;
}

/** The logout settings of a PUT, defaults filled in (stored with the connection's config). */
export function logoutSettingsOf(input: { signOutOfIdp?: boolean | undefined; universalLogout?: UniversalLogoutInput | undefined }): { signOutOfIdp: boolean; universalLogout: UniversalLogoutSettings } {
  const ul = input.universalLogout ?? {};
  return {
    signOutOfIdp: input.signOutOfIdp ?? false,
    universalLogout: { enabled: ul.enabled ?? UNIVERSAL_LOGOUT_DEFAULTS.enabled, issuer: ul.issuer ?? null, subject: ul.subject ?? null },
  };
}

export interface Check {
  name: 'discovery' | 'issuer' | 'endpoints' | 'jwks' | 'signing_key' | 'allowed_tenants' | 'mix_up_protection';
  ok: boolean;
  message: string;
}

/** Something the test endpoint wants the owner to know that does not make the configuration invalid. */
export interface Warning {
  name: 'mix_up_protection' | 'shared_redirect_uri';
  message: string;
}

export const REDACTED = '••••••••';
const SECRET_CONTEXT = { table: 'sso_connections', column: 'secret_enc' } as const;

/** A body of the PUT shape, its protocol named (the route's schema sets it). */
export type SettingsInput = (OidcSettingsInput & { protocol: 'oidc' }) | SamlSettingsInput;

export function createConnectionService(deps: {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'baseUrl' | 'allowLoopbackIdps' | 'oidcRedirectMode' | 'oidcSharedRedirect'>;
  keyring: KeyRing;
  audit: AuditService;
  organizations: OrganizationService;
  oidcMetadata: OidcMetadata;
  outbound: OutboundFetch;
  rateLimits: Pick<RateLimits, 'consume'>;
}) {
  const { db, clock, keyring } = deps;

  /**
   * The OIDC values to paste into the IdP, and the mix-up protection that the redirect URI mode
   * and the IdP's discovery give (SPEC §12). `discovery` null: not known (shared mode then says
   * only what Gatehouse itself guarantees).
   */
  function oidcView(c: Connection, slug: string, discovery: Discovery | null) {
    const mode = c.oidc ? redirectUriModeOf(c.oidc, deps.config) : deps.config.oidcRedirectMode;
    return {
      redirectUri: oidcRedirectUri(deps.config.baseUrl, mode, c.organizationId),
      ...oidcLoginUrls(deps.config.baseUrl, slug),
      ...(c.oidc
        ? { redirectUriMode: mode, mixUpProtection: mixUpProtection(mode, discovery), allowedTenants: c.oidc.allowedTenants ?? null, backchannelLogoutUri: logoutUrls(deps.config.baseUrl).backchannelLogoutUri }
        : {}),
    };
  }

  /** Discovery for the view: only shared mode needs it, from the per-instance cache; an unreachable IdP does not fail a GET. */
  async function discoveryForView(c: Connection): Promise<Discovery | null> {
    if (!c.oidc || redirectUriModeOf(c.oidc, deps.config) !== 'shared') return null;
    try {
      return await deps.oidcMetadata.discover(c.oidc.issuerUrl);
    } catch (e) {
      if (e instanceof MetadataError) return null;
      throw e;
    }
  }

  function samlView(c: Connection, slug: string) {
    const saml = c.saml;
    if (!saml) return {};
    const urls = samlUrls(deps.config.baseUrl, slug, saml.spEntityId);
    return {
      idpEntityId: saml.idpEntityId,
      idpSsoUrl: saml.idpSsoUrl,
      idpCertificates: saml.idpCertificates.map((pem) => {
        const info = parseCertificate(pem);
        return { fingerprintSha256: info.fingerprintSha256, subject: info.subject, notAfter: info.notAfter };
      }),
      idpMetadataUrl: saml.idpMetadataUrl,
      spEntityId: urls.spEntityId,
      acsUrl: urls.acsUrl,
      sloUrl: urls.sloUrl,
      idpSloUrl: saml.idpSloUrl ?? null,
      spMetadataUrl: urls.spMetadataUrl,
      spCertificate: saml.spCertificate,
      attributeMapping: saml.attributeMapping,
      signAuthnRequests: saml.signAuthnRequests,
      authnRequestBinding: saml.authnRequestBinding,
    };
  }

  function view(c: Connection, slug: string, discovery: Discovery | null = null) {
    const isSaml = c.protocol === 'saml';
    return {
      id: c.id,
      protocol: c.protocol,
      provider: c.provider,
      issuerUrl: c.oidc?.issuerUrl ?? null,
      issuer: c.issuer,
      clientId: c.oidc?.clientId ?? null,
      clientSecret: c.hasSecret && !isSaml ? REDACTED : null,
      hasClientSecret: c.hasSecret && !isSaml,
      scopes: c.oidc?.scopes.join(' ') ?? null,
      enabled: c.enabled,
      allowJitProvisioning: c.allowJitProvisioning,
      defaultRole: c.defaultRole,
      allowedDomains: c.allowedDomains,
      allowIdpInitiated: c.allowIdpInitiated,
      signOutOfIdp: c.signOutOfIdp,
      storeIdpTokens: c.storeIdpTokens,
      universalLogout: c.universalLogout,
      universalLogoutUri: logoutUrls(deps.config.baseUrl).universalLogoutUri,
      postLogoutRedirectUri: logoutUrls(deps.config.baseUrl).postLogoutRedirectUri,
      configVersion: c.configVersion,
      lastTest: c.lastTest,
      ...oidcView(c, slug, discovery),
      ...samlView(c, slug),
      createdAt: c.createdAt,
      updatedAt: c.updatedAt,
    };
  }

  /** Discovery and key checks, each reported on its own (SPEC §4.3 test). */
  async function runChecks(issuerUrl: string): Promise<{ checks: Check[]; issuer: string | null; discovery: Discovery | null }> {
    const checks: Check[] = [];
    const ok = (name: Check['name'], message: string) => checks.push({ name, ok: true, message });
    let doc;
    try {
      doc = await deps.oidcMetadata.discover(issuerUrl, { fresh: true });
    } catch (e) {
      if (!(e instanceof MetadataError)) throw e;
      const order: Check['name'][] = ['discovery', 'issuer', 'endpoints', 'jwks', 'signing_key'];
      for (const name of order.slice(0, order.indexOf(e.check))) ok(name, 'passed');
      checks.push({ name: e.check, ok: false, message: e.message });
      return { checks, issuer: null, discovery: null };
    }
    ok('discovery', `Discovery document fetched from ${issuerUrl}`);
    ok('issuer', `The IdP's issuer is ${doc.issuer}`);
    ok('endpoints', 'Authorization, token and JWKS endpoints are present');
    try {
      const jwks = await deps.oidcMetadata.jwks(doc.jwks_uri, { force: true });
      ok('jwks', `JWKS fetched from ${doc.jwks_uri}`);
      const n = signingKeys(jwks).length;
      checks.push(n > 0 ? { name: 'signing_key', ok: true, message: `${n} signing key(s) published` } : { name: 'signing_key', ok: false, message: 'The JWKS publishes no signing key' });
    } catch (e) {
      if (!(e instanceof MetadataError)) throw e;
      checks.push({ name: 'jwks', ok: false, message: e.message });
    }
    return { checks, issuer: doc.issuer, discovery: doc };
  }

  /** The SPEC §12 checks of a saved OIDC connection: tenants of a multi-tenant issuer, and what stops a mix-up. */
  function oidcSafetyChecks(oidc: OidcConfig, issuer: string, discovery: Discovery, oidcOrgId: string): { checks: Check[]; warnings: Warning[]; mixUp: MixUpProtection } {
    const checks: Check[] = [];
    const warnings: Warning[] = [];
    if (isTemplatedIssuer(issuer)) {
      const tenants = oidc.allowedTenants ?? [];
      checks.push(tenants.length
        ? { name: 'allowed_tenants', ok: true, message: `Multi-tenant issuer: only tokens from ${tenants.length === 1 ? 'tenant' : 'tenants'} ${tenants.join(', ')} are accepted` }
        : { name: 'allowed_tenants', ok: false, message: `The issuer ${issuer} accepts tokens from any Entra ID tenant: set allowedTenants to your tenant id(s), or no sign-in is accepted` });
    }
    const mode = redirectUriModeOf(oidc, deps.config);
    const mixUp = mixUpProtection(mode, discovery);
    const describe: Record<MixUpProtection, string> = {
      dedicated: 'This organization has its own redirect URI: codes of another organization\'s IdP cannot be redeemed through it',
      iss: 'Shared redirect URI; the IdP names itself in every answer (RFC 9207 iss), and an answer naming another IdP is refused',
      par: 'Shared redirect URI; every authorization request is pushed to the IdP first (RFC 9126 PAR)',
      none: 'Shared redirect URI, and the IdP supports neither RFC 9207 iss nor PAR: nothing stops a mix-up attack',
    };
    checks.push({ name: 'mix_up_protection', ok: true, message: describe[mixUp] });
    if (mixUp === 'dedicated' && deps.config.oidcSharedRedirect) {
      // The dedicated URI protects only if the IdP application does not still list the shared one
      // (a P1 registration): another organization in shared mode could then have this IdP's codes
      // delivered to its own flow. Gatehouse cannot see the IdP's list, so it says so.
      warnings.push({
        name: 'shared_redirect_uri',
        message: `This deployment also serves the shared redirect URI ${deps.config.baseUrl}${OIDC_SHARED_CALLBACK_PATH}: make sure this IdP application lists only ${oidcRedirectUri(deps.config.baseUrl, 'dedicated', oidcOrgId)}. A leftover registration of the shared one would let another organization's shared-mode sign-in receive this IdP's authorization codes. Operators who need no shared mode turn it off with GATEHOUSE_OIDC_SHARED_REDIRECT=false.`,
      });
    }
    if (mixUp === 'none') {
      warnings.push({ name: 'mix_up_protection', message: 'mixUpProtection is "none": with the shared redirect URI, the owner of another organization on this Gatehouse could run an IdP that sends your users to this IdP and has their authorization codes delivered to it (OAuth mix-up). Switch to redirectUriMode "dedicated" (paste the new redirectUri into the IdP application and remove the shared one).' });
    } else if (mixUp === 'par' && discovery.require_pushed_authorization_requests !== true) {
      warnings.push({ name: 'mix_up_protection', message: 'mixUpProtection is "par", which protects only if the IdP application requires pushed authorization requests, and the IdP\'s discovery does not say it does: turn on "require PAR" for this application at the IdP, or switch to redirectUriMode "dedicated".' });
    }
    return { checks, warnings, mixUp };
  }

  type Outcome = { ok: boolean; checks: (Check | SamlCheck)[]; warnings: Warning[] | null; mixUp: MixUpProtection | null };

  const samlOutcome = (checks: SamlCheck[]): Outcome => ({ ok: checks.every((x) => x.ok), checks, warnings: null, mixUp: null });

  /** Discovery and key checks, then (with a discovery) the tenant and mix-up checks of these settings. */
  async function oidcOutcome(oidc: OidcConfig, issuer: string | null, organizationId: string): Promise<Outcome> {
    const { checks, discovery, issuer: discovered } = await runChecks(oidc.issuerUrl);
    let warnings: Warning[] = [];
    let mixUp: MixUpProtection | null = null;
    const announced = issuer ?? discovered;
    if (discovery && announced) {
      const safety = oidcSafetyChecks(oidc, announced, discovery, organizationId);
      checks.push(...safety.checks);
      warnings = safety.warnings;
      mixUp = safety.mixUp;
    }
    return { ok: checks.every((x) => x.ok), checks, warnings, mixUp };
  }

  /** The answer of a test: every check (and warning) either way; a failure is SSO_TEST_FAILED with them in details. */
  function finish(o: Outcome) {
    const extra = o.warnings ? { warnings: o.warnings } : {};
    if (!o.ok) throw new AppError('SSO_TEST_FAILED', 'The SSO configuration test failed', { checks: o.checks, ...extra });
    return { success: true as const, message: 'SSO configuration is valid', checks: o.checks, ...extra, ...(o.warnings ? { mixUpProtection: o.mixUp } : {}) };
  }

  /** The checks of settings not saved (the same validation a save does, nothing written, no key pair made). */
  async function dryRun(organization: { id: string; slug: string }, input: SettingsInput) {
    if (input.protocol === 'saml') {
      const idp = await resolveIdp(input, { outbound: deps.outbound, allowLoopbackIdps: deps.config.allowLoopbackIdps, now: clock.now() });
      const urls = samlUrls(deps.config.baseUrl, organization.slug, input.spEntityId?.trim() || null);
      const checks = samlChecks({ idpEntityId: idp.idpEntityId, idpSsoUrl: idp.idpSsoUrl, idpCertificates: idp.certificates.map((c) => c.pem), attributeMapping: normalizeMapping(input.attributeMapping) }, urls, { allowLoopbackIdps: deps.config.allowLoopbackIdps, now: clock.now() });
      return finish(samlOutcome(checks));
    }
    const issuerUrl = checkedIssuerUrl(input.issuerUrl);
    const oidc: OidcConfig = {
      protocol: 'oidc', issuerUrl, clientId: input.clientId, scopes: normalizeScopes(input.scopes),
      redirectUriMode: input.redirectUriMode ?? deps.config.oidcRedirectMode,
      ...(input.allowedTenants ? { allowedTenants: input.allowedTenants } : {}),
      ...logoutSettingsOf(input),
      storeIdpTokens: input.storeIdpTokens ?? false,
    };
    return finish(await oidcOutcome(oidc, null, organization.id));
  }

  /** An issuer URL without a pasted discovery suffix, https unless loopback IdPs are allowed (tests). */
  function checkedIssuerUrl(raw: string): string {
    const issuerUrl = normalizeIssuerUrl(raw);
    const scheme = new URL(issuerUrl).protocol;
    if (scheme !== 'https:' && !(deps.config.allowLoopbackIdps && scheme === 'http:')) {
      throw new AppError('VALIDATION_FAILED', 'issuerUrl must be an https URL', { issues: [{ path: 'issuerUrl', code: 'custom', message: 'must use https' }] });
    }
    return issuerUrl;
  }

  return {
    async get(ctx: Ctx, organizationId: string) {
      const { organization } = await deps.organizations.requireAccess(ctx, organizationId, 'sso:manage');
      const row = await findActiveConnection(db, organizationId);
      if (!row) throw notFound('SSO connection');
      const connection = parseConnection(row);
      return view(connection, organization.slug, await discoveryForView(connection));
    },

    /**
     * Replace the organization's connection (SPEC §11 "Settings writes"). Same protocol and
     * issuer: updated in place, config version bumped. Another IdP: the old connection is kept
     * as `replaced` (its identities stay listed until unlinked) and a new one becomes active,
     * so a subject from the new IdP can never sign in as an identity of the old one.
     */
    async putOidc(ctx: Ctx, organizationId: string, given: OidcSettingsInput) {
      const { organization } = await deps.organizations.requireAccess(ctx, organizationId, 'sso:manage');
      const input = throughSetupLink(ctx) ? { ...given, enabled: false } : given;
      refuseDisablingRequiredSso(organization, input.enabled);
      const issuerUrl = checkedIssuerUrl(input.issuerUrl);
      const scopes = normalizeScopes(input.scopes);
      const { checks, issuer, discovery } = await runChecks(issuerUrl);
      const failed = checks.filter((c) => !c.ok);
      if (failed.length || !issuer || !discovery) {
        throw new AppError('SSO_TEST_FAILED', `The IdP configuration could not be verified: ${failed.map((c) => c.message).join('; ')}`, { checks });
      }
      if (input.redirectUriMode === 'shared' && !deps.config.oidcSharedRedirect) {
        throw new AppError('VALIDATION_FAILED', 'This deployment does not serve the shared redirect URI (GATEHOUSE_OIDC_SHARED_REDIRECT=false): use redirectUriMode "dedicated"', {
          issues: [{ path: 'redirectUriMode', code: 'custom', message: 'shared is turned off on this deployment' }],
        });
      }
      const allowedTenants = checkAllowedTenants(issuer, input.allowedTenants);
      const oidcConfig: OidcConfig = {
        protocol: 'oidc', issuerUrl, clientId: input.clientId, scopes,
        // Stored, so a later change of the deployment default does not move a working connection.
        redirectUriMode: input.redirectUriMode ?? deps.config.oidcRedirectMode,
        ...(allowedTenants ? { allowedTenants } : {}),
        ...logoutSettingsOf(input),
        storeIdpTokens: input.storeIdpTokens ?? false,
      };
      const now = clock.now().toISOString();
      return db.transaction().execute(async (tx) => {
        const current = await findActiveConnection(tx, organizationId);
        refuseLinkOverEnabled(ctx, current);
        const sameIdp = current && current.protocol === 'oidc' && current.issuer === issuer && parseConnection(current).oidc?.issuerUrl === issuerUrl;
        if (!input.clientSecret && !sameIdp) {
          throw new AppError('VALIDATION_FAILED', 'clientSecret is required for a new connection', { issues: [{ path: 'clientSecret', code: 'custom', message: 'required for a new connection' }] });
        }
        const id = sameIdp ? current.id : newId();
        const sealed = input.clientSecret ? keyring.encrypt(input.clientSecret, sealContext(SECRET_CONTEXT, id)) : (current?.secret_enc ?? null);
        const row: ConnectionRow = {
          id,
          protocol: 'oidc',
          provider: input.provider,
          issuer,
          config: JSON.stringify(oidcConfig),
          secret_enc: sealed,
          ...commonColumns(organizationId, input, current, Boolean(sameIdp), now),
        };
        const replacedTokens = await writeConnection(tx, row, current, Boolean(sameIdp), now);
        // SPEC §9: tokens the admin no longer wants kept, or of another client (its refresh tokens are the old client's), are erased.
        const storedTokensVoid = sameIdp && (!oidcConfig.storeIdpTokens || parseConnection(current).oidc?.clientId !== input.clientId);
        const idpVaultErased = replacedTokens + (storedTokensVoid ? await deleteIdpTokensOfConnection(tx, id) : 0);
        await deps.audit.record(tx, ctx, {
          action: sameIdp ? 'sso.connection_updated' : 'sso.connection_created',
          organizationId,
          target: { type: 'sso_connection', id },
          metadata: {
            idpVault: oidcConfig.storeIdpTokens ?? false, idpVaultErased,
            provider: input.provider, issuer, clientId: input.clientId, scopes: scopes.join(' '), enabled: row.enabled === 1,
            allowJitProvisioning: row.allow_jit === 1, defaultRole: row.default_role, allowedDomains: input.allowedDomains ?? null,
            allowIdpInitiated: row.allow_idp_initiated === 1, clientSecretChanged: Boolean(input.clientSecret),
            redirectUriMode: oidcConfig.redirectUriMode, allowedTenants: allowedTenants ?? null,
            configVersion: row.config_version, ...(current && !sameIdp ? { replacedConnectionId: current.id } : {}),
          },
        });
        return view(parseConnection(row), organization.slug, discovery);
      });
    },

    /**
     * Replace the organization's connection with a SAML one. Same IdP entity ID: updated in
     * place. Another IdP: a new connection (identities of the old one cannot sign in through it).
     * The organization's SP key pair is created with its first SAML connection and carried over
     * (re-sealed to the new row) when the IdP changes.
     */
    async putSaml(ctx: Ctx, organizationId: string, given: SamlSettingsInput) {
      const { organization } = await deps.organizations.requireAccess(ctx, organizationId, 'sso:manage');
      const input = throughSetupLink(ctx) ? { ...given, enabled: false } : given;
      refuseDisablingRequiredSso(organization, input.enabled);
      const now = clock.now();
      const before = await findActiveConnection(db, organizationId);
      const idp = await resolveIdp(keepingStoredCertificates(input, before), { outbound: deps.outbound, allowLoopbackIdps: deps.config.allowLoopbackIdps, now });
      const attributeMapping = normalizeMapping(input.attributeMapping);
      const spEntityId = input.spEntityId?.trim() || null;
      const stamp = now.toISOString();
      // The key pair (RSA generation takes a while) is made before the transaction, off the event
      // loop, and only when the organization has no SAML key yet.
      const fresh = before?.protocol === 'saml' && before.secret_enc ? null : await generateSpKeyPair(`Gatehouse SP ${organization.slug}`, now);
      return db.transaction().execute(async (tx) => {
        const current = await findActiveConnection(tx, organizationId);
        refuseLinkOverEnabled(ctx, current);
        const currentSaml = current && current.protocol === 'saml' ? parseConnection(current) : null;
        const sameIdp = currentSaml !== null && current!.issuer === idp.idpEntityId;
        const id = sameIdp ? current!.id : newId();
        let sealedKey: string;
        let certificatePem: string;
        if (currentSaml?.saml && currentSaml.secretSealed) {
          // Kept: sealed as it is for the same row, re-sealed to the new row when the IdP changes.
          sealedKey = sameIdp ? currentSaml.secretSealed : keyring.encrypt(keyring.decrypt(currentSaml.secretSealed, sealContext(SECRET_CONTEXT, currentSaml.id)), sealContext(SECRET_CONTEXT, id));
          certificatePem = currentSaml.saml.spCertificate;
        } else {
          const pair = fresh ?? (await generateSpKeyPair(`Gatehouse SP ${organization.slug}`, now)); // (a concurrent save changed the row)
          sealedKey = keyring.encrypt(pair.privateKeyPem, sealContext(SECRET_CONTEXT, id));
          certificatePem = pair.certificatePem;
        }
        const config: SamlConfig = {
          protocol: 'saml',
          idpEntityId: idp.idpEntityId,
          idpSsoUrl: idp.idpSsoUrl,
          idpCertificates: idp.certificates.map((c) => c.pem),
          spEntityId,
          attributeMapping,
          signAuthnRequests: input.signAuthnRequests ?? false,
          authnRequestBinding: input.authnRequestBinding ?? 'redirect',
          spCertificate: certificatePem,
          idpMetadataUrl: idp.idpMetadataUrl,
          idpSloUrl: idp.idpSloUrl,
          ...logoutSettingsOf(input),
        };
        const row: ConnectionRow = {
          id,
          protocol: 'saml',
          provider: input.provider,
          issuer: idp.idpEntityId,
          config: JSON.stringify(config),
          secret_enc: sealedKey,
          ...commonColumns(organizationId, input, current ?? undefined, sameIdp, stamp),
        };
        const idpVaultErased = await writeConnection(tx, row, current, sameIdp, stamp);
        await deps.audit.record(tx, ctx, {
          action: sameIdp ? 'sso.connection_updated' : 'sso.connection_created',
          organizationId,
          target: { type: 'sso_connection', id },
          metadata: {
            protocol: 'saml', provider: input.provider, idpEntityId: idp.idpEntityId, idpSsoUrl: idp.idpSsoUrl,
            idpCertificateFingerprints: idp.certificates.map((c) => c.fingerprintSha256), spEntityId, attributeMapping,
            signAuthnRequests: config.signAuthnRequests, authnRequestBinding: config.authnRequestBinding, enabled: row.enabled === 1,
            allowJitProvisioning: row.allow_jit === 1, defaultRole: row.default_role, allowedDomains: input.allowedDomains ?? null,
            allowIdpInitiated: row.allow_idp_initiated === 1, configVersion: row.config_version,
            ...(current && !sameIdp ? { replacedConnectionId: current.id, idpVaultErased } : {}),
          },
        });
        return view(parseConnection(row), organization.slug);
      });
    },

    async remove(ctx: Ctx, organizationId: string): Promise<void> {
      const { organization } = await deps.organizations.requireAccess(ctx, organizationId, 'sso:manage');
      const now = clock.now().toISOString();
      await db.transaction().execute(async (tx) => {
        const current = await findActiveConnection(tx, organizationId);
        if (!current) throw notFound('SSO connection');
        await markReplaced(tx, current.id, now);
        const idpVaultErased = await deleteIdpTokensOfConnection(tx, current.id);
        await deps.audit.record(tx, ctx, { action: 'sso.connection_deleted', organizationId, target: { type: 'sso_connection', id: current.id }, metadata: { idpVaultErased } });
        if (organization.auth_required === 'sso') {
          await updateOrganization(tx, organizationId, { auth_required: 'any', updated_at: now });
          await deps.audit.record(tx, ctx, {
            action: 'organization.security_updated',
            organizationId,
            target: { type: 'organization', id: organizationId },
            // The same shape as a PUT settings/security (policy/service.ts), plus why it happened.
            metadata: {
              from: { authRequired: 'sso', requireMfa: organization.require_mfa === 1 },
              to: { authRequired: 'any', requireMfa: organization.require_mfa === 1 },
              direction: 'lowered',
              reason: 'sso_connection_deleted',
            },
          });
        }
      });
    },

    /**
     * Test the saved settings (no input; the result is kept as lastTest, SPEC §5), or a body of the
     * PUT shape without saving anything (a dry run: the dashboard's and setup link's "Test").
     */
    async test(ctx: Ctx, organizationId: string, input?: SettingsInput) {
      const { organization } = await deps.organizations.requireAccess(ctx, organizationId, 'sso:manage');
      await deps.rateLimits.consume('sso-test:organization', organizationId);
      if (input) return dryRun(organization, input);
      const row = await findActiveConnection(db, organizationId);
      if (!row) throw new AppError('SSO_NOT_CONFIGURED', 'This organization has no SSO connection to test');
      const c = parseConnection(row);
      const outcome = c.saml
        ? samlOutcome(samlChecks(c.saml, samlUrls(deps.config.baseUrl, organization.slug, c.saml.spEntityId), { allowLoopbackIdps: deps.config.allowLoopbackIdps, now: clock.now() }))
        : await oidcOutcome(c.oidc!, c.issuer, organizationId);
      // Only the version tested is marked: a save in between leaves the new version untested.
      await setLastTest(db, row.id, row.config_version, { ok: outcome.ok, at: clock.now().toISOString() });
      return finish(outcome);
    },

    /** SPEC §5: every value an admin pastes into an IdP, before any connection exists (for the saved one's mode and SP entity ID when there is one). */
    async serviceProvider(ctx: Ctx, organizationId: string) {
      const { organization } = await deps.organizations.requireAccess(ctx, organizationId, 'sso:manage');
      const row = await findActiveConnection(db, organizationId);
      const c = row ? parseConnection(row) : null;
      const mode = c?.oidc ? redirectUriModeOf(c.oidc, deps.config) : deps.config.oidcRedirectMode;
      const saml = samlUrls(deps.config.baseUrl, organization.slug, c?.saml?.spEntityId ?? null);
      const logout = logoutUrls(deps.config.baseUrl);
      return {
        redirectUri: oidcRedirectUri(deps.config.baseUrl, mode, organizationId),
        redirectUriMode: mode,
        acsUrl: saml.acsUrl,
        spEntityId: saml.spEntityId,
        spMetadataUrl: saml.spMetadataUrl,
        sloUrl: saml.sloUrl,
        ...oidcLoginUrls(deps.config.baseUrl, organization.slug),
        backchannelLogoutUri: logout.backchannelLogoutUri,
        universalLogoutUri: logout.universalLogoutUri,
        postLogoutRedirectUri: logout.postLogoutRedirectUri,
      };
    },

    /** The organization's SP private key (PEM) of a SAML connection (only the SAML login path calls this). */
    spPrivateKey(c: Connection): string {
      if (!c.saml || !c.secretSealed) throw new Error(`connection ${c.id} has no SP key`);
      return keyring.decrypt(c.secretSealed, sealContext(SECRET_CONTEXT, c.id));
    },

    /**
     * The active connection behind a login URL, with its organization (undefined: none). The
     * login start reads it once and hands it to the protocol's startLogin, which would otherwise
     * read it again.
     */
    activeForSlug(slug: string): Promise<ConnectionWithOrganization | undefined> {
      return findActiveConnectionBySlug(db, slug);
    },

    /** The decrypted client secret of a connection (only the login path calls this). */
    clientSecret(c: Connection): string {
      if (!c.secretSealed) throw new Error(`connection ${c.id} has no client secret`);
      return keyring.decrypt(c.secretSealed, sealContext(SECRET_CONTEXT, c.id));
    },
  };
}

export type ConnectionService = ReturnType<typeof createConnectionService>;

/**
 * A SAML PUT that names the saved IdP (same idpEntityId) and gives neither certificates nor
 * metadata keeps the stored certificates and Single Logout URL, as an OIDC PUT without
 * clientSecret keeps the secret: enabling or changing a setting needs no certificate again.
 */
function keepingStoredCertificates(input: SamlSettingsInput, current: ConnectionRow | undefined): SamlSettingsInput {
  if (input.idpCertificate !== undefined || input.idpMetadataXml || input.idpMetadataUrl || !current || current.protocol !== 'saml') return input;
  const saved = parseConnection(current).saml;
  if (!saved || saved.idpEntityId !== input.idpEntityId?.trim()) return input;
  return { ...input, idpCertificate: saved.idpCertificates, ...(input.idpSloUrl === undefined ? { idpSloUrl: saved.idpSloUrl ?? null } : {}) };
}

/** The change is made through a setup link (SPEC §5), not by a member of the organization. */
const throughSetupLink = (ctx: Ctx) => !ctx.principal && Boolean(ctx.setupLink);

/**
 * A setup link is a bearer of the organization's trust in someone outside it (and its URL can
 * leak before it is opened). SSO linking trusts the IdP with every verified-domain account,
 * owners included, so what a link saves is kept disabled until an owner reviews and enables it in
 * the dashboard; and a link never replaces or changes a connection an owner has enabled.
 */
function refuseLinkOverEnabled(ctx: Ctx, current: ConnectionRow | undefined): void {
  if (throughSetupLink(ctx) && current && current.enabled === 1) {
    throw new AppError('CONFLICT', 'This organization already has an enabled SSO connection: only its owner can change it (in the dashboard)', { field: 'enabled' });
  }
}

/** SPEC §4.6 forbids requiring SSO without an enabled connection; disabling it afterwards would lock every member out. */
function refuseDisablingRequiredSso(organization: { auth_required: string }, enabled: boolean | undefined): void {
  if (enabled === false && organization.auth_required === 'sso') {
    throw new AppError('CONFLICT', 'This organization requires SSO: lower its sign-in policy (PUT settings/security) before disabling the connection, or nobody could sign in', { field: 'enabled' });
  }
}

/** The columns every protocol's settings share (SPEC §4.3 optional fields, with their defaults). */
function commonColumns(
  organizationId: string,
  input: { enabled?: boolean | undefined; allowJitProvisioning?: boolean | undefined; defaultRole?: 'admin' | 'member' | undefined; allowedDomains?: string[] | null | undefined; allowIdpInitiated?: boolean | undefined },
  current: ConnectionRow | undefined,
  sameIdp: boolean,
  now: string,
) {
  return {
    organization_id: organizationId,
    status: 'active' as const,
    enabled: input.enabled === false ? 0 : 1,
    // Every save bumps the version, which invalidates flows in flight (SPEC §11 "Settings writes").
    config_version: (current?.config_version ?? 0) + 1,
    allow_jit: input.allowJitProvisioning === false ? 0 : 1,
    default_role: input.defaultRole ?? 'member',
    allowed_domains: input.allowedDomains ? JSON.stringify(normalizeDomains(input.allowedDomains)) : null,
    allow_idp_initiated: input.allowIdpInitiated ? 1 : 0,
    // A save starts untested (lastTest is bound to the config version it tested).
    last_test_ok: null,
    last_test_at: null,
    last_test_version: null,
    created_at: sameIdp && current ? current.created_at : now,
    updated_at: now,
  } satisfies Partial<ConnectionRow>;
}

/**
 * Same IdP: update the row in place. Another IdP: the old connection is replaced (its secret and
 * its identities' IdP tokens erased, SPEC §9), a new one inserted. Returns how many identities'
 * IdP tokens were erased.
 */
async function writeConnection(tx: Executor, row: ConnectionRow, current: ConnectionRow | undefined, sameIdp: boolean, now: string): Promise<number> {
  if (sameIdp) {
    const { id: _id, created_at: _c, ...patch } = row;
    await updateConnection(tx, row.id, patch);
    return 0;
  }
  let erased = 0;
  if (current) {
    await markReplaced(tx, current.id, now);
    erased = await deleteIdpTokensOfConnection(tx, current.id);
  }
  await insertConnection(tx, row);
  return erased;
}

/**
 * SPEC §12: a multi-tenant (templated) issuer needs the tenants it may accept; a single tenant's
 * issuer already names its one tenant, so a list there is refused rather than silently ignored.
 */
function checkAllowedTenants(issuer: string, input: string[] | undefined): string[] | null {
  const tenants = [...new Set((input ?? []).map((t) => t.trim().toLowerCase()))];
  if (isTemplatedIssuer(issuer)) {
    if (tenants.length === 0) {
      throw new AppError('VALIDATION_FAILED', `The IdP's issuer ${issuer} is a multi-tenant template (Entra ID /common or /organizations): it would accept tokens from any tenant. Set allowedTenants to the tenant id(s) allowed to sign in.`, { issues: [{ path: 'allowedTenants', code: 'custom', message: 'required for a multi-tenant issuer: the tenant id(s) (GUIDs) allowed to sign in' }] });
    }
    return tenants;
  }
  if (tenants.length > 0) {
    throw new AppError('VALIDATION_FAILED', `allowedTenants applies only to a multi-tenant issuer; ${issuer} is a single tenant's`, { issues: [{ path: 'allowedTenants', code: 'custom', message: 'only for a multi-tenant issuer (Entra ID /common or /organizations)' }] });
  }
  return null;
}

function normalizeScopes(scopes: string | string[] | undefined): string[] {
  const list = scopes === undefined ? DEFAULT_SCOPES : Array.isArray(scopes) ? scopes : scopes.split(/\s+/);
  const set = [...new Set(list.map((s) => s.trim()).filter(Boolean))];
  if (!set.includes('openid')) set.unshift('openid');
  return set;
}

/** allowedDomains as the email domains they are compared with: IDNA ASCII where it normalises, else lower-cased. */
export function normalizeDomains(domains: string[]): string[] {
  const one = (d: string) => {
    const raw = d.trim().replace(/^@/, '').replace(/\.$/, '');
    try {
      return normalizeDomain(raw);
    } catch {
      return raw.toLowerCase();
    }
  };
  return [...new Set(domains.map(one).filter(Boolean))];
}
