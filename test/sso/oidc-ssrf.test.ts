import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createOutboundFetch, type LookupFn } from '../../src/sso/outbound.js';
import { SsoLoginError } from '../../src/sso/errors.js';
import { pushAuthorizationRequest } from '../../src/sso/oidc/par.js';
import { createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { installTripwire, offLoopbackAttempts, uninstallTripwire } from '../helpers/tripwire.js';

/**
 * SSRF through a customer-supplied issuer URL, refused by Gatehouse itself (not just the client
 * unit): the tripwire fails the file if anything is ever dialled off loopback.
 */
const fakeDns: Record<string, Array<{ address: string; family: 4 | 6 }>> = {
  'internal.attacker.test': [{ address: '10.0.0.5', family: 4 }],
  'metadata.attacker.test': [{ address: '169.254.169.254', family: 4 }],
  'mixed.attacker.test': [{ address: '93.184.216.34', family: 4 }, { address: '192.168.1.10', family: 4 }],
};
const lookup: LookupFn = async (host) => {
  const answer = fakeDns[host];
  if (!answer) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return answer;
};

let t: TestGatehouse;
let owner: TestUser;
let orgId: string;
beforeAll(async () => {
  installTripwire();
  t = await createTestGatehouse({ outbound: createOutboundFetch({ allowLoopback: false, lookup }) });
  owner = await t.signUp('owner@ssrf.test');
  orgId = await createOrg(t, owner, 'SSRF', 'ssrf');
});
afterEach(() => {
  expect(offLoopbackAttempts.splice(0), 'connection attempts off loopback').toEqual([]);
});
afterAll(async () => {
  await t.destroy();
  uninstallTripwire();
});

const put = (issuerUrl: string) =>
  t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, { as: owner, body: { provider: 'oidc', issuerUrl, clientId: 'c', clientSecret: 's' } });

describe('SSRF guard on IdP URLs', () => {
  it('refuses the cloud metadata address 169.254.169.254', async () => {
    const res = await put('https://169.254.169.254/latest');
    expect(res.status).toBe(422);
    expect(res.body.details.checks[0]).toMatchObject({ name: 'discovery', ok: false });
    expect(res.body.details.checks[0].message).toMatch(/169\.254\.169\.254 is a private or reserved address/);
    expect(res.text).not.toMatch(/metadata address|link-local/);
  });

  it('refuses a loopback issuer (127.0.0.1) when loopback IdPs are not allowed', async () => {
    const res = await put('https://127.0.0.1:8443');
    expect(res.status).toBe(422);
    expect(res.body.details.checks[0].message).toMatch(/private or reserved address/);
    expect(res.text).not.toMatch(/loopback/);
  });

  it('refuses a name that resolves to a private 10.x address, after DNS resolution, without naming the address (no internal DNS oracle)', async () => {
    const res = await put('https://internal.attacker.test');
    expect(res.status).toBe(422);
    expect(res.body.details.checks[0].message).toMatch(/internal\.attacker\.test resolves to a private or reserved address/);
    expect(res.text).not.toContain('10.0.0.5');
    expect(res.text).not.toMatch(/a private address|loopback|metadata address/);
  });

  it('refuses a name whose answers mix a public and a private address', async () => {
    const res = await put('https://mixed.attacker.test');
    expect(res.status).toBe(422);
    expect(res.body.details.checks[0].message).toMatch(/resolves to a private or reserved address/);
    expect(res.text).not.toMatch(/192\.168\.1\.10|93\.184\.216\.34/);
  });

  it('refuses plain http issuers', async () => {
    const res = await put('http://idp.example.com');
    expect(res.status).toBe(400);
    expect(res.body.details.issues[0].path).toBe('issuerUrl');
  });

  it('refuses a SAML idpMetadataUrl at the metadata address, a private name and loopback, before any connection', async () => {
    const putSaml = (idpMetadataUrl: string) =>
      t.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, { as: owner, body: { provider: 'saml', idpMetadataUrl } });
    for (const [url, why] of [
      ['https://169.254.169.254/metadata', /private or reserved address/],
      ['https://internal.attacker.test/saml/metadata', /internal\.attacker\.test resolves to a private or reserved address/],
      ['https://127.0.0.1:8443/metadata', /private or reserved address/],
    ] as const) {
      const res = await putSaml(url);
      expect(res.status, `${url}: ${res.text}`).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.text, url).toMatch(why);
      expect(res.text, url).not.toMatch(/10\.0\.0\.5|loopback address|metadata address/);
    }
    const http = await putSaml('http://idp.example.com/metadata');
    expect(http.status).toBe(400);
  });

  it('pushes an authorization request (PAR) only through the guarded client: a PAR endpoint on a private or metadata address is refused (par_failed)', async () => {
    const outbound = createOutboundFetch({ allowLoopback: false, lookup });
    for (const [par, why] of [['https://internal.attacker.test/par', /a private or reserved address/], ['https://169.254.169.254/par', /a private or reserved address/], ['http://idp.example.com/par', /https/]] as const) {
      const discovery = { issuer: 'https://idp.example.com', authorization_endpoint: 'https://idp.example.com/authorize', token_endpoint: 'https://idp.example.com/token', jwks_uri: 'https://idp.example.com/jwks', pushed_authorization_request_endpoint: par };
      const err = await pushAuthorizationRequest(outbound, discovery, { clientId: 'c', clientSecret: 's' }, { response_type: 'code' }).catch((e: unknown) => e);
      expect(err, par).toBeInstanceOf(SsoLoginError);
      expect((err as SsoLoginError).reason).toBe('par_failed');
      expect((err as SsoLoginError).message, par).toMatch(why);
      expect((err as SsoLoginError).message, par).not.toMatch(/10\.0\.0\.5|192\.168\.1\.10|metadata/);
    }
  });

  it('saves nothing after a refusal, and no audit entry names a resolved address', async () => {
    expect(await t.deps.db.selectFrom('sso_connections').select('id').execute()).toHaveLength(0);
    const audit = JSON.stringify(await t.deps.db.selectFrom('audit_events').selectAll().execute());
    expect(audit).not.toMatch(/10\.0\.0\.5|192\.168\.1\.10|169\.254\.169\.254/);
  });
});
