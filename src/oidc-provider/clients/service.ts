import type { Clock } from '../../clock.js';
import { pinOf, type Ctx, type Principal } from '../../context.js';
import type { Db } from '../../db/database.js';
import type { ClientAuthMethod } from '../../db/schema.js';
import { randomToken, safeEqual, sha256 } from '../../crypto/tokens.js';
import { AppError, forbidden, notFound } from '../../http/errors.js';
import { paginate, type Page, type PageParams } from '../../http/pagination.js';
import { newId } from '../../ids.js';
import type { AuditService } from '../../audit/service.js';
import { deleteClient, findClient, GRANT_TYPES, insertClient, listClients, replaceClient, type GrantType, type Jwks, type OAuthClient } from './store.js';
import { CreateClientInput, invalid, isSecretMethod, parse, settingsIssues, unusableKeys, UpdateClientInput } from './validation.js';

/**
 * The OpenID Provider's clients: the SaaS's own apps (SPEC §8 "Clients:"). Registered by a
 * platform superadmin (admin API or CLI); read by the provider through `findProviderClient`.
 * The secret is shown once and kept only as its SHA-256, so a copy of the database (or of the
 * provider's client metadata) authenticates as no client.
 */

export const CLIENT_ID_PREFIX = 'gh_client_';
export const CLIENT_SECRET_PREFIX = 'gcs_';
/** A client id: the prefix and a ULID (so ids sort by creation and the ULID serves as the list cursor). */
export const CLIENT_ID_PATTERN = /^gh_client_[0-9A-HJKMNP-TV-Z]{26}$/;

// ---- authorization ------------------------------------------------------------------------

/**
 * Who may manage clients, or why not: platform superadmins only. A client decides where users'
 * tokens go, so an organization owner registering one could harvest every user's tokens. A
 * superadmin's API key pinned to one organization is refused too: clients are platform-wide.
 */
export function clientAdminRefusal(p: Principal | null): AppError | null {
  if (!p) return new AppError('UNAUTHENTICATED', 'Sign in or present an API key');
  if (p.user.is_superadmin !== 1) return forbidden('Platform superadmins only');
  if (pinOf(p)) return forbidden('An API key pinned to an organization cannot manage OAuth clients: they are platform-wide');
  return null;
}

// ---- views --------------------------------------------------------------------------------

/** A client as the API shows it: the stored client, its id as `clientId`, and never the secret or its hash. */
export type OAuthClientView = Omit<OAuthClient, 'id' | 'secretHash' | 'authMethod'> & {
  clientId: string;
  tokenEndpointAuthMethod: ClientAuthMethod;
  /** Whether a secret is registered (never the secret, never its hash). */
  hasSecret: boolean;
};

/** A view plus the secret, present only in the answer that issued it. */
export type OAuthClientWithSecret = OAuthClientView & { clientSecret?: string };

function view(c: OAuthClient): OAuthClientView {
  const { id, secretHash, authMethod, ...rest } = c;
  return { clientId: id, ...rest, tokenEndpointAuthMethod: authMethod, hasSecret: secretHash !== null };
}

/** What the audit log keeps of a client's settings (no secret; key ids rather than whole keys). */
function auditFacts(c: OAuthClient) {
  return {
    name: c.name,
    authMethod: c.authMethod,
    redirectUris: c.redirectUris,
    postLogoutRedirectUris: c.postLogoutRedirectUris,
    backchannelLogoutUri: c.backchannelLogoutUri,
    grantTypes: c.grantTypes,
    jwksUri: c.jwksUri,
    jwksKids: c.jwks ? c.jwks.keys.map((k) => (typeof k.kid === 'string' ? k.kid : null)) : null,
    firstParty: c.firstParty,
  };
}

// ---- the provider's view -------------------------------------------------------------------

/**
 * oidc-provider's client metadata (snake_case). `client_secret` is the stored SHA-256 of the
 * secret, never the secret: the provider must compare a presented secret with
 * `verifyClientSecret`, not by string equality.
 */
export interface ProviderClientMetadata {
  client_id: string;
  client_name: string;
  client_secret?: string;
  token_endpoint_auth_method: ClientAuthMethod;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  backchannel_logout_uri?: string;
  backchannel_logout_session_required?: true;
  grant_types: GrantType[];
  response_types: ['code'];
  jwks_uri?: string;
  jwks?: Jwks;
  id_token_signed_response_alg: 'ES256';
  'gatehouse:first_party': boolean;
}

export function providerMetadata(c: OAuthClient): ProviderClientMetadata {
  return {
    client_id: c.id,
    client_name: c.name,
    ...(c.secretHash !== null && isSecretMethod(c.authMethod) ? { client_secret: c.secretHash } : {}),
    token_endpoint_auth_method: c.authMethod,
    redirect_uris: [...c.redirectUris],
    post_logout_redirect_uris: [...c.postLogoutRedirectUris],
    ...(c.backchannelLogoutUri ? { backchannel_logout_uri: c.backchannelLogoutUri, backchannel_logout_session_required: true as const } : {}),
    grant_types: [...c.grantTypes],
    response_types: ['code'],
    ...(c.jwksUri ? { jwks_uri: c.jwksUri } : {}),
    ...(c.jwks ? { jwks: c.jwks } : {}),
    id_token_signed_response_alg: 'ES256',
    'gatehouse:first_party': c.firstParty,
  };
}

/** Whether `presented` is the secret whose SHA-256 (hex) is `storedHash`; constant-time. */
export function verifyClientSecret(storedHash: string | null | undefined, presented: string | null | undefined): boolean {
  if (!storedHash || !presented || presented.length > 512) return false;
  return safeEqual(sha256(presented), storedHash);
}

// ---- the service --------------------------------------------------------------------------

const newSecret = () => randomToken(32, CLIENT_SECRET_PREFIX); // 256 bits

export function createOAuthClientService(deps: { db: Db; clock: Clock; audit: AuditService }) {
  const { db, clock } = deps;
  const target = (id: string) => ({ type: 'oauth_client', id });

  return {
    /** Register a client. Secret-based methods get a secret, returned here once. */
    async create(ctx: Ctx, input: CreateClientInput): Promise<OAuthClientWithSecret> {
      const v = parse(CreateClientInput, input);
      const now = clock.now().toISOString();
      const authMethod = v.tokenEndpointAuthMethod ?? 'client_secret_basic';
      const secret = isSecretMethod(authMethod) ? newSecret() : null;
      const client: OAuthClient = {
        id: CLIENT_ID_PREFIX + newId(),
        name: v.name,
        secretHash: secret === null ? null : sha256(secret),
        authMethod,
        redirectUris: v.redirectUris,
        postLogoutRedirectUris: v.postLogoutRedirectUris ?? [],
        backchannelLogoutUri: v.backchannelLogoutUri ?? null,
        grantTypes: v.grantTypes ?? [...GRANT_TYPES],
        jwksUri: v.jwksUri ?? null,
        jwks: (v.jwks as Jwks | undefined) ?? null,
        firstParty: v.firstParty ?? false,
        createdAt: now,
        updatedAt: now,
      };
      const issues = [...settingsIssues(client), ...(await unusableKeys(client.jwks))];
      if (issues.length) throw invalid(issues);
      await db.transaction().execute(async (tx) => {
        await insertClient(tx, client);
        await deps.audit.record(tx, ctx, { action: 'oauth_client.created', target: target(client.id), metadata: auditFacts(client) });
      });
      return secret === null ? view(client) : { ...view(client), clientSecret: secret };
    },

    async list(params: PageParams): Promise<Page<OAuthClientView>> {
      const rows = await listClients(db, { limit: params.limit, afterId: params.cursor ? CLIENT_ID_PREFIX + params.cursor : null });
      // The cursor is the id's ULID, so it reads like every other cursor of the API.
      return paginate(rows.map((r) => ({ ...r, id: r.id.slice(CLIENT_ID_PREFIX.length), client: r })), params.limit, (r) => view(r.client));
    },

    async get(clientId: string): Promise<OAuthClientView> {
      const client = CLIENT_ID_PATTERN.test(clientId) ? await findClient(db, clientId) : undefined;
      if (!client) throw notFound('OAuth client');
      return view(client);
    },

    /**
     * Change any field but the id. The result is checked as a whole (switching to private_key_jwt
     * needs keys). A secret is issued on `rotateSecret` or on a switch to a secret-based method
     * from one without a secret; a switch to `none` or `private_key_jwt` drops the stored secret.
     */
    async update(ctx: Ctx, clientId: string, input: UpdateClientInput): Promise<OAuthClientWithSecret> {
      const v = parse(UpdateClientInput, input);
      const keyIssues = await unusableKeys(v.jwks);
      if (keyIssues.length) throw invalid(keyIssues);
      return db.transaction().execute(async (tx) => {
        const current = CLIENT_ID_PATTERN.test(clientId) ? await findClient(tx, clientId) : undefined;
        if (!current) throw notFound('OAuth client');
        const next: OAuthClient = {
          ...current,
          ...(v.name !== undefined ? { name: v.name } : {}),
          ...(v.redirectUris !== undefined ? { redirectUris: v.redirectUris } : {}),
          ...(v.postLogoutRedirectUris !== undefined ? { postLogoutRedirectUris: v.postLogoutRedirectUris } : {}),
          ...(v.backchannelLogoutUri !== undefined ? { backchannelLogoutUri: v.backchannelLogoutUri } : {}),
          ...(v.tokenEndpointAuthMethod !== undefined ? { authMethod: v.tokenEndpointAuthMethod } : {}),
          ...(v.firstParty !== undefined ? { firstParty: v.firstParty } : {}),
          ...(v.jwksUri !== undefined ? { jwksUri: v.jwksUri } : {}),
          ...(v.jwks !== undefined ? { jwks: v.jwks as Jwks | null } : {}),
          ...(v.grantTypes !== undefined ? { grantTypes: v.grantTypes } : {}),
        };
        const issues = settingsIssues(next);
        const secretBased = isSecretMethod(next.authMethod);
        if (v.rotateSecret && !secretBased) {
          issues.push({ path: 'rotateSecret', code: 'custom', message: `a client with tokenEndpointAuthMethod ${next.authMethod} has no secret to rotate` });
        }
        if (issues.length) throw invalid(issues);

        let secret: string | null = null;
        if (!secretBased) next.secretHash = null;
        else if (v.rotateSecret || current.secretHash === null) {
          secret = newSecret();
          next.secretHash = sha256(secret);
        }
        const before = auditFacts(current);
        const after = auditFacts(next);
        const changed = (Object.keys(after) as Array<keyof typeof after>).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
        if (changed.length === 0 && secret === null) return view(current);

        next.updatedAt = clock.now().toISOString();
        await replaceClient(tx, next);
        if (changed.length) {
          await deps.audit.record(tx, ctx, {
            action: 'oauth_client.updated',
            target: target(next.id),
            metadata: {
              name: next.name,
              changed,
              before: Object.fromEntries(changed.map((k) => [k, before[k]])),
              after: Object.fromEntries(changed.map((k) => [k, after[k]])),
              ...(current.secretHash !== null && next.secretHash === null ? { dropped: ['clientSecret'] } : {}),
            },
          });
        }
        if (secret !== null) {
          await deps.audit.record(tx, ctx, {
            action: 'oauth_client.secret_rotated',
            target: target(next.id),
            metadata: { name: next.name, reason: v.rotateSecret ? 'rotate_requested' : 'auth_method_changed' },
          });
        }
        return secret === null ? view(next) : { ...view(next), clientSecret: secret };
      });
    },

    /** Remove a client: its secret and keys stop working at once (the provider no longer finds it). */
    async remove(ctx: Ctx, clientId: string): Promise<void> {
      await db.transaction().execute(async (tx) => {
        const client = CLIENT_ID_PATTERN.test(clientId) ? await findClient(tx, clientId) : undefined;
        if (!client || !(await deleteClient(tx, clientId))) throw notFound('OAuth client');
        await deps.audit.record(tx, ctx, { action: 'oauth_client.deleted', target: target(clientId), metadata: { name: client.name } });
      });
    },

    /** The client as oidc-provider reads it, or undefined (an id of the wrong shape never reaches the database). */
    async findProviderClient(clientId: string): Promise<ProviderClientMetadata | undefined> {
      if (typeof clientId !== 'string' || !CLIENT_ID_PATTERN.test(clientId)) return undefined;
      const client = await findClient(db, clientId);
      return client ? providerMetadata(client) : undefined;
    },
  };
}

export type OAuthClientService = ReturnType<typeof createOAuthClientService>;
