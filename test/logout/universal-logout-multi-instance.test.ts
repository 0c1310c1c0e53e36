import { mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestGatehouse, dropSchema, ENGINE, TEST_DATABASE_URL, testKeySpec, type TestGatehouse } from '../helpers/app.js';
import { startMockOkta, type MockOkta } from '../helpers/okta.js';
import { until } from '../helpers/postgres.js';
import { byEmail, isAlive, oktaOrg, oktaSignIn, UL_URL, universalLogout } from '../helpers/universal-logout.js';

/**
 * Two Gatehouse instances on one database (PostgreSQL with TEST_DATABASE_URL, else one SQLite
 * file): Okta's request reaches instance A, the sessions are checked on B, and the same token
 * sent to B is a replay.
 */
let a: TestGatehouse;
let b: TestGatehouse;
let okta: MockOkta;
const schema = TEST_DATABASE_URL ? `ul_${randomBytes(4).toString('hex')}` : undefined;

beforeAll(async () => {
  const databaseUrl = TEST_DATABASE_URL ?? `sqlite:${mkdtempSync(join(tmpdir(), 'gh-ul-'))}/shared.db`;
  const env = { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true', GATEHOUSE_SECRET_KEYS: testKeySpec() };
  a = await createTestGatehouse({ databaseUrl, env, ...(schema ? { schema } : {}) });
  b = await createTestGatehouse({ databaseUrl, env, ...(schema ? { schema } : {}) });
  okta = await startMockOkta({ now: () => a.clock.now() });
});
afterAll(async () => {
  await a.destroy();
  await b.destroy();
  await okta.close();
  if (schema) await dropSchema(schema);
});

describe(`Universal Logout across instances on ${ENGINE}`, () => {
  it('a logout received by A ends the sessions on B, and the same token is refused by B as a replay', async () => {
    const owner = await a.signUp('owner@multi-ul.test');
    const corp = await oktaOrg(a, owner, okta, 'multi-ul');
    okta.users.set('00umulti', { id: '00umulti', email: 'multi@multi-home.test' });
    const s1 = await oktaSignIn(b, okta, corp.slug, '00umulti');
    const s2 = await oktaSignIn(a, okta, corp.slug, '00umulti');
    expect(await isAlive(b, s1)).toBe(true);

    const token = await okta.universalLogoutToken(UL_URL);
    expect((await universalLogout(a, token, byEmail('multi@multi-home.test'))).status).toBe(204);
    // B may hold s1 in its session cache: it must refuse it within a second (sessions/cache-sync.ts).
    await until(async () => !(await isAlive(b, s1)), 'B to refuse the first session', 40);
    expect(await isAlive(b, s2)).toBe(false);

    // A new session of the user, then the replay on the other instance: refused, the session lives.
    const s3 = await oktaSignIn(b, okta, corp.slug, '00umulti');
    const replay = await universalLogout(b, token, byEmail('multi@multi-home.test'));
    expect(replay.status).toBe(401);
    expect(replay.body.details.reason).toBe('replayed');
    expect(await isAlive(a, s3)).toBe(true);
  });

  it('one token sent to both instances at once is accepted exactly once', async () => {
    const owner = await a.signUp('owner@race-ul.test');
    const corp = await oktaOrg(a, owner, okta, 'race-ul');
    okta.users.set('00urace', { id: '00urace', email: 'race@race-home.test' });
    await oktaSignIn(a, okta, corp.slug, '00urace');
    const token = await okta.universalLogoutToken(UL_URL);
    const answers = await Promise.all([universalLogout(a, token, byEmail('race@race-home.test')), universalLogout(b, token, byEmail('race@race-home.test'))]);
    expect(answers.map((r) => r.status).sort()).toEqual([204, 401]);
    expect(answers.find((r) => r.status === 401)!.body.details.reason).toBe('replayed');
  });
});
