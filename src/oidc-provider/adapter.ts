import type { Adapter, AdapterPayload, KoaContextWithOIDC } from 'oidc-provider';
import type { OidcProviderModule } from './load.js';
import type { Clock } from '../clock.js';
import type { Db } from '../db/database.js';
import {
  consumeOidcRecord, deleteExpiredOidcRecords, destroyOidcRecord, destroyOidcRecordsByGrant, findOidcRecord, findOidcRecordBy,
  upsertOidcRecord, type OidcRecord,
} from './store.js';
import { recordSessionClient } from '../logout/store.js';

/**
 * oidc-provider's storage, in Gatehouse's database (SQLite or PostgreSQL), so any instance answers
 * any step of a flow. One table, one row per (model, id), the payload as JSON.
 *
 * Two Gatehouse rules live here because every read of a token passes through `find`:
 * - a code or token belongs to a Gatehouse session (its `sid`, see policy.ts); once that session
 *   has ended it is never found again, so the provider answers `invalid_grant` / `invalid_token`
 *   (SPEC §8: provider tokens end with the session, as session tokens do);
 * - the organization an authorization chose (scope `organization`) is stored beside the code and
 *   copied to the tokens made from it (`organizationOf` decides which).
 */

/** Models whose records name a Gatehouse session in `sid`. */
const SESSION_BOUND = new Set(['AuthorizationCode', 'AccessToken', 'RefreshToken']);

export interface ClientSource {
  /** The client's metadata in oidc-provider's shape, or undefined (Client model). */
  findProviderClient(clientId: string): Promise<object | undefined>;
}

export interface AdapterDeps {
  /** The loaded oidc-provider (its request context and error classes). */
  oidc: OidcProviderModule;
  db: Db;
  clock: Clock;
  clients: ClientSource;
  /** The organization to store with a new record of `model` (from the request being served). */
  organizationOf(model: string, payload: AdapterPayload): Promise<string | null>;
  /** Whether a Gatehouse session is live (the sessions service's rule, not a copy of it). */
  isSessionLive(sessionId: string): Promise<boolean>;
  /** A spent refresh token was presented again at the token endpoint: end its Gatehouse session. */
  onRefreshTokenReuse(sessionId: string, userId: string): Promise<void>;
}

/**
 * Models that belong to a grant: `revokeByGrantId` ends exactly these (as oidc-provider's own
 * memory adapter does). An Interaction also names the grant it may extend, but revoking the grant
 * (the old account's, on an account switch; a code replay …) must not delete a flow in progress.
 */
const GRANT_MEMBERS = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

/** Models redeemed once: a second redemption — also a concurrent one — is refused. */
const ONE_TIME = new Set(['AuthorizationCode', 'RefreshToken']);

/** How often an instance deletes expired records (on a write, never on the read path). */
export const PURGE_INTERVAL_MS = 10 * 60_000;

export function createAdapterFactory(deps: AdapterDeps): (name: string) => Adapter {
  let lastPurge = 0;
  const purge = () => {
    const now = deps.clock.now();
    if (now.getTime() - lastPurge < PURGE_INTERVAL_MS) return;
    lastPurge = now.getTime();
    void deleteExpiredOidcRecords(deps.db, now.toISOString()).catch(() => {
      lastPurge = 0; // the database was away: try again on a later write
    });
  };
  return (name) => new KyselyAdapter(name, { ...deps, purge });
}

class KyselyAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly deps: AdapterDeps & { purge(): void },
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const { db, clock } = this.deps;
    const sid = SESSION_BOUND.has(this.model) && typeof payload.sid === 'string' ? payload.sid : null;
    await upsertOidcRecord(db, {
      model: this.model,
      id,
      // The jti of an opaque token is the token: it is not stored (find gets it back from the caller).
      payload: JSON.stringify({ ...payload, jti: undefined }),
      grant_id: GRANT_MEMBERS.has(this.model) && typeof payload.grantId === 'string' ? payload.grantId : null,
      uid: typeof payload.uid === 'string' ? payload.uid : null,
      user_code: typeof payload.userCode === 'string' ? payload.userCode : null,
      session_id: sid,
      organization_id: await this.deps.organizationOf(this.model, payload),
      expires_at: expiresIn ? new Date(clock.now().getTime() + expiresIn * 1000).toISOString() : null,
    });
    // The app this code is for signed into the session: when the session ends it is told (logout/outbox.ts).
    if (sid && this.model === 'AuthorizationCode' && typeof payload.clientId === 'string') await recordSessionClient(db, sid, payload.clientId, clock.now().toISOString());
    this.deps.purge();
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (this.model === 'Client') return (await this.deps.clients.findProviderClient(id)) as AdapterPayload | undefined;
    return this.live(await findOidcRecord(this.deps.db, this.model, id), id);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.live(await findOidcRecordBy(this.deps.db, this.model, 'uid', uid));
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.live(await findOidcRecordBy(this.deps.db, this.model, 'user_code', userCode));
  }

  async consume(id: string): Promise<void> {
    const first = await consumeOidcRecord(this.deps.db, this.model, id, this.deps.clock.now().toISOString());
    // oidc-provider reads `consumed` and then consumes: two requests racing with the same code or
    // refresh token could both pass its check. The conditional update lets exactly one through.
    if (!first && ONE_TIME.has(this.model)) {
      const row = await findOidcRecord(this.deps.db, this.model, id);
      const grantId = row ? (JSON.parse(row.payload) as AdapterPayload).grantId : undefined;
      if (typeof grantId === 'string') await destroyOidcRecordsByGrant(this.deps.db, grantId);
      if (this.model === 'RefreshToken' && row?.session_id) await this.reused(row);
      throw new this.deps.oidc.errors.InvalidGrant(`${this.model === 'RefreshToken' ? 'refresh token' : 'authorization code'} already used`);
    }
  }

  async destroy(id: string): Promise<void> {
    await destroyOidcRecord(this.deps.db, this.model, id);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await destroyOidcRecordsByGrant(this.deps.db, grantId);
  }

  /** The payload of a record that has not expired and whose Gatehouse session (if any) is live. */
  private async live(row: OidcRecord | undefined, id?: string): Promise<AdapterPayload | undefined> {
    if (!row) return undefined;
    const now = this.deps.clock.now().toISOString();
    if (row.expires_at !== null && row.expires_at <= now) return undefined;
    if (SESSION_BOUND.has(this.model)) {
      // A token without a Gatehouse session cannot exist (policy.ts sets every sid); refuse one.
      if (!row.session_id || !(await this.deps.isSessionLive(row.session_id))) return undefined;
    }
    const payload = JSON.parse(row.payload) as AdapterPayload;
    if (id !== undefined) payload.jti = id;
    if (row.consumed_at !== null) {
      payload.consumed = Math.floor(Date.parse(row.consumed_at) / 1000);
      // A spent refresh token presented for a new one: oidc-provider revokes its grant (the family);
      // SPEC §8 also ends the Gatehouse session it belongs to, as for session tokens.
      const route = (this.deps.oidc.Provider.ctx as KoaContextWithOIDC | undefined)?.oidc?.route;
      if (this.model === 'RefreshToken' && route === 'token') await this.reused(row);
    }
    return payload;
  }

  private async reused(row: OidcRecord): Promise<void> {
    const userId = (JSON.parse(row.payload) as AdapterPayload).accountId;
    if (row.session_id && typeof userId === 'string') await this.deps.onRefreshTokenReuse(row.session_id, userId);
  }
}

