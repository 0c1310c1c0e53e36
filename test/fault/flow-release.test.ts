import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutboundFetch } from '../../src/sso/outbound.js';
import { createOrg, createTestGatehouse, type TestGatehouse } from '../helpers/app.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { postgresAvailable, startDatabaseProxy, until, type DatabaseProxy } from '../helpers/postgres.js';
import { configureOidc } from '../helpers/sso.js';

/**
 * SPEC §12: "A login that fails on Gatehouse's side (5xx) does not spend its flow." Found by the
 * two-instance fault test: when the database goes away between the callback's consume of its flow
 * and the end of the login, the give-back fails too (the database is still away) and the flow
 * stayed spent, so the reload after the outage was refused as `replayed`. The give-back is now
 * retried until the database is back. Driven deterministically here: the database goes away (a
 * proxy in front of PostgreSQL drops every connection) exactly when the code exchange starts.
 */
describe.runIf(postgresAvailable('the flow give-back fault test'))('an OIDC flow consumed just before the database went away is given back once it returns', () => {
  let proxy: DatabaseProxy;
  let t: TestGatehouse;
  let idp: RealIdp;
  let armed = false;

  beforeAll(async () => {
    idp = await startRealIdp({ redirectUris: [], users: [{ sub: 'away-sub', email: 'away@flow-release.test', email_verified: true }] });
    proxy = await startDatabaseProxy();
    const real = createOutboundFetch({ allowLoopback: true });
    t = await createTestGatehouse({
      databaseUrl: proxy.url,
      env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true', GATEHOUSE_DB_CONNECT_TIMEOUT_MS: '1000' },
      // The IdP stays reachable; the database goes away as the code exchange leaves.
      outbound: async (url, request) => {
        if (armed && url === `${idp.issuer}/token`) {
          armed = false;
          proxy.down();
        }
        return real(url, request);
      },
    });
  });
  afterAll(async () => {
    proxy.up();
    await t.destroy();
    await proxy.close();
    await idp.close();
  });

  it('the callback answers 503, and the flow is unconsumed again after the outage (the reload is not refused as replayed)', async () => {
    const owner = await t.signUp('owner@flow-release.test');
    const orgId = await createOrg(t, owner, 'Flow release', 'flow-release');
    await configureOidc(t, owner, orgId, idp);
    const start = await t.request('GET', '/api/auth/sso/flow-release/login');
    expect(start.status, start.text).toBe(302);
    const back = await idp.login(start.headers.get('location')!, 'away-sub');

    armed = true;
    const callback = await t.request('GET', back.pathname + back.search, { cookies: start.cookies, headers: { accept: 'application/json' } });
    expect(callback.status, callback.text).toBe(503);
    expect(Number(callback.headers.get('retry-after'))).toBeGreaterThan(0);

    proxy.up();
    const flow = () => t.deps.db.selectFrom('sso_flows').select('consumed_at').where('organization_id', '=', orgId).executeTakeFirstOrThrow();
    await until(async () => (await flow()).consumed_at === null, 'the flow to be given back after the outage', 400);

    // The code was spent at the IdP (the failure came after the exchange): the reload meets the
    // IdP's refusal, which says so — never "already used" about a login that failed on our side.
    const reload = await t.request('GET', back.pathname + back.search, { cookies: start.cookies, headers: { accept: 'application/json' } });
    expect(reload.status, reload.text).toBe(400);
    expect(reload.body.details.reason).not.toBe('replayed');
    // A fresh start then signs in.
    const again = await t.request('GET', '/api/auth/sso/flow-release/login');
    const back2 = await idp.login(again.headers.get('location')!, 'away-sub');
    const ok = await t.request('GET', back2.pathname + back2.search, { cookies: again.cookies });
    expect(ok.status, ok.text).toBe(302);
    expect(ok.cookie).toBeTruthy();
  });
});
