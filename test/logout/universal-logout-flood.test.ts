import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestGatehouse, ENGINE, type TestGatehouse } from '../helpers/app.js';
import { startMockOkta, type MockOkta } from '../helpers/okta.js';
import { byEmail, isAlive, oktaOrg, oktaSignIn, UL_URL, universalLogout } from '../helpers/universal-logout.js';
import { newId } from '../../src/ids.js';

/**
 * The owner of Evil cannot silence Corp's Universal Logout by flooding: he configures, before Corp
 * does, hundreds of organizations whose connections expect Corp's Okta issuer and Corp's app's
 * client id (both visible to anyone who watches a login). Corp's connection is the newest of them;
 * Corp's genuine request still reaches it and ends the victim's session, and none of the copies
 * acts on anything (the victim has no tie to their organizations).
 */
let t: TestGatehouse;
let corpOkta: MockOkta;
let evilOkta: MockOkta;

beforeAll(async () => {
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  corpOkta = await startMockOkta({ now: () => t.clock.now() });
  evilOkta = await startMockOkta({ now: () => t.clock.now() });
});
afterAll(async () => {
  await t.destroy();
  await corpOkta.close();
  await evilOkta.close();
});

describe(`Universal Logout candidate flood on ${ENGINE}`, () => {
  it("300 older copies of Corp's issuer and subject in Evil's organizations do not keep Corp's genuine logout from ending the victim's session", async () => {
    const evil = await t.signUp('owner@evil-admin.test');
    const first = await oktaOrg(t, evil, evilOkta, 'evil', { universalLogout: { issuer: corpOkta.orgUrl, subject: corpOkta.clientId } });
    const row = await t.deps.db.selectFrom('sso_connections').selectAll().where('id', '=', first.settings.id).executeTakeFirstOrThrow();
    const org = await t.deps.db.selectFrom('organizations').selectAll().where('id', '=', first.orgId).executeTakeFirstOrThrow();
    for (let i = 0; i < 300; i++) {
      const orgId = newId();
      await t.deps.db.insertInto('organizations').values({ ...org, id: orgId, slug: `evil-copy-${i}`, name: `Evil copy ${i}` }).execute();
      await t.deps.db.insertInto('sso_connections').values({ ...row, id: newId(), organization_id: orgId }).execute();
    }

    const corpOwner = await t.signUp('owner@corp-admin.test');
    const corp = await oktaOrg(t, corpOwner, corpOkta, 'corp');
    corpOkta.users.set('00uvictim', { id: '00uvictim', email: 'victim@victim-home.test' });
    const victim = await oktaSignIn(t, corpOkta, corp.slug, '00uvictim');

    const res = await universalLogout(t, await corpOkta.universalLogoutToken(UL_URL), byEmail('victim@victim-home.test'));
    expect(res.status, res.text).toBe(204);
    expect(await isAlive(t, victim)).toBe(false);
    const events = await t.deps.db.selectFrom('audit_events').select(['organization_id']).where('action', '=', 'sso.universal_logout').execute();
    expect(events.map((e) => e.organization_id)).toEqual([corp.orgId]);
  }, 60_000);
});
