import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DAY, HOUR, MINUTE } from '../../src/clock.js';
import type { Db } from '../../src/db/database.js';
import { newId } from '../../src/ids.js';
import { acquireJobLease } from '../../src/jobs/leases.js';
import { PURGED_TABLES, type HousekeepingResult } from '../../src/jobs/housekeeping.js';
import { finishOutboxRow, outboxRowsOfSession } from '../../src/logout/store.js';
import { createTestGatehouse, ENGINE, TEST_DATABASE_URL, type TestGatehouse, type TestOptions } from '../helpers/app.js';
import { adminClient, lockTables, postgresAvailable, until, waitingBackends } from '../helpers/postgres.js';

/**
 * Housekeeping (src/jobs/housekeeping.ts, docs/operations.md): what has ended goes, in bounded
 * batches, one instance at a time; what is live, in its grace period or still needed stays.
 */

const ago = (t: TestGatehouse, ms: number) => new Date(t.clock.now().getTime() - ms).toISOString();
const ahead = (t: TestGatehouse, ms: number) => new Date(t.clock.now().getTime() + ms).toISOString();

async function ids(db: Db, table: 'sessions' | 'refresh_tokens' | 'oidc_records' | 'logout_outbox' | 'sso_flows' | 'one_time_tokens' | 'invitations' | 'setup_links' | 'mfa_factors' | 'sso_idp_tokens' | 'api_keys'): Promise<string[]> {
  const rows = await db.selectFrom(table).select('id').execute();
  return rows.map((r) => r.id).sort();
}
async function keys(db: Db, table: 'replay_cache' | 'rate_limits'): Promise<string[]> {
  return (await db.selectFrom(table).select('key').execute()).map((r) => r.key).sort();
}
const auditCount = async (db: Db) => Number((await db.selectFrom('audit_events').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow()).n);

/** Rows written straight into the tables, each with the times a test gives it. */
function seeder(t: TestGatehouse) {
  const db = t.deps.db;
  const now = () => t.clock.now().toISOString();
  return {
    async user(): Promise<string> {
      const id = newId();
      await db.insertInto('users').values({ id, email: `${id.toLowerCase()}@hk.test`, name: null, password_hash: null, email_verified: 1, is_superadmin: 0, created_at: now(), updated_at: now() }).execute();
      return id;
    },
    async org(): Promise<string> {
      const id = newId();
      await db.insertInto('organizations').values({ id, name: 'Acme', slug: `acme-${id.toLowerCase()}`, auth_required: 'any', require_mfa: 0, created_at: now(), updated_at: now() }).execute();
      return id;
    },
    async session(userId: string, times: { lastSeen: string; expires: string; revoked?: string }): Promise<string> {
      const id = newId();
      await db
        .insertInto('sessions')
        .values({
          id, token_hash: `h-${id}`, user_id: userId, auth_method: 'password', connection_id: null, organization_id: null, mfa_state: 'none', mfa_completed_at: null,
          ip: '127.0.0.1', user_agent: null, created_at: times.lastSeen, last_seen_at: times.lastSeen, expires_at: times.expires, absolute_expires_at: times.expires,
          revoked_at: times.revoked ?? null, identity_id: null, idp_session_id: null, idp_logout_enc: null,
        })
        .execute();
      return id;
    },
    async refreshToken(sessionId: string, userId: string, familyId: string, expires: string): Promise<string> {
      const id = newId();
      await db.insertInto('refresh_tokens').values({ id, token_hash: `h-${id}`, family_id: familyId, session_id: sessionId, user_id: userId, organization_id: null, created_at: now(), expires_at: expires, used_at: null, revoked_at: null }).execute();
      return id;
    },
    async sessionClient(sessionId: string, clientId = 'app'): Promise<void> {
      await db.insertInto('session_clients').values({ session_id: sessionId, client_id: clientId, created_at: now() }).execute();
    },
    async outbox(sessionId: string, userId: string, status: 'pending' | 'delivered' | 'abandoned', finishedAt: string | null): Promise<string> {
      const id = newId();
      await db
        .insertInto('logout_outbox')
        .values({ id, session_id: sessionId, user_id: userId, client_id: 'app', reason: 'signed_out', status, attempts: 0, next_attempt_at: now(), locked_until: null, last_error: null, created_at: now(), give_up_at: ahead(t, DAY), finished_at: finishedAt })
        .execute();
      return id;
    },
    async oidcRecord(expires: string | null): Promise<string> {
      const id = newId();
      await db.insertInto('oidc_records').values({ model: 'AccessToken', id, payload: '{}', grant_id: null, uid: null, user_code: null, session_id: null, organization_id: null, expires_at: expires, consumed_at: null }).execute();
      return id;
    },
    async connection(orgId: string): Promise<string> {
      const id = newId();
      await db
        .insertInto('sso_connections')
        .values({
          id, organization_id: orgId, protocol: 'oidc', provider: 'generic', status: 'active', enabled: 1, config_version: 1, issuer: 'https://idp.hk.test', config: '{}', secret_enc: null,
          allow_jit: 1, default_role: 'member', allowed_domains: null, allow_idp_initiated: 0, last_test_ok: null, last_test_at: null, last_test_version: null, created_at: now(), updated_at: now(),
        })
        .execute();
      return id;
    },
    async flow(orgId: string, connectionId: string, expires: string): Promise<string> {
      const id = newId();
      await db
        .insertInto('sso_flows')
        .values({ id, lookup_hash: `h-${id}`, organization_id: orgId, connection_id: connectionId, config_version: 1, protocol: 'oidc', code_verifier: null, nonce: null, return_to: '/', login_hint: null, browser_binding_hash: null, expires_at: expires, consumed_at: null, created_at: now() })
        .execute();
      return id;
    },
    async idpToken(orgId: string, connectionId: string, userId: string, status: 'valid' | 'revoked' | 'refresh_failed', updated: string): Promise<string> {
      const id = newId();
      await db.insertInto('sso_identities').values({ id, connection_id: connectionId, organization_id: orgId, user_id: userId, subject: `sub-${id}`, email: null, claims: '{}', last_login_at: now(), created_at: now() }).execute();
      await db
        .insertInto('sso_idp_tokens')
        .values({
          id, organization_id: orgId, connection_id: connectionId, user_id: userId, status, access_token_enc: null, refresh_token_enc: null, access_token_expires_at: null, scopes: '[]', generation: 1,
          lease_holder: null, lease_until: null, failures: 0, next_attempt_at: null, last_error: null, obtained_at: updated, last_refreshed_at: null, updated_at: updated,
        })
        .execute();
      return id;
    },
    async replayKey(expires: string, key = `saml:c:${newId()}`): Promise<string> {
      await db.insertInto('replay_cache').values({ key, expires_at: expires }).execute();
      return key;
    },
    async oneTimeToken(expires: string): Promise<string> {
      const id = newId();
      await db.insertInto('one_time_tokens').values({ id, token_hash: `h-${id}`, purpose: 'magic_link', user_id: null, email: 'x@hk.test', data: null, expires_at: expires, used_at: null, created_at: now() }).execute();
      return id;
    },
    async invitation(orgId: string, times: { expires: string; revoked?: string }): Promise<string> {
      const id = newId();
      await db.insertInto('invitations').values({ id, organization_id: orgId, email: 'x@hk.test', role: 'member', token_hash: `h-${id}`, invited_by: null, expires_at: times.expires, accepted_at: null, accepted_by: null, revoked_at: times.revoked ?? null, created_at: now() }).execute();
      return id;
    },
    async setupLink(orgId: string, times: { expires: string; revoked?: string }): Promise<string> {
      const id = newId();
      await db
        .insertInto('setup_links')
        .values({ id, organization_id: orgId, token_hash: `h-${id}`, scope: '["sso"]', created_by: null, created_by_api_key_id: null, binding_hash: null, bound_at: null, last_used_at: null, expires_at: times.expires, revoked_at: times.revoked ?? null, created_at: now() })
        .execute();
      return id;
    },
    async factor(userId: string, created: string, confirmed: string | null): Promise<string> {
      const id = newId();
      await db.insertInto('mfa_factors').values({ id, user_id: userId, type: 'totp', secret_enc: 'sealed', confirmed_at: confirmed, last_used_step: null, created_at: created }).execute();
      return id;
    },
    async apiKey(userId: string, times: { revoked?: string; expires?: string }): Promise<string> {
      const id = newId();
      await db
        .insertInto('api_keys')
        .values({ id, user_id: userId, name: 'k', key_hash: `h-${id}`, key_prefix: 'gk_', scopes: null, organization_id: null, expires_at: times.expires ?? null, last_used_at: null, created_at: now(), revoked_at: times.revoked ?? null })
        .execute();
      return id;
    },
    async rateLimit(expire: number | null): Promise<string> {
      const key = `sign-in:${newId()}`;
      await db.insertInto('rate_limits').values({ key, points: 1, expire }).execute();
      return key;
    },
    async auditEvent(createdAt: string): Promise<void> {
      await db.insertInto('audit_events').values({ id: newId(), organization_id: null, actor_type: 'system', actor_user_id: null, actor_api_key_id: null, actor_setup_link_id: null, action: 'session.revoked', target_type: null, target_id: null, ip: null, user_agent: null, request_id: null, metadata: null, created_at: createdAt }).execute();
    },
  };
}

const purgedOnly = (r: HousekeepingResult) => Object.fromEntries(Object.entries(r.purged).filter(([, n]) => n > 0));

describe(`housekeeping on ${ENGINE}`, () => {
  let t: TestGatehouse;
  /** Instances of one test (a test that moves the clock gets its own), closed after it, last made first. */
  const own: TestGatehouse[] = [];
  const fresh = async (options: TestOptions = {}) => {
    const gh = await createTestGatehouse(options);
    own.unshift(gh);
    return gh;
  };
  beforeAll(async () => {
    t = await createTestGatehouse();
  });
  afterEach(async () => {
    for (const gh of own.splice(0)) await gh.destroy();
  });
  afterAll(async () => {
    await t.destroy();
  });

  it('purges every kind of ended row and keeps the live ones, those in their grace period and those still needed; audit events stay', async () => {
    const s = seeder(t);
    const db = t.deps.db;
    const user = await s.user();
    const org = await s.org();
    const conn = await s.connection(org);
    for (const age of [0, 400 * DAY]) await s.auditEvent(ago(t, age));
    const auditBefore = await auditCount(db);

    // Sessions: the known-address window (30 days since last seen) and the grace period (7 days since the end) both have to be over.
    const oldRevoked = await s.session(user, { lastSeen: ago(t, 31 * DAY), expires: ago(t, 24 * DAY), revoked: ago(t, 30 * DAY) });
    await s.refreshToken(oldRevoked, user, newId(), ago(t, 24 * DAY));
    await s.sessionClient(oldRevoked);
    const recentlySeen = await s.session(user, { lastSeen: ago(t, 9 * DAY), expires: ago(t, 2 * DAY), revoked: ago(t, 8 * DAY) });
    const pendingLogout = await s.session(user, { lastSeen: ago(t, 40 * DAY), expires: ago(t, 33 * DAY), revoked: ago(t, 32 * DAY) });
    await s.sessionClient(pendingLogout);
    const pendingRow = await s.outbox(pendingLogout, user, 'pending', null);
    const live = await s.session(user, { lastSeen: ago(t, MINUTE), expires: ahead(t, 7 * DAY) });
    // Refresh tokens of a live session: a family that is over goes; a spent token of a family still alive stays (reuse detection).
    const overFamily = newId();
    await s.refreshToken(live, user, overFamily, ago(t, 9 * DAY));
    await s.refreshToken(live, user, overFamily, ago(t, 8 * DAY));
    const aliveFamily = newId();
    const spent = await s.refreshToken(live, user, aliveFamily, ago(t, 9 * DAY));
    const current = await s.refreshToken(live, user, aliveFamily, ahead(t, DAY));

    await s.oidcRecord(ago(t, 1000));
    const oidcLive = await s.oidcRecord(ahead(t, HOUR));
    const oidcNoExpiry = await s.oidcRecord(null);
    await s.outbox(live, user, 'delivered', ago(t, 8 * DAY));
    await s.outbox(live, user, 'abandoned', ago(t, 8 * DAY));
    const deliveredRecent = await s.outbox(live, user, 'delivered', ago(t, DAY));
    await s.flow(org, conn, ago(t, 2 * HOUR));
    const flowJustExpired = await s.flow(org, conn, ago(t, 30 * MINUTE));
    const flowLive = await s.flow(org, conn, ahead(t, 5 * MINUTE));
    await s.replayKey(ago(t, 1000));
    const replayLive = await s.replayKey(ahead(t, HOUR));
    await s.oneTimeToken(ago(t, 8 * DAY));
    const ottGrace = await s.oneTimeToken(ago(t, DAY));
    const ottLive = await s.oneTimeToken(ahead(t, 10 * MINUTE));
    await s.invitation(org, { expires: ago(t, 8 * DAY) });
    await s.invitation(org, { expires: ahead(t, DAY), revoked: ago(t, 8 * DAY) });
    const invPending = await s.invitation(org, { expires: ahead(t, 3 * DAY) });
    const invGrace = await s.invitation(org, { expires: ago(t, 2 * DAY) });
    await s.setupLink(org, { expires: ago(t, 8 * DAY) });
    await s.setupLink(org, { expires: ahead(t, DAY), revoked: ago(t, 8 * DAY) });
    const linkLive = await s.setupLink(org, { expires: ahead(t, DAY) });
    await s.factor(user, ago(t, 2 * DAY), null);
    const enrolmentFresh = await s.factor(user, ago(t, HOUR), null);
    const confirmedOld = await s.factor(user, ago(t, 400 * DAY), ago(t, 400 * DAY));
    const idpRevoked = await s.idpToken(org, conn, user, 'revoked', ago(t, 8 * DAY));
    const idpFailed = await s.idpToken(org, conn, user, 'refresh_failed', ago(t, 8 * DAY));
    const idpRecentlyRevoked = await s.idpToken(org, conn, user, 'revoked', ago(t, DAY));
    const idpValid = await s.idpToken(org, conn, user, 'valid', ago(t, 400 * DAY));
    await s.apiKey(user, { revoked: ago(t, 8 * DAY) });
    const keyRecentlyRevoked = await s.apiKey(user, { revoked: ago(t, DAY) });
    const keyExpired = await s.apiKey(user, { expires: ago(t, 400 * DAY) });
    await s.rateLimit(t.clock.now().getTime() - 1000);
    const limitLive = await s.rateLimit(t.clock.now().getTime() + MINUTE);
    const limitForever = await s.rateLimit(null);

    const result = await t.services.housekeeping.runOnce();
    expect(result.skipped).toBe(false);
    expect(result.capped).toEqual([]);
    expect(purgedOnly(result)).toEqual({
      sessions: 1, refresh_tokens: 3, session_clients: 1, oidc_records: 1, logout_outbox: 2, sso_flows: 1, replay_cache: 1, one_time_tokens: 1,
      invitations: 2, setup_links: 2, mfa_factors: 1, sso_idp_tokens: 2, api_keys: 1, rate_limits: 1,
    });

    expect(await ids(db, 'sessions')).toEqual([recentlySeen, pendingLogout, live].sort());
    expect(await ids(db, 'refresh_tokens')).toEqual([spent, current].sort());
    expect((await db.selectFrom('session_clients').select('session_id').execute()).map((r) => r.session_id)).toEqual([pendingLogout]);
    expect(await ids(db, 'oidc_records')).toEqual([oidcLive, oidcNoExpiry].sort());
    expect(await ids(db, 'logout_outbox')).toEqual([pendingRow, deliveredRecent].sort());
    expect(await ids(db, 'sso_flows')).toEqual([flowJustExpired, flowLive].sort());
    expect(await keys(db, 'replay_cache')).toEqual([replayLive]);
    expect(await ids(db, 'one_time_tokens')).toEqual([ottGrace, ottLive].sort());
    expect(await ids(db, 'invitations')).toEqual([invPending, invGrace].sort());
    expect(await ids(db, 'setup_links')).toEqual([linkLive]);
    expect(await ids(db, 'mfa_factors')).toEqual([enrolmentFresh, confirmedOld].sort());
    expect(await ids(db, 'sso_idp_tokens')).toEqual([idpRecentlyRevoked, idpValid].sort());
    // An identity whose tokens went keeps its identity (only the vault row goes).
    expect(await db.selectFrom('sso_identities').select('id').where('id', 'in', [idpRevoked, idpFailed]).execute()).toHaveLength(2);
    expect(await ids(db, 'api_keys')).toEqual([keyRecentlyRevoked, keyExpired].sort());
    expect(await keys(db, 'rate_limits')).toEqual([limitLive, limitForever].sort());
    expect(await auditCount(db)).toBe(auditBefore);

    // A second run finds nothing more.
    expect(purgedOnly(await t.services.housekeeping.runOnce())).toEqual({});
  });

  it('a signed-out session stays while its address is a known one (30 days since last seen), then goes; its audit trail stays', async () => {
    const gh = await fresh();
    const user = await gh.signUp('leaver@hk.test');
    expect((await gh.request('POST', '/api/auth/sign-out', { as: user })).status).toBe(200);
    const auditBefore = await auditCount(gh.deps.db);
    const sessionsOf = async () => (await gh.deps.db.selectFrom('sessions').select('id').where('user_id', '=', user.id).execute()).length;
    expect(await sessionsOf()).toBe(1);

    gh.clock.advance(8 * DAY);
    expect((await gh.services.housekeeping.runOnce()).purged.sessions).toBe(0);
    expect(await sessionsOf()).toBe(1);

    gh.clock.advance(23 * DAY);
    expect((await gh.services.housekeeping.runOnce()).purged.sessions).toBe(1);
    expect(await sessionsOf()).toBe(0);
    expect(await auditCount(gh.deps.db)).toBe(auditBefore);
  });

  it('a session with a pending back-channel logout keeps it deliverable; once delivered and past the grace period both go', async () => {
    const gh = await fresh();
    const s = seeder(gh);
    const user = await s.user();
    const ended = await s.session(user, { lastSeen: ago(gh, 60 * DAY), expires: ago(gh, 53 * DAY), revoked: ago(gh, 50 * DAY) });
    await s.sessionClient(ended, 'billing');
    const row = await s.outbox(ended, user, 'pending', null);

    await gh.services.housekeeping.runOnce();
    expect(await gh.deps.db.selectFrom('sessions').select('id').where('id', '=', ended).execute()).toHaveLength(1);
    expect(await gh.deps.db.selectFrom('session_clients').select('client_id').where('session_id', '=', ended).execute()).toEqual([{ client_id: 'billing' }]);
    const pending = await outboxRowsOfSession(gh.deps.db, ended);
    expect(pending.map((r) => [r.id, r.status])).toEqual([[row, 'pending']]);

    await finishOutboxRow(gh.deps.db, row, 0, 'delivered', gh.clock.now().toISOString(), null);
    gh.clock.advance(8 * DAY);
    const result = await gh.services.housekeeping.runOnce();
    expect(result.purged).toMatchObject({ sessions: 1, session_clients: 1, logout_outbox: 1 });
    expect(await outboxRowsOfSession(gh.deps.db, ended)).toEqual([]);
  });

  it('more rows than one batch all go in one run (default batch of 500)', async () => {
    const gh = await fresh();
    const expired = ago(gh, 1000);
    const rows = Array.from({ length: 1201 }, (_, i) => ({ key: `saml:bulk:${i}`, expires_at: expired }));
    for (let i = 0; i < rows.length; i += 200) await gh.deps.db.insertInto('replay_cache').values(rows.slice(i, i + 200)).execute();
    const live = await seeder(gh).replayKey(ahead(gh, HOUR));
    const result = await gh.services.housekeeping.runOnce();
    expect(result.purged.replay_cache).toBe(1201);
    expect(result.capped).toEqual([]);
    expect(await keys(gh.deps.db, 'replay_cache')).toEqual([live]);
  });

  it('a run stops at its cap per table (batches × batch size); the next run goes on', async () => {
    const gh = await fresh({ housekeeping: { batchSize: 10, maxBatches: 2 } });
    const s = seeder(gh);
    for (let i = 0; i < 25; i++) await s.oneTimeToken(ago(gh, 8 * DAY));
    const first = await gh.services.housekeeping.runOnce();
    expect(first.purged.one_time_tokens).toBe(20);
    expect(first.capped).toEqual(['one_time_tokens']);
    const second = await gh.services.housekeeping.runOnce();
    expect(second.purged.one_time_tokens).toBe(5);
    expect(second.capped).toEqual([]);
  });

  it('runs on its timer when GATEHOUSE_HOUSEKEEPING is on (the first run at start), and stops with the instance', async () => {
    // Seeded through an instance without the timer, purged by a second one on the same database.
    const databaseUrl = TEST_DATABASE_URL ?? `sqlite:${join(mkdtempSync(join(tmpdir(), 'gh-hk-')), 'hk.db')}`;
    const seeded = await fresh({ databaseUrl });
    await seeder(seeded).replayKey(ago(seeded, 1000));
    const timed = await fresh({ databaseUrl, clock: seeded.clock, ...(seeded.schema ? { schema: seeded.schema } : {}), env: { GATEHOUSE_HOUSEKEEPING: 'true' } });
    await until(async () => (await keys(timed.deps.db, 'replay_cache')).length === 0, 'the first timed run');
  });

  it.runIf(ENGINE === 'sqlite')('SQLite: skips the run while another process holds the housekeeping lease, runs once it has run out', async () => {
    const gh = await fresh();
    const now = gh.clock.now();
    const leaseUntil = new Date(now.getTime() + 10 * MINUTE).toISOString();
    expect(await acquireJobLease(gh.deps.db, 'housekeeping', 'another-process', now.toISOString(), leaseUntil)).toBe(true);
    const expired = await seeder(gh).replayKey(ago(gh, 1000));
    const skipped = await gh.services.housekeeping.runOnce();
    expect(skipped.skipped).toBe(true);
    expect(await keys(gh.deps.db, 'replay_cache')).toContain(expired);
    gh.clock.advance(11 * MINUTE);
    const ran = await gh.services.housekeeping.runOnce();
    expect(ran.skipped).toBe(false);
    expect(ran.purged.replay_cache).toBe(1);
    // A finished run gives the lease back.
    expect(await gh.deps.db.selectFrom('job_leases').select('name').where('name', '=', 'housekeeping').execute()).toEqual([]);
  });

  it('audit events are not among the tables the purge deletes from', () => {
    expect(new Set(PURGED_TABLES).size).toBe(PURGED_TABLES.length);
    expect(PURGED_TABLES).not.toContain('audit_events');
  });
});

describe.runIf(postgresAvailable('the two-instance housekeeping test'))('housekeeping with two instances on one PostgreSQL database', () => {
  let a: TestGatehouse;
  let b: TestGatehouse;
  beforeAll(async () => {
    a = await createTestGatehouse();
    b = await createTestGatehouse({ databaseUrl: TEST_DATABASE_URL!, schema: a.schema!, clock: a.clock });
  });
  afterAll(async () => {
    await b?.destroy();
    await a?.destroy();
  });

  it('only one purges at a time: the other skips while the first holds the lock; nothing is deleted twice, no error', async () => {
    const s = seeder(a);
    for (let i = 0; i < 30; i++) await s.replayKey(ago(a, 1000));
    for (let i = 0; i < 10; i++) await s.oneTimeToken(ago(a, 8 * DAY));

    // A stops inside its run (on a table locked by another session) while it holds the purge lock.
    const admin = await adminClient();
    const lock = await lockTables(a.schema!, ['replay_cache']);
    let first: Promise<HousekeepingResult> | null = null;
    try {
      first = a.services.housekeeping.runOnce();
      await until(async () => (await waitingBackends(admin, a.schema!)) > 0, 'instance A to wait inside its run');
      const second = await b.services.housekeeping.runOnce();
      expect(second.skipped).toBe(true);
      expect(purgedOnly(second)).toEqual({});
    } finally {
      await lock.release();
      await admin.end();
    }
    const done = await first!;
    expect(done.skipped).toBe(false);
    expect(purgedOnly(done)).toEqual({ replay_cache: 30, one_time_tokens: 10 });

    // Both at once, nothing left: whichever runs finds nothing, neither fails.
    const both = await Promise.all([a.services.housekeeping.runOnce(), b.services.housekeeping.runOnce()]);
    for (const r of both) expect(purgedOnly(r)).toEqual({});
    expect(await keys(a.deps.db, 'replay_cache')).toEqual([]);
  });
});
