import type { Selectable } from 'kysely';
import { MINUTE, type Clock } from '../clock.js';
import type { Db, Executor } from '../db/database.js';
import { prepareQuery, preparedInsert } from '../db/prepared.js';
import type { SsoFlowsTable } from '../db/schema.js';
import { randomToken, sha256 } from '../crypto/tokens.js';
import { newId } from '../ids.js';
import type { Connection } from './connections/model.js';

export type FlowRow = Selectable<SsoFlowsTable>;
export const FLOW_TTL_MS = 10 * MINUTE;

/** Why a flow could not be used; each is a stable `details.reason`. */
export type FlowFailure = 'state_invalid' | 'flow_expired' | 'replayed';

export class FlowError extends Error {
  override name = 'FlowError';
  constructor(readonly reason: FlowFailure, message: string) {
    super(message);
  }
}

// ---- store

const insertFlow = preparedInsert('sso_flows');

const findFlowQuery = prepareQuery((db, p: { lookupHash: string }) => db.selectFrom('sso_flows').selectAll().where('lookup_hash', '=', p.lookupHash));
async function findFlow(db: Executor, lookupHash: string) {
  return findFlowQuery.first(db, { lookupHash });
}

const consumeLiveQuery = prepareQuery((db, p: { lookupHash: string; now: string }) =>
  db.updateTable('sso_flows').set({ consumed_at: p.now }).where('lookup_hash', '=', p.lookupHash).where('consumed_at', 'is', null).where('expires_at', '>', p.now).returningAll(),
);
/** Consume the live flow behind a lookup hash in one statement; undefined when there is none to consume. */
async function consumeLive(db: Executor, lookupHash: string, now: string): Promise<FlowRow | undefined> {
  return consumeLiveQuery.first(db, { lookupHash, now });
}

const markConsumedQuery = prepareQuery((db, p: { id: string; now: string }) =>
  db.updateTable('sso_flows').set({ consumed_at: p.now }).where('id', '=', p.id).where('consumed_at', 'is', null),
);
/** Atomic consume: only one caller, on any instance, can flip consumed_at. */
async function markConsumed(db: Executor, id: string, now: string): Promise<boolean> {
  return (await markConsumedQuery.changed(db, { id, now })) === 1;
}

/** Undo this caller's consume (and only its own: the stamp it wrote must still be there). */
async function markUnconsumed(db: Executor, id: string, consumedAt: string): Promise<boolean> {
  const res = await db.updateTable('sso_flows').set({ consumed_at: null }).where('id', '=', id).where('consumed_at', '=', consumedAt).executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

async function deleteExpired(db: Executor, before: string) {
  await db.deleteFrom('sso_flows').where('expires_at', '<', before).execute();
}

/** Why a flow cannot be consumed (none, spent — by another caller too — or expired). */
function refusal(flow: FlowRow | undefined, now: string): FlowError {
  if (!flow) return new FlowError('state_invalid', 'This sign-in link is not one Gatehouse started (unknown state). Start the sign-in again.');
  if (flow.consumed_at || flow.expires_at > now) return new FlowError('replayed', 'This sign-in response was already used. Start the sign-in again.');
  return new FlowError('flow_expired', 'The sign-in took longer than 10 minutes. Start the sign-in again.');
}

// ---- service

/**
 * Server-side SSO flow state (SPEC §4.4): created when a login starts, found by the SHA-256 of
 * its public handle (OIDC `state`, SAML request ID), consumed exactly once, expiring after
 * 10 minutes, bound to the connection's config version. Lives in the database, so the callback
 * may land on any instance.
 */
export function createFlowService(deps: { db: Db; clock: Clock }) {
  const { db, clock } = deps;
  let lastSweep = 0;
  return {
    async start(
      connection: Connection,
      spec: { returnTo: string; loginHint?: string | null; browserBinding: string | null },
    ): Promise<{ flow: FlowRow; handle: string; codeVerifier: string; nonce: string }> {
      const now = clock.now();
      const handle = randomToken(32);
      const codeVerifier = randomToken(32);
      const nonce = randomToken(24);
      const flow: FlowRow = {
        id: newId(),
        lookup_hash: sha256(handle),
        organization_id: connection.organizationId,
        connection_id: connection.id,
        config_version: connection.configVersion,
        protocol: connection.protocol,
        code_verifier: codeVerifier,
        nonce,
        return_to: spec.returnTo,
        login_hint: spec.loginHint ?? null,
        browser_binding_hash: spec.browserBinding ? sha256(spec.browserBinding) : null,
        expires_at: new Date(now.getTime() + FLOW_TTL_MS).toISOString(),
        consumed_at: null,
        created_at: now.toISOString(),
      };
      await insertFlow(db, flow);
      if (now.getTime() - lastSweep > 10 * MINUTE) {
        lastSweep = now.getTime();
        await deleteExpired(db, new Date(now.getTime() - FLOW_TTL_MS).toISOString());
      }
      return { flow, handle, codeVerifier, nonce };
    },

    /** The flow behind a handle, read only (SAML checks it fully before consuming it). */
    async peek(handle: string): Promise<FlowRow | undefined> {
      return findFlow(db, sha256(handle));
    },

    /**
     * Find and consume the flow behind a handle, exactly once: one conditional update on the way
     * of a good sign-in; the row is read only to say why when there was nothing to consume.
     */
    async consume(handle: string): Promise<FlowRow> {
      const lookupHash = sha256(handle);
      const now = clock.now().toISOString();
      const consumed = await consumeLive(db, lookupHash, now);
      if (consumed) return consumed;
      throw refusal(await findFlow(db, lookupHash), now);
    },

    /**
     * Consume a flow already read (by peek), exactly once: the conditional update decides. With
     * `exec` a transaction, the consume commits with it — or not at all (SAML: with the session).
     */
    async consumeFound(flow: FlowRow | undefined, exec: Executor = db): Promise<FlowRow> {
      const now = clock.now().toISOString();
      if (!flow || flow.consumed_at || flow.expires_at <= now) throw refusal(flow, now);
      if (!(await markConsumed(exec, flow.id, now))) throw refusal({ ...flow, consumed_at: now }, now);
      return { ...flow, consumed_at: now };
    },

    /**
     * SPEC §12: a login that failed on Gatehouse's side (5xx) gives its flow back, so a reload may
     * try again; only a protocol refusal or a success keeps it consumed. Conditional on the stamp
     * this consume wrote, so it never revives a flow another callback consumed since.
     */
    async release(flow: FlowRow): Promise<boolean> {
      if (!flow.consumed_at) return false;
      return markUnconsumed(db, flow.id, flow.consumed_at);
    },
  };
}

export type FlowService = ReturnType<typeof createFlowService>;
