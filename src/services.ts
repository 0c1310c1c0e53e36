import type { Clock } from './clock.js';
import type { Config } from './config.js';
import type { PasswordHasher } from './crypto/passwords.js';
import type { KeyRing } from './crypto/keyring.js';
import type { DatabaseHandle, Db } from './db/database.js';
import type { Mailer } from './email/mailer.js';
import type { RateLimits } from './http/rate-limit.js';
import type { Logger } from './logger.js';
import type { OutboundFetch } from './sso/outbound.js';
import type { SessionCache } from './sessions/cache.js';
import type { Metrics } from './metrics/registry.js';
import { countMagicLinkSignIns, countPasswordSignIns, countSsoLoginStartFailures, countSsoSignIns } from './metrics/sign-ins.js';
import { createAuditService } from './audit/service.js';
import { createSetupLinkService } from './setup-links/service.js';
import { createAccountLimits } from './auth/account-limits.js';
import { createApiKeyService } from './api-keys/service.js';
import { createInvitationService } from './organizations/invitations.js';
import { createMemberService } from './organizations/members.js';
import { createOrganizationService } from './organizations/service.js';
import { createSessionService } from './sessions/service.js';
import { createAccountService } from './users/service.js';
import { createMfaService } from './mfa/service.js';
import { createConnectionService } from './sso/connections/service.js';
import { createFlowService } from './sso/flows.js';
import { createIdentityService } from './sso/identities/service.js';
import { createOidcMetadata } from './sso/oidc/metadata.js';
import { createOidcLogin } from './sso/oidc/service.js';
import { createProvisioning } from './sso/provisioning.js';
import { createSsoCompletion } from './sso/completion.js';
import { createSamlLogin } from './sso/saml/service.js';
import { createJoinRequestService } from './organizations/join-requests.js';
import { createEmailLinkService } from './auth/email-links.js';
import { createPolicyService } from './policy/service.js';
import { createDomainService } from './domains/service.js';
import { createSigningKeys } from './tokens/signing-keys.js';
import { createOAuthClientService, verifyClientSecret } from './oidc-provider/clients/service.js';
import { createOpenIdProvider } from './oidc-provider/provider.js';
import { createAccessTokens } from './tokens/access-tokens.js';
import { createSessionTokenService } from './tokens/session-tokens.js';
import { createLogoutOutbox, type OutboxOptions } from './logout/outbox.js';
import { createIdpSignOut } from './logout/idp-sign-out.js';
import { createUniversalLogout } from './logout/universal-logout/service.js';
import { createSamlSignOut } from './logout/saml/sign-out.js';
import { createSamlSingleLogout } from './logout/saml/service.js';
import { createOidcSignOut } from './logout/oidc-sign-out.js';
import { createBackchannelLogout } from './logout/backchannel/service.js';
import { createIdpTokenVault } from './sso/idp-tokens/vault.js';
import { createIdpTokenRefresher, type IdpTokenSweepOptions } from './sso/idp-tokens/refresher.js';
import { createHousekeeping, type HousekeepingOptions } from './jobs/housekeeping.js';
import type { Lifecycle } from './lifecycle.js';

/** Everything a service may depend on, built once at start-up (no module-level singletons). */
export interface Deps {
  config: Config;
  database: DatabaseHandle;
  db: Db;
  clock: Clock;
  keyring: KeyRing;
  logger: Logger;
  passwords: PasswordHasher;
  rateLimits: RateLimits;
  mailer: Mailer;
  /** SSRF-guarded client for every request to an IdP URL. */
  outbound: OutboundFetch;
  /** This instance's cache of live sessions (sessions/cache.ts), kept true by sessions/cache-sync.ts. */
  sessionCache: SessionCache;
  /** This instance's metrics (src/metrics/), on a registry of its own. */
  metrics: Metrics;
  /** Whether this instance is draining (shutting down): /readyz answers 503. */
  lifecycle: Lifecycle;
}

export function createServices(deps: Deps, options: { outbox?: OutboxOptions; idpTokenSweep?: IdpTokenSweepOptions; housekeeping?: HousekeepingOptions } = {}) {
  const audit = createAuditService(deps);
  const accountLimits = createAccountLimits(deps);
  const sessions = createSessionService({ ...deps, audit });
  const organizations = createOrganizationService({ ...deps, audit });
  const members = createMemberService({ ...deps, audit, organizations });
  const invitations = createInvitationService({ ...deps, audit, organizations });
  const apiKeys = createApiKeyService({ ...deps, audit, organizations });
  const policy = createPolicyService({ ...deps, audit, organizations });
  const joinRequests = createJoinRequestService({ ...deps, audit, organizations });
  const emailLinks = countMagicLinkSignIns(createEmailLinkService({ ...deps, accountLimits, audit, sessions, policy, joinRequests }), deps.metrics);
  const accounts = countPasswordSignIns(createAccountService({ ...deps, accountLimits, audit, sessions, policy, joinRequests, emailLinks }), deps.metrics);
  const oidcMetadata = createOidcMetadata(deps);
  const connections = createConnectionService({ ...deps, audit, organizations, oidcMetadata });
  const flows = createFlowService(deps);
  const provisioning = createProvisioning({ ...deps, audit, joinRequests });
  const identities = createIdentityService({ ...deps, audit, organizations });
  const idpTokens = createIdpTokenVault({ ...deps, oidcMetadata, audit, organizations, connections });
  const idpTokenRefresher = createIdpTokenRefresher({ ...deps, vault: idpTokens }, options.idpTokenSweep);
  const completion = countSsoSignIns(createSsoCompletion({ ...deps, provisioning, sessions, audit, idpTokens }), deps.metrics);
  const oidcLogin = countSsoLoginStartFailures(createOidcLogin({ ...deps, oidcMetadata, connections, flows, completion }), 'oidc', ['startLogin', 'initiate'], deps.metrics);
  const samlLogin = countSsoLoginStartFailures(createSamlLogin({ ...deps, connections, flows, completion }), 'saml', ['startLogin'], deps.metrics);
  const domains = createDomainService({ ...deps, audit, organizations });
  const setupLinks = createSetupLinkService({ ...deps, audit, organizations });
  const mfa = createMfaService({ ...deps, accountLimits, audit, sessions });
  const signingKeys = createSigningKeys(deps);
  const clients = createOAuthClientService({ ...deps, audit });
  const openIdProvider = createOpenIdProvider({
    ...deps,
    sessions,
    signingKeys,
    clients: { findProviderClient: (id) => clients.findProviderClient(id), verifyClientSecret: (hash, presented) => verifyClientSecret(hash, presented) },
  });
  const accessTokens = createAccessTokens({ ...deps, signingKeys });
  const sessionTokens = createSessionTokenService({ ...deps, audit, sessions, organizations, accessTokens });
  const logoutOutbox = createLogoutOutbox({ ...deps, signingKeys }, options.outbox);
  const housekeeping = createHousekeeping(deps, { ...options.housekeeping, intervalMs: deps.config.housekeepingIntervalMs });
  // Each protocol adds how it signs a browser out of its IdP (SPEC §8 signOutOfIdp).
  const idpSignOut = createIdpSignOut(deps, { oidc: createOidcSignOut({ ...deps, oidcMetadata }), saml: createSamlSignOut({ ...deps, connections }) });
  const universalLogout = createUniversalLogout({ ...deps, audit, sessions, idpTokens, oidcMetadata });
  const samlSingleLogout = createSamlSingleLogout({ ...deps, audit, connections, sessions });
  const backchannelLogout = createBackchannelLogout({ ...deps, oidcMetadata, audit, sessions });
  return { idpTokens, idpTokenRefresher, logoutOutbox, housekeeping, idpSignOut, universalLogout, samlSingleLogout, backchannelLogout, signingKeys, accessTokens, sessionTokens, clients, openIdProvider, audit, sessions, organizations, policy, joinRequests, emailLinks, members, invitations, apiKeys, accounts, connections, flows, provisioning, identities, oidcLogin, samlLogin, domains, mfa, setupLinks };
}

export type Services = ReturnType<typeof createServices>;
