import { randomBytes } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import { AliasNode, Kysely, SelectQueryNode, SqliteDialect, TableNode, type KyselyPlugin, type RootOperationNode } from 'kysely';
import type { Database } from '../../src/db/schema.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemCtx } from '../../src/context.js';
import { findActiveConnection } from '../../src/sso/connections/store.js';
import { parseConnection } from '../../src/sso/connections/model.js';
import { findOrganization } from '../../src/organizations/store.js';
import { revokeSessionsWhere } from '../../src/logout/store.js';
import { createSsoCompletion } from '../../src/sso/completion.js';
import { deleteIdentity } from '../../src/sso/identities/store.js';
import type { SsoProfile } from '../../src/sso/provisioning.js';
import { BASE_URL, ENGINE, createOrg, createTestGatehouse, dropSchema, TEST_DATABASE_URL, testKeySpec, type TestGatehouse, type TestResponse, type TestUser } from '../helpers/app.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { seedVerifiedDomain } from '../helpers/policy.js';
import { adminClient, postgresAvailable, until, waitingBackends } from '../helpers/postgres.js';
import { IDP_KEYS, decodeRedirect, forgeResponse, postForm, responseFields } from '../helpers/saml-forge.js';
import { CALLBACK, configureOidc } from '../helpers/sso.js';

/**
 * SPEC §12: two first SSO logins of the same new person at once (a double click, two tabs, two
 * instances behind a load balancer) both succeed, as one user with one identity and one
 * membership — for OIDC through the real `oidc-provider` IdP, and for SAML with two distinct
 * signed assertions for one NameID. On PostgreSQL the two transactions truly race; on SQLite one
 * process serialises them, so the race window itself is also driven directly: the other login
 * commits exactly between this login's read and its insert.
 */
const IDP_ENTITY_ID = 'https://idp.race.example/saml/metadata';
const IDP_ORIGIN = 'https://idp.race.example';

interface World {
  owner: TestUser;
  orgId: string;
  samlOrgId: string;
}

async function buildWorld(t: TestGatehouse, idp: RealIdp, suffix: string): Promise<World> {
  const owner = await t.signUp(`owner-${suffix}@race.test`);
  const orgId = await createOrg(t, owner, `Race ${suffix}`, `race-${suffix}`);
  await configureOidc(t, owner, orgId, idp);
  const samlOrgId = await createOrg(t, owner, `Race SAML ${suffix}`, `race-saml-${suffix}`);
  const put = await t.request('PUT', `/api/user/organizations/${samlOrgId}/settings/sso`, {
    as: owner,
    body: { provider: 'saml', idpEntityId: IDP_ENTITY_ID, idpSsoUrl: 'http://127.0.0.1:9/saml/sso', idpCertificate: IDP_KEYS.cert },
  });
  if (put.status !== 200) throw new Error(`PUT settings/sso (SAML) failed: ${put.status} ${put.text}`);
  return { owner, orgId, samlOrgId };
}

/** One browser's OIDC login up to the IdP's redirect back (not followed yet). */
async function oidcUpToCallback(t: TestGatehouse, idp: RealIdp, slug: string, sub: string) {
  const start = await t.request('GET', `/api/auth/sso/${slug}/login`);
  expect(start.status, start.text).toBe(302);
  const back = await idp.login(start.headers.get('location')!, sub);
  return { path: back.pathname + back.search, cookies: start.cookies };
}

/** One browser's SAML login: the AuthnRequest Gatehouse sent and the IdP's signed answer to it. */
async function samlResponseFor(t: TestGatehouse, slug: string, nameId: string) {
  const start = await t.request('GET', `/api/auth/sso/${slug}/login`);
  expect(start.status, start.text).toBe(302);
  const req = decodeRedirect(start.headers.get('location')!);
  const acsUrl = `${BASE_URL}/api/auth/sso/${slug}/saml/acs`;
  const spEntityId = `${BASE_URL}/api/auth/sso/${slug}/saml/metadata`;
  const xml = forgeResponse(responseFields({ acsUrl, spEntityId, idpEntityId: IDP_ENTITY_ID, inResponseTo: req.id, now: t.clock.now(), email: nameId }));
  return postForm(xml, req.relayState);
}

function postAcs(t: TestGatehouse, slug: string, body: string): Promise<TestResponse> {
  return t.request('POST', `/api/auth/sso/${slug}/saml/acs`, { rawBody: body, origin: IDP_ORIGIN, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
}

/** Both answers are a signed-in redirect; returns the user id of each session. */
async function signedInUsers(t: TestGatehouse, answers: TestResponse[]): Promise<string[]> {
  const ids: string[] = [];
  for (const res of answers) {
    expect(res.status, res.text).toBe(302);
    expect(res.cookie).toBeTruthy();
    const session = await t.request('GET', '/api/auth/session', { as: { cookie: res.cookie! } });
    expect(session.status, session.text).toBe(200);
    expect(session.body.data.session.authMethod).toBe('sso');
    ids.push(session.body.data.user.id);
  }
  return ids;
}

/** Exactly one user, one identity, one membership for this person. */
async function expectOnePerson(t: TestGatehouse, email: string, subject: string, orgId: string) {
  const db = t.deps.db;
  const users = await db.selectFrom('users').select('id').where('email', '=', email).execute();
  expect(users).toHaveLength(1);
  const identities = await db.selectFrom('sso_identities').select(['id', 'user_id']).where('subject', '=', subject).where('organization_id', '=', orgId).execute();
  expect(identities).toEqual([{ id: expect.any(String), user_id: users[0]!.id }]);
  const memberships = await db.selectFrom('members').select('role').where('organization_id', '=', orgId).where('user_id', '=', users[0]!.id).execute();
  expect(memberships).toHaveLength(1);
  const created = await db.selectFrom('audit_events').select('id').where('action', '=', 'user.created').where('target_id', '=', users[0]!.id).execute();
  expect(created).toHaveLength(1);
  return users[0]!.id;
}

const fresh = () => randomBytes(4).toString('hex');

describe(`two first SSO logins of one new person at once, one instance, on ${ENGINE}`, () => {
  let t: TestGatehouse;
  let idp: RealIdp;
  let world: World;
  beforeAll(async () => {
    idp = await startRealIdp({ redirectUris: [CALLBACK] });
    t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
    world = await buildWorld(t, idp, 'one');
  });
  afterAll(async () => {
    await t.destroy();
    await idp.close();
  });

  it('OIDC: both callbacks sign in, as one user with one identity and one membership', async () => {
    const sub = `sub-${fresh()}`;
    const email = `${sub}@newcomer.test`;
    idp.users.set(sub, { sub, email, email_verified: true, name: 'New Comer' });
    const first = await oidcUpToCallback(t, idp, 'race-one', sub);
    const second = await oidcUpToCallback(t, idp, 'race-one', sub);
    const answers = await Promise.all([first, second].map((b) => t.request('GET', b.path, { cookies: b.cookies })));
    const [a, b] = await signedInUsers(t, answers);
    expect(a).toBe(b);
    expect(await expectOnePerson(t, email, sub, world.orgId)).toBe(a);
  });

  it('SAML: two distinct signed assertions for one NameID both sign in, as one user with one identity and one membership', async () => {
    const nameId = `saml-${fresh()}@newcomer.test`;
    const bodies = [await samlResponseFor(t, 'race-saml-one', nameId), await samlResponseFor(t, 'race-saml-one', nameId)];
    const answers = await Promise.all(bodies.map((body) => postAcs(t, 'race-saml-one', body)));
    const [a, b] = await signedInUsers(t, answers);
    expect(a).toBe(b);
    expect(await expectOnePerson(t, nameId, nameId, world.samlOrgId)).toBe(a);
  });

  it('many first logins of one person at once (OIDC and SAML mixed per protocol) still make one account each', async () => {
    const sub = `sub-${fresh()}`;
    const email = `${sub}@newcomer.test`;
    idp.users.set(sub, { sub, email, email_verified: true });
    const browsers = [];
    for (let i = 0; i < 4; i++) browsers.push(await oidcUpToCallback(t, idp, 'race-one', sub));
    const nameId = `saml-${fresh()}@newcomer.test`;
    const bodies = [];
    for (let i = 0; i < 4; i++) bodies.push(await samlResponseFor(t, 'race-saml-one', nameId));
    const answers = await Promise.all([...browsers.map((b) => t.request('GET', b.path, { cookies: b.cookies })), ...bodies.map((body) => postAcs(t, 'race-saml-one', body))]);
    const ids = await signedInUsers(t, answers);
    expect(new Set(ids.slice(0, 4)).size).toBe(1);
    expect(new Set(ids.slice(4)).size).toBe(1);
    await expectOnePerson(t, email, sub, world.orgId);
    await expectOnePerson(t, nameId, nameId, world.samlOrgId);
  });
});

/**
 * The race window, driven: a Kysely plugin on this login's transaction lets the other login of
 * the same person run its whole provisioning (the real code) right after this login's first read
 * of `table`. On PostgreSQL the other login is its own transaction on another connection and
 * commits; on SQLite (one connection) it runs on the same connection inside this transaction,
 * through a second Kysely instance, which is what "committed meanwhile" looks like from here.
 */
function otherLoginAfterFirstRead(table: 'users' | 'sso_identities', otherLogin: () => Promise<unknown>): KyselyPlugin & { fired: () => boolean } {
  const nodes = new Map<unknown, RootOperationNode>();
  let fired = false;
  return {
    fired: () => fired,
    transformQuery(args) {
      nodes.set(args.queryId, args.node);
      return args.node;
    },
    async transformResult(args) {
      const node = nodes.get(args.queryId);
      nodes.delete(args.queryId);
      const first = node && SelectQueryNode.is(node) ? node.from?.froms[0] : undefined;
      const from = first && AliasNode.is(first) ? first.node : first; // `from sso_identities as i`
      if (!fired && from && TableNode.is(from) && from.table.identifier.name === table) {
        fired = true;
        await otherLogin();
      }
      return args.result;
    },
  };
}

describe(`the provisioning race window, driven, on ${ENGINE}`, () => {
  let t: TestGatehouse;
  let idp: RealIdp;
  let world: World;
  beforeAll(async () => {
    idp = await startRealIdp({ redirectUris: [CALLBACK] });
    t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
    world = await buildWorld(t, idp, 'driven');
  });
  afterAll(async () => {
    await t.destroy();
    await idp.close();
  });

  for (const table of ['users', 'sso_identities'] as const) {
    it(`the other first login commits right after this one read ${table}: this one signs in as the same user, nothing duplicated`, async () => {
      const db = t.deps.db;
      const connection = parseConnection((await findActiveConnection(db, world.orgId))!);
      const org = (await findOrganization(db, world.orgId))!;
      const sub = `driven-${fresh()}`;
      const profile: SsoProfile = { subject: sub, email: `${sub}@newcomer.test`, emailVerified: true, name: 'Driven', claims: { sub } };
      const { mine, theirs } = await db.transaction().execute(async (tx) => {
        let theirs: Awaited<ReturnType<typeof t.services.provisioning.provision>> | undefined;
        const plugin = otherLoginAfterFirstRead(table, async () => {
          const provision = t.services.provisioning.provision;
          if (t.deps.database.raw.kind === 'postgres') {
            theirs = await db.transaction().execute((other) => provision(other, systemCtx, connection, org, profile));
          } else {
            const sameConnection = new Kysely<Database>({ dialect: new SqliteDialect({ database: t.deps.database.raw.client as BetterSqlite3.Database }) });
            theirs = await provision(sameConnection, systemCtx, connection, org, profile);
          }
        });
        const mine = await t.services.provisioning.provision(tx.withPlugin(plugin), systemCtx, connection, org, profile);
        expect(plugin.fired(), 'the other login ran inside the window').toBe(true);
        return { mine, theirs: theirs! };
      });
      expect(theirs.outcome).toBe('created');
      expect(mine.outcome).toBe('existing_identity');
      expect(mine.user.id).toBe(theirs.user.id);
      expect(mine.identityId).toBe(theirs.identityId);
      await expectOnePerson(t, profile.email!, sub, world.orgId);
    });
  }
});

/**
 * SPEC §12 "Unlinking an identity ends the sessions it created", against a login in flight: the
 * login read the identity (provisioning step 1), an admin unlinks it — which ends the user's SSO
 * sessions of that connection — and only then does the login record itself and create its
 * session. That session must not outlive the link: the login finds the identity gone and decides
 * again without it, under the usual rules. Driven like the race window above, through the real
 * completion (provisioning, session, audit in one transaction). On PostgreSQL the unlink is the
 * admin's DELETE request, committed on its own connection; on SQLite (one connection) it is the
 * unlink's own statements run inside the window on that connection.
 */
describe(`an identity unlinked while its login is in flight, driven, on ${ENGINE}`, () => {
  let t: TestGatehouse;
  let idp: RealIdp;
  let world: World;
  const meta = { ip: '127.0.0.1', userAgent: 'vitest', requestId: null };
  beforeAll(async () => {
    idp = await startRealIdp({ redirectUris: [CALLBACK] });
    t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
    world = await buildWorld(t, idp, 'unlink');
  });
  afterAll(async () => {
    await t.destroy();
    await idp.close();
  });

  /** A person who signed in once through the connection: user, identity and a live SSO session. */
  async function signedInOnce(domain: string) {
    const db = t.deps.db;
    const connection = parseConnection((await findActiveConnection(db, world.orgId))!);
    const org = (await findOrganization(db, world.orgId))!;
    const sub = `unlink-${fresh()}`;
    const profile: SsoProfile = { subject: sub, email: `${sub}@${domain}`, emailVerified: true, name: 'Unlinked', claims: { sub } };
    const first = await t.services.provisioning.provision(db, systemCtx, connection, org, profile);
    await t.services.sessions.create(db, first.user, { authMethod: 'sso', connectionId: connection.id, organizationId: org.id, mfaState: 'none' }, meta);
    return { connection, org, profile, userId: first.user.id, identityId: first.identityId };
  }

  /** The login in flight, with the admin's unlink of `identityId` right after its first read of sso_identities. */
  function loginWithUnlinkInWindow(identityId: string, userId: string, connectionId: string) {
    const plugin = otherLoginAfterFirstRead('sso_identities', async () => {
      if (t.deps.database.raw.kind === 'postgres') {
        const res = await t.request('DELETE', `/api/user/organizations/${world.orgId}/sso/identities/${identityId}`, { as: world.owner });
        expect(res.status, res.text).toBe(200);
        expect(res.body.message).toContain('1 session(s) it created ended');
      } else {
        const same = new Kysely<Database>({ dialect: new SqliteDialect({ database: t.deps.database.raw.client as BetterSqlite3.Database }) });
        expect(await deleteIdentity(same, world.orgId, identityId)).toBeTruthy();
        expect(await revokeSessionsWhere(same, { by: 'user_connection', userId, connectionId }, t.clock.now().toISOString())).toHaveLength(1);
      }
    });
    const completion = createSsoCompletion({ db: t.deps.db.withPlugin(plugin), provisioning: t.services.provisioning, sessions: t.services.sessions, audit: t.services.audit, rateLimits: t.deps.rateLimits, idpTokens: t.services.idpTokens });
    return { plugin, completion };
  }

  const liveSsoSessions = (userId: string, connectionId: string) =>
    t.deps.db.selectFrom('sessions').select('id').where('user_id', '=', userId).where('auth_method', '=', 'sso').where('connection_id', '=', connectionId).where('revoked_at', 'is', null).execute();
  const identitiesOf = (subject: string) => t.deps.db.selectFrom('sso_identities').select('id').where('organization_id', '=', world.orgId).where('subject', '=', subject).execute();

  it('without a verified domain the login is refused (account_link_required): no session outlives the unlinked identity', async () => {
    const me = await signedInOnce('unlinked.test');
    const { plugin, completion } = loginWithUnlinkInWindow(me.identityId, me.userId, me.connection.id);
    const login = completion.signIn(meta, { connection: me.connection, org: me.org, profile: me.profile, returnTo: '/' });
    await expect(login).rejects.toMatchObject({ reason: 'account_link_required', code: 'SSO_ACCOUNT_LINK_REQUIRED' });
    expect(plugin.fired(), 'the unlink ran inside the window').toBe(true);
    const succeeded = await t.deps.db.selectFrom('audit_events').select('id').where('action', '=', 'sso.login_succeeded').where('target_id', '=', me.identityId).execute();
    expect(succeeded).toEqual([]);
    if (ENGINE === 'postgres') {
      // The unlink committed; the login created nothing: no identity, no live session.
      expect(await identitiesOf(me.profile.subject)).toEqual([]);
      expect(await liveSsoSessions(me.userId, me.connection.id)).toEqual([]);
    }
    // (SQLite: the unlink ran inside the refused login's transaction and was rolled back with it.)
  });

  it('with a verified domain the login links a new identity under the usual rules, never signs in through the removed one', async () => {
    await seedVerifiedDomain(t, world.orgId, 'relinked.test');
    const me = await signedInOnce('relinked.test');
    const { plugin, completion } = loginWithUnlinkInWindow(me.identityId, me.userId, me.connection.id);
    const result = await completion.signIn(meta, { connection: me.connection, org: me.org, profile: me.profile, returnTo: '/' });
    expect(plugin.fired(), 'the unlink ran inside the window').toBe(true);
    expect(result.user.id).toBe(me.userId);
    const identities = await identitiesOf(me.profile.subject);
    expect(identities).toHaveLength(1);
    expect(identities[0]!.id).not.toBe(me.identityId);
    const success = await t.deps.db.selectFrom('audit_events').select(['target_id', 'metadata']).where('action', '=', 'sso.login_succeeded').where('target_id', 'in', [me.identityId, identities[0]!.id]).execute();
    expect(success).toHaveLength(1);
    expect(success[0]!.target_id).toBe(identities[0]!.id);
    expect(JSON.parse(success[0]!.metadata as string)).toMatchObject({ outcome: 'linked' });
    // The session the unlink ended stays ended; only the new login's session is live.
    expect((await liveSsoSessions(me.userId, me.connection.id)).map((s) => s.id)).toEqual([result.session.id]);
  });

  it.runIf(ENGINE === 'postgres')('an unlink that comes after the login recorded itself waits for the login to commit, then ends its session too', async () => {
    const admin = await adminClient();
    try {
      const me = await signedInOnce('later.test');
      let unlink: Promise<TestResponse> | undefined;
      const afterUpdate: KyselyPlugin = {
        transformQuery: (args) => args.node,
        async transformResult(args) {
          if (!unlink && args.result.numAffectedRows !== undefined) {
            unlink = t.request('DELETE', `/api/user/organizations/${world.orgId}/sso/identities/${me.identityId}`, { as: world.owner });
            // The unlink's DELETE waits on the row this login just updated.
            await until(async () => (await waitingBackends(admin, t.schema!)) >= 1, 'the unlink to wait on the identity row');
          }
          return args.result;
        },
      };
      const completion = createSsoCompletion({ db: t.deps.db.withPlugin(afterUpdate), provisioning: t.services.provisioning, sessions: t.services.sessions, audit: t.services.audit, rateLimits: t.deps.rateLimits, idpTokens: t.services.idpTokens });
      const result = await completion.signIn(meta, { connection: me.connection, org: me.org, profile: me.profile, returnTo: '/' });
      expect(unlink, 'the unlink started inside the login').toBeDefined();
      const res = await unlink!;
      expect(res.status, res.text).toBe(200);
      expect(res.body.message).toContain('2 session(s) it created ended'); // the first one and this login's
      expect(await identitiesOf(me.profile.subject)).toEqual([]);
      expect(await liveSsoSessions(me.userId, me.connection.id)).toEqual([]);
      expect((await t.request('GET', '/api/auth/session', { cookies: { gatehouse_session: result.token } })).status).toBe(401);
    } finally {
      await admin.end();
    }
  });
});

describe.runIf(postgresAvailable('the two-instance provisioning race'))('two instances on one PostgreSQL schema: the same new person signs in on both at once', () => {
  let a: TestGatehouse;
  let b: TestGatehouse;
  let idp: RealIdp;
  let world: World;
  const schema = `race_${fresh()}`;
  beforeAll(async () => {
    idp = await startRealIdp({ redirectUris: [CALLBACK] });
    const env = { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true', GATEHOUSE_SECRET_KEYS: testKeySpec() };
    a = await createTestGatehouse({ databaseUrl: TEST_DATABASE_URL!, env, schema });
    b = await createTestGatehouse({ databaseUrl: TEST_DATABASE_URL!, env, schema });
    world = await buildWorld(a, idp, 'multi');
  });
  afterAll(async () => {
    await a.destroy();
    await b.destroy();
    await idp.close();
    await dropSchema(schema);
  });

  it('OIDC: one callback on each instance, both sign in as one user with one identity and one membership', async () => {
    for (let round = 0; round < 3; round++) {
      const sub = `multi-${fresh()}`;
      const email = `${sub}@newcomer.test`;
      idp.users.set(sub, { sub, email, email_verified: true });
      const onA = await oidcUpToCallback(a, idp, 'race-multi', sub);
      const onB = await oidcUpToCallback(b, idp, 'race-multi', sub);
      const answers = await Promise.all([a.request('GET', onA.path, { cookies: onA.cookies }), b.request('GET', onB.path, { cookies: onB.cookies })]);
      const [x, y] = await signedInUsers(a, answers);
      expect(x).toBe(y);
      await expectOnePerson(a, email, sub, world.orgId);
    }
  });

  it('SAML: one assertion posted to each instance, both sign in as one user with one identity and one membership', async () => {
    for (let round = 0; round < 3; round++) {
      const nameId = `multi-${fresh()}@newcomer.test`;
      const forA = await samlResponseFor(a, 'race-saml-multi', nameId);
      const forB = await samlResponseFor(b, 'race-saml-multi', nameId);
      const answers = await Promise.all([postAcs(a, 'race-saml-multi', forA), postAcs(b, 'race-saml-multi', forB)]);
      const [x, y] = await signedInUsers(a, answers);
      expect(x).toBe(y);
      await expectOnePerson(a, nameId, nameId, world.samlOrgId);
    }
  });
});
