import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createApiKey, createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';
import { startRealIdp, type RealIdp } from '../helpers/oidc-idp.js';
import { generateSpKeyPair } from '../../src/sso/saml/certs.js';
import { setupLinkCookieName } from '../../src/setup-links/service.js';

/*
 * SPEC §5 setup links, through the API and the service the /setup page uses: an attacker holding a
 * link (or its URL, or another organization) tries to do more than set up SSO and domains for the
 * one organization it names, in the one browser it is bound to.
 */
let t: TestGatehouse;
let idp: RealIdp;
let owner: TestUser;
let admin: TestUser;
let ownerB: TestUser;
let orgA: string;
let orgB: string;
const IDP_CERT = (await generateSpKeyPair('setup-link IdP', new Date())).certificatePem;
const ORG = (id: string) => `/api/user/organizations/${id}`;
const meta = { ip: '127.0.0.1', userAgent: 'test', requestId: null };

interface OpenedLink {
  id: string;
  token: string;
  cookies: Record<string, string>;
}

async function createLink(as: TestUser, org: string, scope: string[], expiresInHours?: number): Promise<{ id: string; token: string }> {
  const res = await t.request('POST', `${ORG(org)}/setup-links`, { as, body: { scope, ...(expiresInHours ? { expiresInHours } : {}) } });
  expect(res.status, res.text).toBe(201);
  const token = new URL(res.body.data.url).pathname.split('/').pop()!;
  return { id: res.body.data.id, token };
}

/** Open a link as a browser would on /setup/{token}: the first open returns the binding cookie. */
async function openLink(link: { id: string; token: string }, jar: Record<string, string> = {}): Promise<OpenedLink & { result: Awaited<ReturnType<TestGatehouse['services']['setupLinks']['open']>> }> {
  const result = await t.services.setupLinks.open(link.token, (name) => jar[name], meta);
  if (result.ok && result.cookie) jar[result.cookie.name] = result.cookie.value;
  return { ...link, cookies: jar, result };
}

const viaLink = (link: OpenedLink, method: string, path: string, body?: unknown) =>
  t.request(method, path, { headers: { 'x-setup-link': link.id }, cookies: link.cookies, body });

beforeAll(async () => {
  t = await createTestGatehouse({ env: { GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  idp = await startRealIdp({ redirectUris: [] });
  owner = await t.signUp('owner@setup-a.test');
  admin = await t.signUp('admin@setup-a.test');
  ownerB = await t.signUp('owner@setup-b.test');
  orgA = await createOrg(t, owner, 'Setup A', 'setup-a');
  orgB = await createOrg(t, ownerB, 'Setup B', 'setup-b');
  await addMember(t, owner, orgA, admin, 'admin');
});
afterAll(async () => {
  await idp?.close();
  await t.destroy();
});

describe('creating setup links', () => {
  it('the URL is shown once; only a hash of its token is stored', async () => {
    const link = await createLink(owner, orgA, ['sso', 'domains'], 48);
    expect(link.token).toMatch(/^gsl_/);
    const row = await t.deps.db.selectFrom('setup_links').selectAll().where('id', '=', link.id).executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(link.token);
    expect(JSON.parse(row.scope)).toEqual(['domains', 'sso']);
    expect(new Date(row.expires_at).getTime() - new Date(row.created_at).getTime()).toBe(48 * 3600_000);
    const list = await t.request('GET', `${ORG(orgA)}/setup-links`, { as: owner });
    const item = list.body.data.items.find((i: { id: string }) => i.id === link.id);
    expect(item).toMatchObject({ status: 'active', scope: ['domains', 'sso'], boundAt: null, createdBy: { id: owner.id, email: owner.email } });
    expect(JSON.stringify(list.body)).not.toContain(link.token);
    const audit = await t.request('GET', `${ORG(orgA)}/audit-log`, { as: owner });
    expect(audit.body.data.items[0]).toMatchObject({ action: 'setup_link.created', target: { type: 'setup_link', id: link.id } });
    expect(JSON.stringify(audit.body)).not.toContain(link.token);
  });

  it('the start page names who sent the link and the organization by slug (a look-alike name is not enough to phish)', async () => {
    const link = await createLink(owner, orgA, ['domains']);
    const page = await t.request('GET', `/setup/${link.token}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain(owner.email);
    expect(page.text).toContain('<code>setup-a</code>');
  });

  it('an admin, who cannot configure SSO, cannot send a link that can (403); a domains link is fine', async () => {
    const sso = await t.request('POST', `${ORG(orgA)}/setup-links`, { as: admin, body: { scope: ['sso'] } });
    expect(sso.status).toBe(403);
    expect((await t.request('POST', `${ORG(orgA)}/setup-links`, { as: admin, body: { scope: ['domains'] } })).status).toBe(201);
  });

  it('refuses an unknown scope, an empty one and a lifetime beyond 168 hours, each next to its field', async () => {
    for (const body of [{ scope: ['members'] }, { scope: [] }, { scope: ['sso'], expiresInHours: 169 }, { scope: ['sso'], expiresInHours: 0 }]) {
      const res = await t.request('POST', `${ORG(orgA)}/setup-links`, { as: owner, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.details.issues[0].path).toMatch(/^(scope|expiresInHours)/);
    }
  });
});

describe('the log', () => {
  it('never holds a setup link token or an invitation token from a page path', async () => {
    const lines: string[] = [];
    const logged = await createTestGatehouse({ logger: pino({ level: 'info' }, new Writable({ write(chunk: Buffer, _e, cb) { lines.push(String(chunk)); cb(); } })) });
    try {
      const o = await logged.signUp('owner@logged.test');
      const org = await createOrg(logged, o, 'Logged');
      const res = await logged.request('POST', `${ORG(org)}/setup-links`, { as: o, body: { scope: ['domains'] } });
      const token = new URL(res.body.data.url).pathname.split('/').pop()!;
      await logged.request('GET', `/setup/${token}`);
      await logged.request('POST', `/setup/${token}`);
      await logged.request('GET', '/invitations/inv_secret-invitation-token');
      await logged.request('POST', '/api/user/invitations/inv_secret-invitation-token/accept', { as: o });
      const all = lines.join('');
      expect(all).toContain('/setup/[token]');
      expect(all).not.toContain(token);
      expect(all).not.toContain('secret-invitation-token');
    } finally {
      await logged.destroy();
    }
  });
});

describe('a setup link at work', () => {
  it('configures SSO (dry-run test, save) and a domain, each change audited as made through the link', async () => {
    const link = await openLink(await createLink(owner, orgA, ['sso', 'domains']));
    expect(link.result).toMatchObject({ ok: true, organization: { id: orgA, name: 'Setup A' } });

    const sp = await viaLink(link, 'GET', `${ORG(orgA)}/settings/sso/service-provider`);
    expect(sp.status, sp.text).toBe(200);
    expect(sp.body.data.redirectUri).toBe(`http://localhost:3000/api/auth/sso/callback/${orgA}`);

    const body = { provider: 'oidc', issuerUrl: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret };
    const test = await viaLink(link, 'POST', `${ORG(orgA)}/settings/sso/test`, body);
    expect(test.status, test.text).toBe(200);
    expect(test.body.data.checks.map((c: { name: string }) => c.name)).toEqual(expect.arrayContaining(['discovery', 'issuer', 'jwks', 'mix_up_protection']));
    // A dry run saves nothing.
    expect((await viaLink(link, 'GET', `${ORG(orgA)}/settings/sso`)).status).toBe(404);

    const put = await viaLink(link, 'PUT', `${ORG(orgA)}/settings/sso`, { ...body, enabled: true });
    expect(put.status, put.text).toBe(200);
    expect(put.body.data.clientSecret).not.toBe(idp.clientSecret);
    // Saved disabled whatever the body says: an owner reviews and enables it.
    expect(put.body.data.enabled).toBe(false);
    // The link may keep adjusting its own, still disabled, connection.
    const again = await viaLink(link, 'PUT', `${ORG(orgA)}/settings/sso`, { ...body, scopes: 'openid email profile' });
    expect(again.status, again.text).toBe(200);

    const added = await viaLink(link, 'POST', `${ORG(orgA)}/domains`, { domain: 'setup-a.example.org' });
    expect(added.status, added.text).toBe(201);

    const audit = (await t.request('GET', `${ORG(orgA)}/audit-log?limit=10`, { as: owner })).body.data.items as Array<{ action: string; actor: unknown }>;
    const byLink = { type: 'setup_link', userId: null, apiKeyId: null, setupLinkId: link.id };
    expect(audit.find((e) => e.action === 'sso.connection_created')?.actor).toEqual(byLink);
    expect(audit.find((e) => e.action === 'domain.added')?.actor).toEqual(byLink);
    expect(audit.find((e) => e.action === 'setup_link.opened')?.actor).toEqual(byLink);
    const listed = (await t.request('GET', `${ORG(orgA)}/setup-links`, { as: owner })).body.data.items.find((i: { id: string }) => i.id === link.id);
    expect(listed.boundAt).not.toBeNull();
    expect(listed.lastUsedAt).not.toBeNull();
  });

  it('a mail scanner or chat preview that fetches the URL does not take the link: previews bind nothing', async () => {
    const link = await createLink(owner, orgA, ['domains']);
    for (let i = 0; i < 3; i++) {
      const preview = await t.services.setupLinks.preview(link.token, () => undefined);
      expect(preview).toMatchObject({ ok: true, unbound: true, organization: { id: orgA } });
    }
    const row = await t.deps.db.selectFrom('setup_links').selectAll().where('id', '=', link.id).executeTakeFirstOrThrow();
    expect(row.binding_hash).toBeNull();
    // The person who presses "Start" gets it; a preview from anywhere else is then refused.
    const started = await openLink(link);
    expect(started.result.ok).toBe(true);
    expect(await t.services.setupLinks.preview(link.token, () => undefined)).toEqual({ ok: false, reason: 'bound_elsewhere' });
    expect(await t.services.setupLinks.preview(link.token, (name) => started.cookies[name])).toMatchObject({ ok: true, cookie: null });
  });

  it('a link that leaked cannot take over accounts: what it saves stays disabled, and it cannot change an enabled connection', async () => {
    const org = await createOrg(t, owner, 'Takeover target', 'takeover-target');
    const link = await openLink(await createLink(owner, org, ['sso']));
    const evil = { provider: 'oidc', issuerUrl: idp.issuer, clientId: idp.clientId, clientSecret: idp.clientSecret, enabled: true, defaultRole: 'admin' };
    const saved = await viaLink(link, 'PUT', `${ORG(org)}/settings/sso`, evil);
    expect(saved.status, saved.text).toBe(200);
    expect(saved.body.data.enabled).toBe(false);
    // Disabled: nobody signs in through it (the SSO login refuses before any IdP request).
    const login = await t.request('GET', '/api/auth/sso/takeover-target/login');
    expect(login.status).not.toBe(302);
    // The owner enables it; from then on the link cannot change or replace it.
    const enabled = await t.request('PUT', `${ORG(org)}/settings/sso`, { as: owner, body: { provider: 'oidc', issuerUrl: idp.issuer, clientId: idp.clientId, enabled: true } });
    expect(enabled.status, enabled.text).toBe(200);
    expect(enabled.body.data.enabled).toBe(true);
    for (const body of [{ ...evil, clientId: 'other-client' }, { provider: 'saml', idpEntityId: 'https://evil.test', idpSsoUrl: 'https://evil.test/sso', idpCertificate: IDP_CERT }]) {
      const res = await viaLink(link, 'PUT', `${ORG(org)}/settings/sso`, body);
      expect(res.status, res.text).toBe(409);
    }
    const after = await t.request('GET', `${ORG(org)}/settings/sso`, { as: owner });
    expect(after.body.data).toMatchObject({ protocol: 'oidc', clientId: idp.clientId, enabled: true, defaultRole: 'member' });
  });

  it('a stolen URL opened in a second browser is refused once the first browser holds the link', async () => {
    const first = await openLink(await createLink(owner, orgA, ['domains']));
    expect(first.result.ok).toBe(true);
    const second = await openLink({ id: first.id, token: first.token });
    expect(second.result).toEqual({ ok: false, reason: 'bound_elsewhere' });
    // The first browser keeps working, and opening the page again does not re-bind.
    const again = await openLink(first, first.cookies);
    expect(again.result).toMatchObject({ ok: true, cookie: null });
    // The API refuses the second browser (no cookie, or a cookie made up for the link).
    expect((await viaLink({ ...first, cookies: {} }, 'GET', `${ORG(orgA)}/domains`)).status).toBe(401);
    const forged = { [setupLinkCookieName(first.id, false)]: `${first.id}.${'A'.repeat(43)}` };
    expect((await viaLink({ ...first, cookies: forged }, 'GET', `${ORG(orgA)}/domains`)).status).toBe(401);
    expect((await viaLink(first, 'GET', `${ORG(orgA)}/domains`)).status).toBe(200);
  });

  it('a link cannot reach anything outside its scope: members, security, removing SSO, API keys, minting links, the user API', async () => {
    const link = await openLink(await createLink(owner, orgA, ['sso', 'domains']));
    const refused: Array<[string, string, unknown?]> = [
      ['GET', `${ORG(orgA)}/members`],
      ['PUT', `${ORG(orgA)}/settings/security`, { authRequired: 'any' }],
      ['DELETE', `${ORG(orgA)}/settings/sso`],
      ['GET', `${ORG(orgA)}/audit-log`],
      ['GET', `${ORG(orgA)}/sso/identities`],
      ['POST', `${ORG(orgA)}/setup-links`, { scope: ['sso'] }],
      ['POST', `${ORG(orgA)}/invitations`, { email: 'x@evil.test', role: 'admin' }],
      ['PATCH', ORG(orgA), { name: 'Hacked' }],
      ['GET', '/api/user/me'],
      ['POST', '/api/user/api-keys', { name: 'escape' }],
      ['GET', '/api/auth/session'],
    ];
    for (const [method, path, body] of refused) {
      const res = await viaLink(link, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(403);
    }
  });

  it('a domains-only link cannot touch SSO', async () => {
    const link = await openLink(await createLink(owner, orgA, ['domains']));
    for (const [method, path] of [['GET', '/settings/sso'], ['PUT', '/settings/sso'], ['POST', '/settings/sso/test'], ['GET', '/settings/sso/service-provider']] as const) {
      const res = await viaLink(link, method, `${ORG(orgA)}${path}`, method === 'PUT' ? { provider: 'saml', idpEntityId: 'https://evil.test', idpSsoUrl: 'https://evil.test/sso', idpCertificate: IDP_CERT } : undefined);
      expect(res.status, `${method} ${path}`).toBe(403);
    }
  });

  it("another organization's link gets nothing of this one (403), and this one is unchanged", async () => {
    const linkB = await openLink(await createLink(ownerB, orgB, ['sso', 'domains']));
    for (const [method, path, body] of [
      ['GET', '/settings/sso'], ['GET', '/settings/sso/service-provider'], ['GET', '/domains'],
      ['PUT', '/settings/sso', { provider: 'saml', idpEntityId: 'https://evil.test', idpSsoUrl: 'https://evil.test/sso', idpCertificate: IDP_CERT }],
      ['POST', '/domains', { domain: 'stolen.example.org' }],
    ] as Array<[string, string, unknown?]>) {
      const res = await viaLink(linkB, method, `${ORG(orgA)}${path}`, body);
      expect(res.status, `${method} ${path}`).toBe(403);
    }
    const domains = await t.request('GET', `${ORG(orgA)}/domains`, { as: owner });
    expect(domains.body.data.items.map((d: { domain: string }) => d.domain)).not.toContain('stolen.example.org');
    expect((await t.request('GET', `${ORG(orgA)}/settings/sso`, { as: owner })).body.data.protocol).toBe('oidc');
  });

  it('a session cookie beside the link header is not used: the request is the link, nothing more', async () => {
    const link = await openLink(await createLink(owner, orgA, ['domains']));
    const res = await t.request('GET', `${ORG(orgA)}/members`, { as: owner, headers: { 'x-setup-link': link.id }, cookies: link.cookies });
    expect(res.status).toBe(403);
  });

  it('a cross-site write through the link is refused (CSRF: the Origin rule of cookie writes)', async () => {
    const link = await openLink(await createLink(owner, orgA, ['domains']));
    const res = await t.request('POST', `${ORG(orgA)}/domains`, { headers: { 'x-setup-link': link.id }, cookies: link.cookies, body: { domain: 'csrf.example.org' }, origin: 'https://evil.test' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('CSRF_REJECTED');
  });

  it('revoked: the page and the API refuse it at once, in the browser that holds it too', async () => {
    const link = await openLink(await createLink(owner, orgA, ['domains']));
    expect((await viaLink(link, 'GET', `${ORG(orgA)}/domains`)).status).toBe(200);
    expect((await t.request('DELETE', `${ORG(orgA)}/setup-links/${link.id}`, { as: owner })).status).toBe(200);
    expect((await viaLink(link, 'GET', `${ORG(orgA)}/domains`)).status).toBe(401);
    expect((await openLink(link, link.cookies)).result).toEqual({ ok: false, reason: 'revoked' });
    expect((await t.request('DELETE', `${ORG(orgA)}/setup-links/${link.id}`, { as: owner })).status).toBe(409);
    const listed = (await t.request('GET', `${ORG(orgA)}/setup-links`, { as: owner })).body.data.items.find((i: { id: string }) => i.id === link.id);
    expect(listed.status).toBe('revoked');
  });

  it('a link dies with its creator\'s right to make it: an admin removed from the organization, an owner demoted', async () => {
    const departing = await t.signUp('departing-admin@setup-a.test');
    await addMember(t, owner, orgA, departing, 'admin');
    const link = await openLink(await createLink(departing, orgA, ['domains']));
    expect((await viaLink(link, 'GET', `${ORG(orgA)}/domains`)).status).toBe(200);
    expect((await t.request('DELETE', `${ORG(orgA)}/members/${departing.id}`, { as: owner })).status).toBe(200);
    expect((await viaLink(link, 'GET', `${ORG(orgA)}/domains`)).status).toBe(401);
    expect((await openLink(link, link.cookies)).result).toEqual({ ok: false, reason: 'revoked' });
    const listed = (await t.request('GET', `${ORG(orgA)}/setup-links?limit=100`, { as: owner })).body.data.items.find((i: { id: string }) => i.id === link.id);
    expect(listed.status).toBe('revoked');

    const coOwner = await t.signUp('co-owner@setup-a.test');
    await addMember(t, owner, orgA, coOwner, 'owner');
    const ssoLink = await openLink(await createLink(coOwner, orgA, ['sso']));
    expect((await viaLink(ssoLink, 'GET', `${ORG(orgA)}/settings/sso/service-provider`)).status).toBe(200);
    expect((await t.request('PATCH', `${ORG(orgA)}/members/${coOwner.id}`, { as: owner, body: { role: 'admin' } })).status).toBe(200);
    expect((await viaLink(ssoLink, 'GET', `${ORG(orgA)}/settings/sso/service-provider`)).status).toBe(401);
    // Revoked for good: promoting the creator again does not bring the link back.
    expect((await t.request('PATCH', `${ORG(orgA)}/members/${coOwner.id}`, { as: owner, body: { role: 'owner' } })).status).toBe(200);
    expect((await viaLink(ssoLink, 'GET', `${ORG(orgA)}/settings/sso/service-provider`)).status).toBe(401);
    const audit = (await t.request('GET', `${ORG(orgA)}/audit-log?action=setup_link.revoked&limit=100`, { as: owner })).body.data.items as Array<{ target: { id: string }; actor: { type: string }; metadata: { reason?: string } }>;
    expect(audit.find((e) => e.target.id === ssoLink.id)).toMatchObject({ actor: { type: 'system' }, metadata: { reason: 'creator_lost_access' } });
  });

  it('a link made with an API key dies with the key', async () => {
    const { key, id: keyId } = await createApiKey(t, owner, { name: 'backend', organizationId: orgA });
    const res = await t.request('POST', `${ORG(orgA)}/setup-links`, { apiKey: key, body: { scope: ['domains'] } });
    expect(res.status, res.text).toBe(201);
    const link = await openLink({ id: res.body.data.id, token: new URL(res.body.data.url).pathname.split('/').pop()! });
    expect((await viaLink(link, 'GET', `${ORG(orgA)}/domains`)).status).toBe(200);
    expect((await t.request('DELETE', `/api/user/api-keys/${keyId}`, { as: owner })).status).toBe(200);
    expect((await viaLink(link, 'GET', `${ORG(orgA)}/domains`)).status).toBe(401);
  });

  it("another organization's owner cannot revoke this organization's link (404)", async () => {
    const link = await createLink(owner, orgA, ['domains']);
    expect((await t.request('DELETE', `${ORG(orgB)}/setup-links/${link.id}`, { as: ownerB })).status).toBe(404);
    expect((await openLink(link)).result.ok).toBe(true);
  });

  it('expired: refused by the page and the API', async () => {
    const link = await openLink(await createLink(owner, orgA, ['domains'], 1));
    expect((await viaLink(link, 'GET', `${ORG(orgA)}/domains`)).status).toBe(200);
    t.clock.advance(3600_000 + 1000);
    expect((await viaLink(link, 'GET', `${ORG(orgA)}/domains`)).status).toBe(401);
    expect((await openLink(link, link.cookies)).result).toEqual({ ok: false, reason: 'expired' });
    const fresh = await createLink(owner, orgA, ['domains'], 1);
    t.clock.advance(3600_000 + 1000);
    expect((await openLink(fresh)).result).toEqual({ ok: false, reason: 'expired' });
  });

  it('an unknown or malformed token is "unknown"; a malformed link id in the header is 401', async () => {
    expect((await openLink({ id: 'x', token: 'gsl_nope' })).result).toEqual({ ok: false, reason: 'unknown' });
    expect((await openLink({ id: 'x', token: 'x'.repeat(5000) })).result).toEqual({ ok: false, reason: 'unknown' });
    const res = await t.request('GET', `${ORG(orgA)}/domains`, { headers: { 'x-setup-link': '../../etc' } });
    expect(res.status).toBe(401);
  });
});
