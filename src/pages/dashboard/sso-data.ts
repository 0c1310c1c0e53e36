import type { Ctx } from '../../context.js';
import { AppError } from '../../http/errors.js';
import type { Services } from '../../services.js';

/** GET …/settings/sso/service-provider (SPEC §5): every value an admin pastes into an IdP, before any connection exists. */
export type ServiceProviderValues = Awaited<ReturnType<Services['connections']['serviceProvider']>>;
export type SsoSettingsView = Awaited<ReturnType<Services['connections']['get']>>;
export interface LastTest { ok: boolean; at: string }

/** The saved connection (redacted), or null when the organization has none. */
export async function savedConnection(services: Services, ctx: Ctx, orgId: string): Promise<SsoSettingsView | null> {
  try {
    return await services.connections.get(ctx, orgId);
  } catch (e) {
    if (e instanceof AppError && e.code === 'NOT_FOUND' && /SSO connection/i.test(e.message)) return null;
    throw e;
  }
}

/** `lastTest` of GET settings/sso (SPEC §5): the last test of the saved settings, or null. */
export function lastTestOf(view: SsoSettingsView | null): LastTest | null {
  return view?.lastTest ?? null;
}

/** The values to paste into the IdP (the service behind GET …/settings/sso/service-provider). */
export async function serviceProviderValues(services: Services, ctx: Ctx, orgId: string): Promise<ServiceProviderValues> {
  return services.connections.serviceProvider(ctx, orgId);
}

/**
 * The PUT body that re-saves the connection as it is, with `enabled` flipped. OIDC: the secret is
 * left out (the API keeps the stored one). SAML: only when its metadata came from a URL (the PUT
 * needs the IdP certificate again, and GET shows only fingerprints); null otherwise.
 */
export function toggleBody(view: SsoSettingsView): Record<string, unknown> | null {
  const common = {
    enabled: !view.enabled,
    allowJitProvisioning: view.allowJitProvisioning,
    defaultRole: view.defaultRole === 'admin' ? 'admin' : 'member',
    allowedDomains: view.allowedDomains,
    allowIdpInitiated: view.allowIdpInitiated,
    signOutOfIdp: view.signOutOfIdp,
    universalLogout: view.universalLogout,
  };
  if (view.protocol === 'saml') {
    // Without a metadata URL, the same idpEntityId and no certificate keep the stored certificates.
    const idp = view.idpMetadataUrl ? { idpMetadataUrl: view.idpMetadataUrl } : view.idpEntityId && view.idpSsoUrl ? { idpEntityId: view.idpEntityId, idpSsoUrl: view.idpSsoUrl } : null;
    if (!idp) return null;
    const mapping = Object.fromEntries(Object.entries(view.attributeMapping ?? {}).filter(([, names]) => Array.isArray(names) && names.length > 0));
    return {
      protocol: 'saml',
      provider: view.provider,
      ...idp,
      ...(view.idpSloUrl !== undefined && !view.idpMetadataUrl ? { idpSloUrl: view.idpSloUrl } : {}),
      ...(Object.keys(mapping).length ? { attributeMapping: mapping } : {}),
      ...(view.spEntityId && view.spEntityId !== view.spMetadataUrl ? { spEntityId: view.spEntityId } : {}),
      ...(view.signAuthnRequests !== undefined ? { signAuthnRequests: view.signAuthnRequests } : {}),
      ...(view.authnRequestBinding ? { authnRequestBinding: view.authnRequestBinding } : {}),
      ...common,
    };
  }
  if (!view.issuerUrl || !view.clientId) return null;
  return {
    provider: view.provider,
    issuerUrl: view.issuerUrl,
    clientId: view.clientId,
    ...(view.scopes ? { scopes: view.scopes } : {}),
    ...(view.redirectUriMode ? { redirectUriMode: view.redirectUriMode } : {}),
    ...(view.allowedTenants && view.allowedTenants.length ? { allowedTenants: view.allowedTenants } : {}),
    storeIdpTokens: view.storeIdpTokens,
    ...common,
  };
}
