import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { freePort } from '../helpers/simplesamlphp.js';
import { generateSpKeyPair } from '../../src/sso/saml/certs.js';

/* SPEC §5 "Dashboard support in the API", the front door and the interactive API reference. */
let t: TestGatehouse;
let idp: RealIdp;
let owner: TestUser;
let orgId: string;
const ORG = () => `/api/user/organizations/${orgId}`;
const IDP_CERT = (await generateSpKeyPair('dashboard-api IdP', new Date())).certificatePem;

beforeAll(async () => {
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  idp = await startRealIdp({ redirectUris: [] });
  owner = await t.signUp('owner@dash-api.test');
  orgId = await createOrg(t, owner, 'Dash API', 'dash-api');
});
afterAll(async () => {
  await idp?.close();
  await t.destroy();
});

describe('settings/sso/service-provider', () => {
  it('answers every value to paste into an IdP before any connection exists', async () => {
    const res = await t.request('GET', `${ORG()}/settings/sso/service-provider`, { as: owner });
    expect(res.status, res.text).toBe(200);
    const base = 'http://localhost:3000';
    expect(res.body.data).toEqual({
      redirectUri: `${base}/api/auth/sso/callback/${orgId}`,
      redirectUriMode: 'dedicated',
      acsUrl: `${base}/api/auth/sso/dash-api/saml/acs`,
      spEntityId: `${base}/api/auth/sso/dash-api/saml/metadata`,
      spMetadataUrl: `${base}/api/auth/sso/dash-api/saml/metadata`,
      sloUrl: `${base}/api/auth/sso/dash-api/saml/slo`,
      loginUrl: `${base}/api/auth/sso/dash-api/login`,
      initiateLoginUri: `${base}/api/auth/sso/dash-api/initiate`,
      backchannelLogoutUri: `${base}/api/auth/sso/backchannel-logout`,
      universalLogoutUri: `${base}/api/auth/sso/universal-logout`,
      postLogoutRedirectUri: `${base}/signed-out`,
    });
  });
});

describe('settings/sso/test with a body (dry run)', () => {
  it('OIDC: the checks of unsaved settings against the real IdP, and nothing is saved', async () => {
    const res = await t.request('POST', `${ORG()}/settings/sso/test`, { as: owner, body: { provider: 'oidc', issuerUrl: idp.issuer, clientId: idp.clientId } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.checks.every((c: { ok: boolean }) => c.ok)).toBe(true);
    expect(res.body.data.mixUpProtection).toBe('dedicated');
    expect((await t.request('GET', `${ORG()}/settings/sso`, { as: owner })).status).toBe(404);
  });

  it('OIDC: an issuer where nothing answers fails with every check in details (422 SSO_TEST_FAILED)', async () => {
    const res = await t.request('POST', `${ORG()}/settings/sso/test`, { as: owner, body: { provider: 'okta', issuerUrl: `http://127.0.0.1:${await freePort()}`, clientId: 'x' } });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('SSO_TEST_FAILED');
    expect(res.body.details.checks[0]).toMatchObject({ name: 'discovery', ok: false });
  });

  it('an invalid body is refused field by field, as by the PUT', async () => {
    const res = await t.request('POST', `${ORG()}/settings/sso/test`, { as: owner, body: { provider: 'oidc', issuerUrl: 'not a url', clientId: '' } });
    expect(res.status).toBe(400);
    expect(res.body.details.issues.map((i: { path: string }) => i.path).sort()).toEqual(['clientId', 'issuerUrl']);
  });

  it('SAML: a good certificate passes; an expired one is refused next to its field, as by the PUT; no key pair is made, nothing saved', async () => {
    const good = await t.request('POST', `${ORG()}/settings/sso/test`, { as: owner, body: { provider: 'saml', idpEntityId: 'https://idp.dash.test', idpSsoUrl: 'https://idp.dash.test/sso', idpCertificate: IDP_CERT } });
    expect(good.status, good.text).toBe(200);
    expect(good.body.data.checks.find((c: { name: string }) => c.name === 'certificate').ok).toBe(true);
    const old = (await generateSpKeyPair('expired IdP', new Date('2000-01-01T00:00:00Z'))).certificatePem;
    const bad = await t.request('POST', `${ORG()}/settings/sso/test`, { as: owner, body: { provider: 'saml', idpEntityId: 'https://idp.dash.test', idpSsoUrl: 'https://idp.dash.test/sso', idpCertificate: old } });
    expect(bad.status, bad.text).toBe(400);
    expect(bad.body.details.issues[0]).toMatchObject({ path: 'idpCertificate', message: expect.stringContaining('expired') });
    const rows = await t.deps.db.selectFrom('sso_connections').select('id').where('organization_id', '=', orgId).execute();
    expect(rows).toEqual([]);
  });
});

describe('re-saving a SAML connection', () => {
  it('the same IdP without a certificate keeps the stored certificates (enabling needs no certificate again); a new IdP without one is refused next to the field', async () => {
    const o = await t.signUp('saml-resave@dash-api.test');
    const org = await createOrg(t, o, 'Resave');
    const first = await t.request('PUT', `/api/user/organizations/${org}/settings/sso`, { as: o, body: { provider: 'saml', idpEntityId: 'https://idp.resave.test', idpSsoUrl: 'https://idp.resave.test/sso', idpCertificate: IDP_CERT, enabled: false } });
    expect(first.status, first.text).toBe(200);
    const fingerprint = first.body.data.idpCertificates[0].fingerprintSha256;
    const toggled = await t.request('PUT', `/api/user/organizations/${org}/settings/sso`, { as: o, body: { provider: 'saml', idpEntityId: 'https://idp.resave.test', idpSsoUrl: 'https://idp.resave.test/sso', enabled: true } });
    expect(toggled.status, toggled.text).toBe(200);
    expect(toggled.body.data).toMatchObject({ enabled: true, id: first.body.data.id, idpCertificates: [{ fingerprintSha256: fingerprint }] });
    const other = await t.request('PUT', `/api/user/organizations/${org}/settings/sso`, { as: o, body: { provider: 'saml', idpEntityId: 'https://other.resave.test', idpSsoUrl: 'https://other.resave.test/sso' } });
    expect(other.status).toBe(400);
    expect(other.body.details.issues.map((i: { path: string }) => i.path)).toEqual(['idpCertificate']);
  });
});

describe('SSO test rate limit', () => {
  it('tests (saved or dry run) are counted per organization: past the limit, 429 with Retry-After, before any IdP request', async () => {
    const limited = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' }, rateLimits: { 'sso-test:organization': { points: 2, duration: 3600 } } });
    try {
      const o = await limited.signUp('owner@limited.test');
      const org = await createOrg(limited, o, 'Limited');
      const body = { provider: 'oidc', issuerUrl: idp.issuer, clientId: idp.clientId };
      for (let i = 0; i < 2; i++) expect((await limited.request('POST', `/api/user/organizations/${org}/settings/sso/test`, { as: o, body })).status).toBe(200);
      const third = await limited.request('POST', `/api/user/organizations/${org}/settings/sso/test`, { as: o, body });
      expect(third.status).toBe(429);
      expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
      // Another organization has its own budget.
      const other = await createOrg(limited, o, 'Other');
      expect((await limited.request('POST', `/api/user/organizations/${other}/settings/sso/test`, { as: o, body })).status).toBe(200);
    } finally {
      await limited.destroy();
    }
  });
});

describe('lastTest', () => {
  it('is null until the saved settings are tested, kept with the result, and null again after a save', async () => {
    const body = { provider: 'oidc', issuerUrl: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret };
    const saved = await t.request('PUT', `${ORG()}/settings/sso`, { as: owner, body });
    expect(saved.status, saved.text).toBe(200);
    expect(saved.body.data.lastTest).toBeNull();
    const test = await t.request('POST', `${ORG()}/settings/sso/test`, { as: owner });
    expect(test.status, test.text).toBe(200);
    const after = await t.request('GET', `${ORG()}/settings/sso`, { as: owner });
    expect(after.body.data.lastTest).toEqual({ ok: true, at: t.clock.now().toISOString() });
    // A dry run of other settings does not touch the saved connection's result.
    await t.request('POST', `${ORG()}/settings/sso/test`, { as: owner, body: { provider: 'okta', issuerUrl: `http://127.0.0.1:${await freePort()}`, clientId: 'x' } });
    expect((await t.request('GET', `${ORG()}/settings/sso`, { as: owner })).body.data.lastTest.ok).toBe(true);
    // A save makes it untested again.
    const resaved = await t.request('PUT', `${ORG()}/settings/sso`, { as: owner, body: { ...body, allowJitProvisioning: false } });
    expect(resaved.body.data.lastTest).toBeNull();
  });

  it('a failing test of the saved settings is kept as ok: false', async () => {
    const row = await t.deps.db.selectFrom('sso_connections').selectAll().where('organization_id', '=', orgId).where('status', '=', 'active').executeTakeFirstOrThrow();
    // The IdP moves away (the saved issuer stops answering).
    const config = JSON.parse(row.config) as { issuerUrl: string };
    await t.deps.db.updateTable('sso_connections').set({ config: JSON.stringify({ ...config, issuerUrl: `http://127.0.0.1:${await freePort()}` }) }).where('id', '=', row.id).execute();
    const test = await t.request('POST', `${ORG()}/settings/sso/test`, { as: owner });
    expect(test.status).toBe(422);
    expect((await t.request('GET', `${ORG()}/settings/sso`, { as: owner })).body.data.lastTest).toMatchObject({ ok: false });
    await t.deps.db.updateTable('sso_connections').set({ config: row.config }).where('id', '=', row.id).execute();
  });
});

describe('the front door and the API reference', () => {
  it('GET / sends a signed-out browser to sign-in (back to the dashboard), a signed-in one to the dashboard', async () => {
    const out = await t.request('GET', '/');
    expect(out.status).toBe(302);
    expect(out.headers.get('location')).toBe('/sign-in?returnTo=%2Fdashboard');
    const signedIn = await t.request('GET', '/', { as: owner });
    expect(signedIn.status).toBe(302);
    expect(signedIn.headers.get('location')).toBe('/dashboard');
  });

  it('/api/docs is Swagger UI served from this instance (no CDN), scripts only from self', async () => {
    const docs = await t.request('GET', '/api/docs');
    expect(docs.status).toBe(200);
    const csp = docs.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    const srcs = [...docs.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(srcs.every((s) => s.startsWith('/'))).toBe(true);
    for (const asset of ['/api/docs/assets/swagger-ui-bundle.js', '/api/docs/assets/swagger-ui.css', '/api/docs/assets/init.js']) {
      expect(srcs).toContain(asset);
      const res = await t.request('GET', asset);
      expect(res.status, asset).toBe(200);
    }
    expect((await t.request('GET', '/api/docs/assets/../../package.json')).status).toBe(404);
  });
});

describe('TOTP enrolment', () => {
  it('answers the otpauth URI as a QR code (SVG made on the server)', async () => {
    const res = await t.request('POST', '/api/auth/mfa/totp/enroll', { as: owner });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data.qrCodeSvg).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(res.body.data.qrCodeSvg).not.toMatch(/<script|on\w+=/i);
  });
});

describe('audit log filters', () => {
  it('narrows by action, action family, actor type, actor id and time, combined, paging within the filter', async () => {
    await t.request('POST', `${ORG()}/setup-links`, { as: owner, body: { scope: ['domains'] } });
    const all = (await t.request('GET', `${ORG()}/audit-log?limit=100`, { as: owner })).body.data.items as Array<{ id: string; action: string; actor: { type: string; userId: string | null }; createdAt: string }>;
    expect(all.length).toBeGreaterThanOrEqual(3);
    expect(all.filter((e) => e.action.startsWith("sso.")).length).toBeGreaterThanOrEqual(2);
    const q = async (query: string) => {
      const res = await t.request('GET', `${ORG()}/audit-log?${query}`, { as: owner });
      expect(res.status, `${query}: ${res.text}`).toBe(200);
      return res.body.data as { items: typeof all; nextCursor: string | null };
    };
    expect((await q('action=sso.connection_updated&limit=100')).items.map((e) => e.id)).toEqual(all.filter((e) => e.action === 'sso.connection_updated').map((e) => e.id));
    const family = (await q('action=sso.&limit=100')).items;
    expect(family.length).toBe(all.filter((e) => e.action.startsWith('sso.')).length);
    expect(family.every((e) => e.action.startsWith('sso.'))).toBe(true);
    expect((await q(`actorType=user&actorId=${owner.id}&limit=100`)).items.length).toBe(all.filter((e) => e.actor.userId === owner.id).length);
    expect((await q('actorType=setup_link')).items).toEqual([]);
    // A family whose name holds an underscore (compared as a prefix, not a LIKE pattern).
    const links = (await q('action=setup_link.')).items;
    expect(links.map((e) => e.action)).toEqual(['setup_link.created']);
    expect((await q('action=setup.')).items).toEqual([]);
    const future = new Date(t.clock.now().getTime() + 60_000).toISOString();
    expect((await q(`from=${encodeURIComponent(future)}`)).items).toEqual([]);
    expect((await q(`to=${encodeURIComponent(future)}&limit=100`)).items.length).toBe(all.length);
    // Pages stay within the filter.
    const first = await q('action=sso.&limit=1');
    expect(first.nextCursor).not.toBeNull();
    const second = await q(`action=sso.&limit=1&cursor=${first.nextCursor}`);
    expect(second.items[0]!.action.startsWith('sso.')).toBe(true);
    expect(second.items[0]!.id < first.items[0]!.id).toBe(true);
  });

  it('refuses a filter that is not one (a LIKE pattern, an unknown actor type, a bad time)', async () => {
    for (const query of ['action=%25', 'action=sso.%25', 'actorType=root', 'from=yesterday', 'actorId=1']) {
      const res = await t.request('GET', `${ORG()}/audit-log?${query}`, { as: owner });
      expect(res.status, query).toBe(400);
    }
  });
});
