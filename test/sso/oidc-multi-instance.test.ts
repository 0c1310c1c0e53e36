import { mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, createTestGatehouse, dropSchema, ENGINE, TEST_DATABASE_URL, testKeySpec, type TestGatehouse } from '../helpers/app.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { CALLBACK, configureOidc } from '../helpers/sso.js';

/**
 * Two Gatehouse instances on one database (PostgreSQL when TEST_DATABASE_URL is set, as in CI;
 * else one SQLite file): the login starts on A and the IdP sends the browser back to B.
 */
let a: TestGatehouse;
let b: TestGatehouse;
let idp: RealIdp;
const schema = TEST_DATABASE_URL ? `mi_${randomBytes(4).toString('hex')}` : undefined;

beforeAll(async () => {
  idp = await startRealIdp({ redirectUris: [CALLBACK], users: [{ sub: 'multi-sub', email: 'multi@instances.test', email_verified: true, name: 'Multi' }] });
  const databaseUrl = TEST_DATABASE_URL ?? `sqlite:${mkdtempSync(join(tmpdir(), 'gh-mi-'))}/shared.db`;
  // Instances share the key ring, as a deployment's instances do.
  const keys = testKeySpec();
  const env = { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true', GATEHOUSE_SECRET_KEYS: keys };
  a = await createTestGatehouse({ databaseUrl, env, ...(schema ? { schema } : {}) });
  b = await createTestGatehouse({ databaseUrl, env, ...(schema ? { schema } : {}) });
});
afterAll(async () => {
  await a.destroy();
  await b.destroy();
  await idp.close();
  if (schema) await dropSchema(schema);
});

describe(`multi-instance SSO on ${ENGINE}`, () => {
  it('a login started on instance A completes on instance B, exactly once', async () => {
    const owner = await a.signUp('owner@instances.test');
    const orgId = await createOrg(a, owner, 'Instances', 'instances');
    await configureOidc(a, owner, orgId, idp);

    const start = await a.request('GET', '/api/auth/sso/instances/login?returnTo=/after');
    expect(start.status).toBe(302);
    const back = await idp.login(start.headers.get('location')!, 'multi-sub');
    const callback = await b.request('GET', back.pathname + back.search, { cookies: start.cookies });
    expect(callback.status, callback.text).toBe(302);
    expect(callback.headers.get('location')).toBe('/after');

    // The session B created is valid on A too.
    const onA = await a.request('GET', '/api/auth/session', { as: { cookie: callback.cookie! } });
    expect(onA.body.data.session).toMatchObject({ authMethod: 'sso', organizationId: orgId });

    // Replaying the callback on A is refused: the flow was consumed on B.
    const replay = await a.request('GET', back.pathname + back.search, { cookies: start.cookies, headers: { accept: 'application/json' } });
    expect(replay.body.details.reason).toBe('replayed');
  });
});
