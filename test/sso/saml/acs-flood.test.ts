import { afterAll, beforeAll, expect, it } from 'vitest';
import { createOrg, createTestGatehouse, type TestGatehouse } from '../../helpers/app.js';
import { IDP_KEYS, postForm } from '../../helpers/saml-forge.js';

/**
 * The ACS takes anonymous cross-site posts, and every refusal is audit-logged in the target
 * organization: failures are counted per IP, and past the limit the answer is 429 with nothing
 * written, so forged posts cannot fill an organization's audit log.
 */
let t: TestGatehouse;

beforeAll(async () => {
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' }, rateLimits: { 'sso-failure:ip': { points: 3, duration: 600 } } });
  const owner = await t.signUp('owner@flood.example');
  const orgId = await createOrg(t, owner, 'Flood', 'flood');
  const put = await t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, {
    as: owner,
    body: { provider: 'saml', idpEntityId: 'https://idp.flood.example/metadata', idpSsoUrl: 'http://127.0.0.1:9/sso', idpCertificate: IDP_KEYS.cert },
  });
  expect(put.status).toBe(200);
});
afterAll(async () => {
  await t.destroy();
});

const forged = (ip: string) =>
  t.request('POST', '/api/auth/sso/flood/saml/acs', {
    rawBody: postForm('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">junk</samlp:Response>'),
    origin: 'https://attacker.example',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    ip,
  });

it('rate-limits failed ACS posts per IP and stops writing them to the audit log (audit-log flooding)', async () => {
  const failures = () => t.deps.db.selectFrom('audit_events').select('id').where('action', '=', 'sso.login_failed').execute();
  for (let i = 0; i < 3; i++) {
    const res = await forged('192.0.2.10'); // a documentation address: only a label for the limiter
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('SSO_LOGIN_FAILED');
  }
  const limited = await forged('192.0.2.10');
  expect(limited.status).toBe(429);
  expect(limited.body.code).toBe('RATE_LIMITED');
  expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(await failures()).toHaveLength(3);
  // Another address is unaffected.
  expect((await forged('192.0.2.11')).status).toBe(400);
  expect(await failures()).toHaveLength(4);
});
