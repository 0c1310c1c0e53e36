import { z } from 'zod';
import type { Executor } from '../../db/database.js';
import type { ClientAuthMethod, OAuthClientRow } from '../../db/schema.js';

/**
 * The OpenID Provider's clients (SPEC §8), table `oauth_clients`. The JSON columns (redirect
 * URIs, grant types, a client JWKS) are parsed here and nowhere else; the rest of the code sees
 * `OAuthClient`. The secret exists only as its SHA-256 (`secretHash`).
 */

export const GRANT_TYPES = ['authorization_code', 'refresh_token'] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

export type PublicJwk = Record<string, unknown> & { kty: string };
export interface Jwks {
  keys: PublicJwk[];
}

export interface OAuthClient {
  id: string;
  name: string;
  secretHash: string | null;
  authMethod: ClientAuthMethod;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  backchannelLogoutUri: string | null;
  grantTypes: GrantType[];
  jwksUri: string | null;
  jwks: Jwks | null;
  firstParty: boolean;
  createdAt: string;
  updatedAt: string;
}

const uriList = z.array(z.string());
const grantList = z.array(z.enum(GRANT_TYPES));
const jwksJson = z.object({ keys: z.array(z.object({ kty: z.string() }).catchall(z.unknown())) });

function fromRow(r: OAuthClientRow): OAuthClient {
  return {
    id: r.id,
    name: r.name,
    secretHash: r.secret_hash,
    authMethod: r.token_endpoint_auth_method,
    redirectUris: uriList.parse(JSON.parse(r.redirect_uris)),
    postLogoutRedirectUris: uriList.parse(JSON.parse(r.post_logout_redirect_uris)),
    backchannelLogoutUri: r.backchannel_logout_uri,
    grantTypes: grantList.parse(JSON.parse(r.grant_types)),
    jwksUri: r.jwks_uri,
    jwks: r.jwks === null ? null : jwksJson.parse(JSON.parse(r.jwks)),
    firstParty: r.first_party === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toRow(c: OAuthClient): OAuthClientRow {
  return {
    id: c.id,
    name: c.name,
    secret_hash: c.secretHash,
    token_endpoint_auth_method: c.authMethod,
    redirect_uris: JSON.stringify(c.redirectUris),
    post_logout_redirect_uris: JSON.stringify(c.postLogoutRedirectUris),
    backchannel_logout_uri: c.backchannelLogoutUri,
    grant_types: JSON.stringify(c.grantTypes),
    jwks_uri: c.jwksUri,
    jwks: c.jwks === null ? null : JSON.stringify(c.jwks),
    first_party: c.firstParty ? 1 : 0,
    created_at: c.createdAt,
    updated_at: c.updatedAt,
  };
}

export async function insertClient(db: Executor, client: OAuthClient): Promise<void> {
  await db.insertInto('oauth_clients').values(toRow(client)).execute();
}

export async function findClient(db: Executor, id: string): Promise<OAuthClient | undefined> {
  const row = await db.selectFrom('oauth_clients').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? fromRow(row) : undefined;
}

/** Newest first (ids are prefixed ULIDs, so they sort by creation); `afterId` is the last id of the previous page. */
export async function listClients(db: Executor, page: { limit: number; afterId: string | null }): Promise<OAuthClient[]> {
  let q = db.selectFrom('oauth_clients').selectAll();
  if (page.afterId) q = q.where('id', '<', page.afterId);
  const rows = await q.orderBy('id', 'desc').limit(page.limit + 1).execute();
  return rows.map(fromRow);
}

/** Write every column but the id and created_at; false when there is no such client. */
export async function replaceClient(db: Executor, client: OAuthClient): Promise<boolean> {
  const { id: _id, created_at: _created, ...rest } = toRow(client);
  const res = await db.updateTable('oauth_clients').set(rest).where('id', '=', client.id).executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

export async function deleteClient(db: Executor, id: string): Promise<boolean> {
  const res = await db.deleteFrom('oauth_clients').where('id', '=', id).executeTakeFirst();
  return Number(res.numDeletedRows) > 0;
}
