import { mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_URL, ENGINE, createOrg, createTestGatehouse, dropSchema, TEST_DATABASE_URL, testKeySpec, type TestGatehouse, type TestResponse, type TestUser } from '../helpers/app.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { lockTables, postgresAvailable } from '../helpers/postgres.js';
import { IDP_KEYS, decodeRedirect, forgeResponse, postForm, responseFields } from '../helpers/saml-forge.js';
import { CALLBACK, configureOidc } from '../helpers/sso.js';

/**
 * SPEC §12: a login that fails on Gatehouse's side (5xx) does not spend its flow — the user's
 * reload tries again — while a protocol refusal or a success does, and two callbacks carrying one
 * state (or one SAML response) never both succeed. The server-side failures are real: an instance
 * whose key ring lacks the key that sealed the client secret (a botched key rotation), the
 * database refusing the session write (a trigger), a statement outlasting the timeout under a lock.
 */
const IDP_ENTITY_ID = 'https://idp.retry.example/saml/metadata';
const IDP_ORIGIN = 'https://idp.retry.example';
const JSON_ACCEPT = { accept: 'application/json' };

let a: TestGatehouse;
/** Another instance on the same database whose key ring lacks a's key. */
let broken: TestGatehouse;
let idp: RealIdp;
let owner: TestUser;
const schema = TEST_DATABASE_URL ? `retry_${randomBytes(4).toString('hex')}` : undefined;

beforeAll(async () => {
  idp = await startRealIdp({ redirectUris: [CALLBACK] });
  const databaseUrl = TEST_DATABASE_URL ?? `sqlite:${mkdtempSync(join(tmpdir(), 'gh-retry-'))}/shared.db`;
  const loopback = { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' };
  a = await createTestGatehouse({ databaseUrl, env: { ...loopback, GATEHOUSE_SECRET_KEYS: testKeySpec('good'), GATEHOUSE_DB_STATEMENT_TIMEOUT_MS: '300' }, ...(schema ? { schema } : {}) });
  broken = await createTestGatehouse({ databaseUrl, env: { ...loopback, GATEHOUSE_SECRET_KEYS: testKeySpec('other') }, ...(schema ? { schema } : {}) });
  owner = await a.signUp('owner@retry.test');
  const oidcOrg = await createOrg(a, owner, 'Retry', 'retry');
  await configureOidc(a, owner, oidcOrg, idp);
  const noJit = await createOrg(a, owner, 'Retry closed', 'retry-closed');
  await configureOidc(a, owner, noJit, idp, { allowJitProvisioning: false });
  for (const [name, slug, extra] of [['Retry SAML', 'retry-saml', {}], ['Retry SAML closed', 'retry-saml-closed', { allowJitProvisioning: false }]] as const) {
    const orgId = await createOrg(a, owner, name, slug);
    const put = await a.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, {
      as: owner,
      body: { provider: 'saml', idpEntityId: IDP_ENTITY_ID, idpSsoUrl: 'http://127.0.0.1:9/saml/sso', idpCertificate: IDP_KEYS.cert, ...extra },
    });
    if (put.status !== 200) throw new Error(`PUT settings/sso (SAML) failed: ${put.status} ${put.text}`);
  }
});
afterAll(async () => {
  await a.destroy();
  await broken.destroy();
  await idp.close();
  if (schema) await dropSchema(schema);
});

const fresh = () => randomBytes(4).toString('hex');

/** A new person at the IdP, and a browser's OIDC login up to the IdP's redirect back. */
async function oidcBack(slug: string, opts: { deny?: boolean } = {}) {
  const sub = `retry-${fresh()}`;
  idp.users.set(sub, { sub, email: `${sub}@newcomer.test`, email_verified: true });
  const start = await a.request('GET', `/api/auth/sso/${slug}/login`);
  expect(start.status, start.text).toBe(302);
  const back = await idp.login(start.headers.get('location')!, sub, opts);
  return { path: back.pathname + back.search, cookies: start.cookies, email: `${sub}@newcomer.test` };
}

/** A browser's SAML login: the IdP's signed answer to Gatehouse's AuthnRequest, as the form body. */
async function samlBody(slug: string) {
  const start = await a.request('GET', `/api/auth/sso/${slug}/login`);
  expect(start.status, start.text).toBe(302);
  const req = decodeRedirect(start.headers.get('location')!);
  const email = `saml-${fresh()}@newcomer.test`;
  const xml = forgeResponse(responseFields({ acsUrl: `${BASE_URL}/api/auth/sso/${slug}/saml/acs`, spEntityId: `${BASE_URL}/api/auth/sso/${slug}/saml/metadata`, idpEntityId: IDP_ENTITY_ID, inResponseTo: req.id, now: a.clock.now(), email }));
  return { body: postForm(xml, req.relayState), email };
}

function postAcs(t: TestGatehouse, slug: string, body: string): Promise<TestResponse> {
  return t.request('POST', `/api/auth/sso/${slug}/saml/acs`, { rawBody: body, origin: IDP_ORIGIN, headers: { 'content-type': 'application/x-www-form-urlencoded', ...JSON_ACCEPT } });
}

async function expectSignedIn(res: TestResponse, email: string) {
  expect(res.status, res.text).toBe(302);
  const session = await a.request('GET', '/api/auth/session', { as: { cookie: res.cookie! } });
  expect(session.status, session.text).toBe(200);
  expect(session.body.data.user.email).toBe(email);
}

function expectRefused(res: TestResponse, status: number, reason: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.body.details?.reason, res.text).toBe(reason);
  expect(res.cookie).toBeNull();
}

const failuresAudited = async () => (await a.deps.db.selectFrom('audit_events').select('id').where('action', '=', 'sso.login_failed').execute()).length;

/** Make the database refuse every new session row until `remove()` (a fault inside the login's transaction). */
async function refuseSessionWrites(t: TestGatehouse): Promise<{ remove(): Promise<void> }> {
  if (t.deps.database.engine === 'sqlite') {
    await sql`create temp trigger refuse_sessions before insert on sessions begin select raise(abort, 'injected fault: session writes refused'); end`.execute(t.deps.db);
    return { remove: async () => void (await sql`drop trigger temp.refuse_sessions`.execute(t.deps.db)) };
  }
  await sql`create function refuse_sessions() returns trigger language plpgsql as $$ begin raise exception 'injected fault: session writes refused'; end $$`.execute(t.deps.db);
  await sql`create trigger refuse_sessions before insert on sessions for each row execute function refuse_sessions()`.execute(t.deps.db);
  return {
    remove: async () => {
      await sql`drop trigger refuse_sessions on sessions`.execute(t.deps.db);
      await sql`drop function refuse_sessions()`.execute(t.deps.db);
    },
  };
}

describe(`OIDC callback on ${ENGINE}: only a refusal or a success spends the flow`, () => {
  it('a reload after a server error retries the same flow instead of answering replayed', async () => {
    const back = await oidcBack('retry');
    const before = await failuresAudited();
    // The callback lands on the instance with the wrong key ring: a 500, before the code is exchanged.
    const failed = await broken.request('GET', back.path, { cookies: back.cookies, headers: JSON_ACCEPT });
    expect(failed.status, failed.text).toBe(500);
    expect(failed.body).toEqual({ success: false, status: 500, code: 'INTERNAL', message: expect.any(String) });
    expect(await failuresAudited(), 'a server error is not audited as an SSO protocol failure').toBe(before);
    // The reload reaches a healthy instance and completes the same flow.
    await expectSignedIn(await a.request('GET', back.path, { cookies: back.cookies }), back.email);
  });

  it('a protocol refusal still spends the flow: the reload is refused as replayed', async () => {
    const back = await oidcBack('retry', { deny: true });
    expectRefused(await a.request('GET', back.path, { cookies: back.cookies, headers: JSON_ACCEPT }), 400, 'idp_error');
    expectRefused(await a.request('GET', back.path, { cookies: back.cookies, headers: JSON_ACCEPT }), 400, 'replayed');
  });

  it('a provisioning refusal (403) spends the flow too', async () => {
    const back = await oidcBack('retry-closed');
    const refused = await a.request('GET', back.path, { cookies: back.cookies, headers: JSON_ACCEPT });
    expect(refused.status, refused.text).toBe(403);
    expect(refused.body.code).toBe('SSO_USER_NOT_PROVISIONED');
    expectRefused(await a.request('GET', back.path, { cookies: back.cookies, headers: JSON_ACCEPT }), 400, 'replayed');
  });

  it('two concurrent callbacks with one state: one wins, the other is refused as replayed', async () => {
    const back = await oidcBack('retry');
    const answers = await Promise.all([1, 2].map(() => a.request('GET', back.path, { cookies: back.cookies, headers: JSON_ACCEPT })));
    const won = answers.filter((r) => r.status === 302);
    expect(won, answers.map((r) => r.text).join('\n')).toHaveLength(1);
    await expectSignedIn(won[0]!, back.email);
    expectRefused(answers.find((r) => r.status !== 302)!, 400, 'replayed');
  });
});

describe(`SAML ACS on ${ENGINE}: only a refusal or a success spends the assertion and the request`, () => {
  it('a reload after a server error posts the same response again and signs in instead of answering replayed', async () => {
    const { body, email } = await samlBody('retry-saml');
    const before = await failuresAudited();
    const replayEntries = async () => (await a.deps.db.selectFrom('replay_cache').select('key').where('key', 'like', 'saml:%').execute()).length;
    const entriesBefore = await replayEntries();
    const fault = await refuseSessionWrites(a);
    let failed: TestResponse;
    try {
      failed = await postAcs(a, 'retry-saml', body);
    } finally {
      await fault.remove();
    }
    expect(failed.status, failed.text).toBe(500);
    expect(failed.body).toEqual({ success: false, status: 500, code: 'INTERNAL', message: expect.any(String) });
    expect(await failuresAudited()).toBe(before);
    // Nothing of the failed attempt was kept: no user, no replay-cache entry.
    expect(await a.deps.db.selectFrom('users').select('id').where('email', '=', email).execute()).toHaveLength(0);
    expect(await replayEntries()).toBe(entriesBefore);
    await expectSignedIn(await postAcs(a, 'retry-saml', body), email);
  });

  it('a provisioning refusal (403) still spends the response: posting it again is refused as replayed', async () => {
    const { body } = await samlBody('retry-saml-closed');
    const refused = await postAcs(a, 'retry-saml-closed', body);
    expect(refused.status, refused.text).toBe(403);
    expect(refused.body.code).toBe('SSO_USER_NOT_PROVISIONED');
    expectRefused(await postAcs(a, 'retry-saml-closed', body), 400, 'replayed');
  });

  it('one response posted twice at once: one wins, the other is refused as replayed', async () => {
    const { body, email } = await samlBody('retry-saml');
    const answers = await Promise.all([1, 2].map(() => postAcs(a, 'retry-saml', body)));
    const won = answers.filter((r) => r.status === 302);
    expect(won, answers.map((r) => r.text).join('\n')).toHaveLength(1);
    await expectSignedIn(won[0]!, email);
    expectRefused(answers.find((r) => r.status !== 302)!, 400, 'replayed');
  });
});

describe.runIf(postgresAvailable('the statement-timeout retry tests'))('PostgreSQL: a callback whose statement times out answers 503, and the reload completes', () => {
  it('OIDC: the connection lookup waits on a lock past the statement timeout; the reload after the lock signs in', async () => {
    const back = await oidcBack('retry');
    const lock = await lockTables(schema!, ['sso_connections']);
    let failed: TestResponse;
    try {
      failed = await a.request('GET', back.path, { cookies: back.cookies, headers: JSON_ACCEPT });
    } finally {
      await lock.release();
    }
    expect(failed.status, failed.text).toBe(503);
    expect(failed.body.code).toBe('SERVICE_UNAVAILABLE');
    expect(Number(failed.headers.get('retry-after'))).toBeGreaterThan(0);
    await expectSignedIn(await a.request('GET', back.path, { cookies: back.cookies }), back.email);
  });

  it('SAML: provisioning waits on a lock past the statement timeout; posting the same response again signs in', async () => {
    const { body, email } = await samlBody('retry-saml');
    const lock = await lockTables(schema!, ['users']);
    let failed: TestResponse;
    try {
      failed = await postAcs(a, 'retry-saml', body);
    } finally {
      await lock.release();
    }
    expect(failed.status, failed.text).toBe(503);
    expect(failed.body.code).toBe('SERVICE_UNAVAILABLE');
    await expectSignedIn(await postAcs(a, 'retry-saml', body), email);
  });
});
