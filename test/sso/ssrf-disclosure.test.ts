import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOutboundFetch, type LookupFn } from '../../src/sso/outbound.js';
import { startAdversarialIdp, type AdversarialIdp } from '../helpers/adversarial-idp.js';
import { createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { configureOidc, ssoLogin } from '../helpers/sso.js';
import { installTripwire, offLoopbackAttempts, uninstallTripwire } from '../helpers/tripwire.js';

/*
 * SPEC §12: errors never reveal internal addresses. An organization owner who can make Gatehouse
 * fetch a URL of their choice must not learn what an internal name resolves to — not from the
 * settings answer, the test endpoint's checks, the login failure, nor the audit log. The IdP is
 * on loopback (GATEHOUSE_ALLOW_LOOPBACK_IDPS); the endpoints it advertises point at a name a fake
 * resolver maps to the cloud metadata address, which stays refused even so. The tripwire fails
 * the file if anything is ever dialled off loopback.
 */
const INTERNAL = '169.254.169.254';
const lookup: LookupFn = async (host) => {
  if (host === 'metadata.attacker.test') return [{ address: INTERNAL, family: 4 }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
};

let idp: AdversarialIdp;
let t: TestGatehouse;
let owner: TestUser;
let orgId: string;
let discovery: Record<string, unknown>;
beforeAll(async () => {
  installTripwire();
  idp = await startAdversarialIdp();
  discovery = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
  t = await createTestGatehouse({
    env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' },
    outbound: createOutboundFetch({ allowLoopback: true, lookup }),
  });
  owner = await t.signUp('owner@oracle.test');
  orgId = await createOrg(t, owner, 'Oracle', 'oracle');
});
afterEach(() => {
  expect(offLoopbackAttempts.splice(0), 'connection attempts off loopback').toEqual([]);
});
afterAll(async () => {
  await t.destroy();
  await idp.close();
  uninstallTripwire();
});

const auditText = async () => JSON.stringify(await t.deps.db.selectFrom('audit_events').selectAll().execute());

describe('SSRF refusals do not name the resolved internal address', () => {
  it('a login whose token endpoint resolves to an internal address fails without naming it, in the answer and in the audit entry', async () => {
    idp.reset();
    idp.misbehave({ discoveryBody: JSON.stringify({ ...discovery, token_endpoint: 'http://metadata.attacker.test/latest/meta-data' }) });
    await configureOidc(t, owner, orgId, idp);
    const run = await ssoLogin(t, '/api/auth/sso/oracle/login', (u) => idp.authorize(u), { accept: 'application/json' });
    expect(run.callback!.body).toMatchObject({ success: false, code: 'SSO_LOGIN_FAILED', details: { reason: 'token_exchange_failed' } });
    expect(run.callback!.text).toMatch(/metadata\.attacker\.test resolves to a private or reserved address/);
    expect(run.callback!.text).not.toContain(INTERNAL);
    expect(run.callback!.text).not.toMatch(/cloud metadata|link-local/);
    const audit = await auditText();
    expect(audit).toContain('token_exchange_failed');
    expect(audit).toContain('private or reserved address');
    expect(audit).not.toContain(INTERNAL);
    expect(audit).not.toMatch(/cloud metadata/);
  });

  it("the settings test endpoint's JWKS check does not name the address a JWKS host resolves to", async () => {
    idp.reset();
    await configureOidc(t, owner, orgId, idp);
    idp.misbehave({ discoveryBody: JSON.stringify({ ...discovery, jwks_uri: 'http://metadata.attacker.test/jwks' }) });
    const res = await t.request('POST', `/api/user/organizations/${orgId}/settings/sso/test`, { as: owner });
    expect(res.status).toBe(422);
    const jwks = res.body.details.checks.find((c: { name: string }) => c.name === 'jwks');
    expect(jwks).toMatchObject({ ok: false });
    expect(jwks.message).toMatch(/metadata\.attacker\.test resolves to a private or reserved address/);
    expect(res.text).not.toContain(INTERNAL);
    expect(await auditText()).not.toContain(INTERNAL);
  });
});
