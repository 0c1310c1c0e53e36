import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Configuration, KoaContextWithOIDC, default as Provider } from 'oidc-provider';
import { loadOidcProvider, type OidcProviderModule } from './load.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { KeyRing } from '../crypto/keyring.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../logger.js';
import { SESSION_COOKIE, type SessionService } from '../sessions/service.js';
import type { SigningKeys } from '../tokens/signing-keys.js';
import { createAdapterFactory, type ClientSource } from './adapter.js';
import { createFindAccount } from './account.js';
import type { BackchannelDeps } from './backchannel-logout.js';
import { buildPromptPolicy, chosenOrganization, gatehouseSignIn } from './policy.js';
import { currentRole, recordOrganization } from './organization.js';
import { PROVIDER_PAGE_CSP, providerErrorPage, providerLogoutPage, providerSignedOutPage } from './pages.js';
import { interactionPath, OP_ROUTES } from './urls.js';

/**
 * The OpenID Provider for the SaaS's own apps (SPEC §8), on panva's OpenID Certified
 * `oidc-provider`. Gatehouse supplies what a certified provider leaves to its host:
 *   - storage: adapter.ts (SQLite or PostgreSQL, any instance answers any step);
 *   - accounts and claims: account.ts (sub = the Gatehouse user id; org_* for scope organization);
 *   - who is signed in: policy.ts (the Gatehouse session cookie is the authority; ID tokens carry
 *     its id as `sid`), with the login, organization and consent screens in interactions.ts;
 *   - keys: the ES256 ring of tokens/signing-keys.ts, the signer first; the provider is rebuilt
 *     when the ring changes (rotation), so every instance signs with the ring's current key;
 *   - back-channel logout delivery: logout/outbox.ts (durable, retried; tokens from backchannel-logout.ts).
 */

export interface OpenIdProviderDeps {
  config: Config;
  db: Db;
  clock: Clock;
  keyring: KeyRing;
  logger: Logger;
  outbound: BackchannelDeps['outbound'];
  sessions: SessionService;
  signingKeys: SigningKeys;
  clients: ClientSource & { verifyClientSecret(storedHash: string, presented: string): boolean };
}

/** Scopes and the claims each releases. */
export const OP_SCOPES = ['openid', 'offline_access', 'email', 'profile', 'organization'] as const;
const OP_CLAIMS: Configuration['claims'] = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name'],
  organization: ['org_id', 'org_slug', 'org_role'],
};

const FIRST_PARTY = 'gatehouse:first_party';

/** An HTML answer of the provider with the hosted pages' policy, never cached. */
function page(ctx: KoaContextWithOIDC, body: string) {
  ctx.type = 'html';
  ctx.set('Content-Security-Policy', PROVIDER_PAGE_CSP);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}
const TOKEN_MODELS = new Set(['AccessToken', 'RefreshToken']);

export function createOpenIdProvider(deps: OpenIdProviderDeps) {
  const { config, db, logger } = deps;
  const findAccount = createFindAccount({ db });

  /**
   * The organization of the tokens a request makes: they inherit it from what they are made of
   * (the code, or the refresh token being rotated); at the authorization endpoint, the one chosen.
   * Read once per request (memo in organization.ts), however many tokens and claims ask.
   */
  function organizationOfRequest(ctx: KoaContextWithOIDC): Promise<string | null> {
    const entities = ctx.oidc?.entities as Record<string, { kind: string; jti: string } | undefined> | undefined;
    const source = entities?.AuthorizationCode ?? entities?.RotatedRefreshToken ?? entities?.RefreshToken;
    if (source?.jti) return recordOrganization(db, ctx, source.kind, source.jti);
    return Promise.resolve(chosenOrganization(ctx)?.organization.id ?? null);
  }

  /** The organization to store beside a new record, from the request that makes it (AsyncLocalStorage). */
  async function organizationOf(oidc: OidcProviderModule, model: string): Promise<string | null> {
    const ctx = oidc.Provider.ctx as KoaContextWithOIDC | undefined;
    if (!ctx) return null;
    if (model === 'AuthorizationCode') return chosenOrganization(ctx)?.organization.id ?? null;
    return TOKEN_MODELS.has(model) ? organizationOfRequest(ctx) : null;
  }

  const onRefreshTokenReuse = async (oidc: OidcProviderModule, sessionId: string, userId: string) => {
    const ctx = oidc.Provider.ctx as KoaContextWithOIDC | undefined;
    await deps.sessions
      .end({ principal: null, ip: ctx?.ip ?? null, userAgent: ctx?.get('user-agent') || null, requestId: null }, userId, sessionId, 'oidc_refresh_token_reuse')
      .catch((err: unknown) => logger.warn({ err }, 'could not end the session of a reused refresh token'));
  };
  function configuration(oidc: OidcProviderModule, keys: Configuration['jwks']): Configuration {
    const { errors } = oidc;
    const adapter = createAdapterFactory({
      oidc,
      db,
      clock: deps.clock,
      clients: deps.clients,
      isSessionLive: async (sessionId) => (await deps.sessions.authenticateById(sessionId)) !== null,
      organizationOf: (model) => organizationOf(oidc, model),
      onRefreshTokenReuse: (sessionId, userId) => onRefreshTokenReuse(oidc, sessionId, userId),
    });
    const policy = buildPromptPolicy(oidc, { db, sessions: deps.sessions });
    const ttlSeconds = (ms: number) => Math.floor(ms / 1000);
    return {
      adapter,
      findAccount,
      jwks: keys,
      claims: OP_CLAIMS,
      scopes: [...OP_SCOPES],
      extraParams: ['organization'],
      // SPEC §8: org_* (and email, name) appear in the ID token as well as in UserInfo.
      conformIdTokenClaims: false,
      // Redirect URIs are matched exactly, and always sent.
      allowOmittingSingleRegisteredRedirectUri: false,
      responseTypes: ['code'],
      pkce: { required: () => true },
      clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
      enabledJWA: {
        idTokenSigningAlgValues: ['ES256'],
        userinfoSigningAlgValues: ['ES256'],
        introspectionSigningAlgValues: ['ES256'],
        authorizationSigningAlgValues: ['ES256'],
        clientAuthSigningAlgValues: ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA'],
      },
      clientDefaults: {
        grant_types: ['authorization_code'],
        id_token_signed_response_alg: 'ES256',
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      extraClientMetadata: { properties: [FIRST_PARTY] },
      cookies: {
        keys: deps.keyring.derive('oidc-provider-cookies'),
        long: { signed: true, httpOnly: true, sameSite: 'lax', secure: config.secureCookies, path: '/' },
        short: { signed: true, httpOnly: true, sameSite: 'lax', secure: config.secureCookies, path: '/' },
        names: { session: 'gatehouse_op_session', interaction: 'gatehouse_op_interaction', resume: 'gatehouse_op_resume' },
      },
      routes: { ...OP_ROUTES },
      interactions: {
        policy,
        url: (_ctx, interaction) => interactionPath(interaction.uid),
      },
      features: {
        devInteractions: { enabled: false },
        // A client revokes and introspects only its own tokens: one app learns nothing of another's
        // users or scopes (an unknown or foreign token is simply "active: false").
        revocation: {
          enabled: true,
          allowedPolicy: async (_ctx, client, token) => {
            if (token.clientId === client.clientId) return true;
            if (client.clientAuthMethod === 'none') return false;
            throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
          },
        },
        introspection: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
        userinfo: { enabled: true },
        backchannelLogout: { enabled: true },
        // An app that asks for resource=GATEHOUSE_TOKEN_AUDIENCE gets a JWT access token for its
        // API (typ at+jwt, ES256, verifiable with the JWKS); without it the access token is opaque
        // and serves UserInfo (which, in oidc-provider, refuses a token with an audience).
        resourceIndicators: {
          enabled: true,
          defaultResource: () => undefined as unknown as string,
          useGrantedResource: () => false,
          getResourceServerInfo: (_ctx, resource) => {
            if (resource !== config.tokenAudience) throw new errors.InvalidTarget('the only resource is GATEHOUSE_TOKEN_AUDIENCE');
            return {
              scope: OP_SCOPES.filter((s) => s !== 'offline_access').join(' '),
              audience: config.tokenAudience,
              accessTokenFormat: 'jwt',
              accessTokenTTL: ttlSeconds(config.accessTokenTtlMs),
              jwt: { sign: { alg: 'ES256' } },
            };
          },
        },
        rpInitiatedLogout: {
          enabled: true,
          logoutSource: async (ctx, form) => {
            page(ctx, await providerLogoutPage(form));
          },
          postLogoutSuccessSource: async (ctx) => {
            page(ctx, await providerSignedOutPage());
          },
        },
      },
      ttl: {
        AccessToken: ttlSeconds(config.accessTokenTtlMs),
        AuthorizationCode: 60,
        IdToken: 3600,
        RefreshToken: ttlSeconds(config.refreshTokenTtlMs),
        Grant: ttlSeconds(config.refreshTokenTtlMs),
        Interaction: 3600,
        Session: 14 * 24 * 3600,
      },
      // SPEC §8: refresh tokens for clients that hold the grant and ask for offline_access; rotated on every use.
      issueRefreshToken: async (_ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
      rotateRefreshToken: true,
      // First-party clients skip consent: their grant covers what they ask for.
      loadExistingGrant: async (ctx) => {
        const client = ctx.oidc.client!;
        const grantId = (ctx.oidc.result as { consent?: { grantId?: string } } | undefined)?.consent?.grantId ?? ctx.oidc.session!.grantIdFor(client.clientId);
        const existing = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
        if (client.metadata()[FIRST_PARTY] !== true) return existing;
        if (!ctx.oidc.session!.accountId) return existing;
        const grant = existing ?? new ctx.oidc.provider.Grant({ accountId: ctx.oidc.session!.accountId, clientId: client.clientId });
        grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
        const claims = [...ctx.oidc.requestParamClaims];
        if (claims.length) grant.addOIDCClaims(claims);
        grant.addResourceScope(config.tokenAudience, [...ctx.oidc.requestParamScopes].filter((s) => s !== 'offline_access').join(' '));
        await grant.save();
        return grant;
      },
      renderError: async (ctx, out) => {
        page(ctx, await providerErrorPage(String(out.error ?? 'error'), String(out.error_description ?? '')));
      },
      clockTolerance: 5,
      // JWT access tokens name the Gatehouse session and, with scope organization, the organization.
      extraTokenClaims: async (ctx, token) => {
        if (token.kind !== 'AccessToken' || !('sid' in token)) return undefined;
        const claims: Record<string, string> = {};
        if (typeof token.sid === 'string') claims.sid = token.sid;
        const organizationId = await organizationOfRequest(ctx);
        if (organizationId && token.scopes.has('organization')) {
          const role = await currentRole(db, organizationId, String(token.accountId), ctx);
          if (role) Object.assign(claims, { org_id: role.organization.id, org_slug: role.organization.slug, org_role: role.role });
        }
        return claims;
      },
    };
  }

  let built: { version: string; provider: Provider; handler: (req: IncomingMessage, res: ServerResponse) => void } | null = null;

  function build(oidc: OidcProviderModule, version: string, keys: Configuration['jwks']) {
    const provider = new oidc.Provider(config.baseUrl, configuration(oidc, keys));
    provider.proxy = config.trustedProxies.length > 0;
    // Client secrets are stored only as SHA-256 (clients/service.ts): the provider's
    // `client_secret` is that hash, so the presented secret is hashed before the comparison.
    const stored = provider.Client.prototype;
    stored.compareClientSecret = function compareClientSecret(this: { clientSecret?: string }, actual: string) {
      return typeof this.clientSecret === 'string' && deps.clients.verifyClientSecret(this.clientSecret, actual);
    };
    // SPEC §8: every code and token carries `sid`, the Gatehouse session (policy.ts binds it), so
    // ID tokens name the session for every client and adapter.ts can end tokens with their session.
    stored.includeSid = () => true;
    // Back-channel logout is not sent from here: every end of a Gatehouse session — the RP-initiated
    // logout below included — queues a delivery to each app the session signed into, in the
    // transaction that ends it, and the outbox sends it with retries (logout/outbox.ts). Sending
    // here as well would tell the apps twice, once without retry.
    stored.backchannelLogout = async function backchannelLogout() {};
    // RP-initiated logout ends the Gatehouse session of the browser as well (SPEC §8).
    provider.use(async (ctx, next) => {
      const signingOut = ctx.method === 'POST' && ctx.path === `${OP_ROUTES.end_session}/confirm`;
      const signIn = signingOut ? await gatehouseSignIn(ctx as KoaContextWithOIDC, deps.sessions) : null;
      await next();
      const ended = (ctx as KoaContextWithOIDC).oidc?.session as unknown as { destroyed?: boolean; accountId?: string } | undefined;
      // Only the Gatehouse session of the user the provider session was for: oidc-provider also
      // posts here by itself when the browser's Gatehouse user changed (resume.js, account switch),
      // and that must not sign the new user out of Gatehouse.
      if (signIn && ctx.status === 303 && ended?.destroyed && ended.accountId === signIn.user.id) {
        await deps.sessions.end({ principal: null, ip: ctx.ip, userAgent: ctx.get('user-agent') || null, requestId: null }, signIn.user.id, signIn.session.id, 'oidc_rp_logout');
        ctx.cookies.set(SESSION_COOKIE, null, { path: '/', secure: config.secureCookies, httpOnly: true, sameSite: 'lax' });
      }
    });
    provider.on('server_error', (_ctx, err) => logger.error({ err }, 'OpenID Provider error'));
    const callback = provider.callback();
    built = { version, provider, handler: (req, res) => void callback(req, res) };
    return built;
  }

  async function current() {
    const { version, keys } = await deps.signingKeys.providerKeys();
    if (built?.version === version) return built;
    return build(await loadOidcProvider(logger), version, { keys: keys as NonNullable<Configuration['jwks']>['keys'] });
  }

  return {
    /** The provider for the ring as it is now (rebuilt after a rotation). */
    async provider(): Promise<Provider> {
      return (await current()).provider;
    },
    /** Serve one request on a provider path (urls.ts isProviderPath). */
    async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
      (await current()).handler(req, res);
    },
  };
}

export type OpenIdProvider = ReturnType<typeof createOpenIdProvider>;
