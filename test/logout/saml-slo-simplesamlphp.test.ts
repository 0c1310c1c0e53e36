/**
 * SAML Single Logout against a REAL IdP: SimpleSAMLphp 1.19 (Debian), started per run on
 * 127.0.0.1 by test/helpers/simplesamlphp.ts, and Gatehouse served over real HTTP on another
 * loopback port. SimpleSAMLphp knows Gatehouse from Gatehouse's own SP metadata (so it reads the
 * SingleLogoutService and the signing certificate from it), signs the logout messages it sends
 * and requires Gatehouse's to be signed (`sign.logout`, `validate.logout`). The browser is the
 * helper's cookie-jar client, one per test, used for both origins.
 *
 * Missing SimpleSAMLphp: skipped with a message locally, a failure under CI=true.
 */
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inflateRawSync } from 'node:zlib';
import { getRequestListener } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestGatehouse, ENGINE, type TestGatehouse } from '../helpers/app.js';
import { Browser, parseForm, skipWithoutSimpleSamlPhp, startSimpleSamlPhp, type SimpleSamlPhpIdp } from '../helpers/simplesamlphp.js';

const skip = skipWithoutSimpleSamlPhp();

interface HttpGatehouse {
  t: TestGatehouse;
  base: string;
  close(): Promise<void>;
}

/** Gatehouse on 127.0.0.1 (the socket is bound first, so GATEHOUSE_BASE_URL can name its port). */
async function startHttpGatehouse(): Promise<HttpGatehouse> {
  let handler: RequestListener | null = null;
  const server = createServer((req, res) => (handler ? handler(req, res) : res.writeHead(503).end()));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const t = await createTestGatehouse({ env: { GATEHOUSE_BASE_URL: base, GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  handler = getRequestListener(t.app.fetch);
  return {
    t,
    base,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await t.destroy();
    },
  };
}

/** The SAML message of an HTTP-Redirect binding URL, decoded. */
function redirectMessage(url: string): { kind: string; xml: string } {
  const q = new URL(url).searchParams;
  const kind = q.has('SAMLRequest') ? 'SAMLRequest' : 'SAMLResponse';
  return { kind, xml: inflateRawSync(Buffer.from(q.get(kind) ?? '', 'base64')).toString('utf8') };
}

describe.skipIf(skip)(`SAML Single Logout with SimpleSAMLphp as the IdP, on ${ENGINE}`, () => {
  let idp: SimpleSamlPhpIdp;
  let gh: HttpGatehouse;
  let owner: Browser;
  let orgId = '';

  const json = (b: Browser, method: string, path: string, body?: unknown) =>
    b.request(new URL(path, gh.base).toString(), { method, ...(body === undefined ? {} : { json: body }), headers: { origin: gh.base, accept: 'application/json' } });

  beforeAll(async () => {
    idp = await startSimpleSamlPhp();
    gh = await startHttpGatehouse();
    owner = new Browser();
    const signUp = await json(owner, 'POST', '/api/auth/sign-up/email', { email: 'owner@acme.test', password: 'correct horse battery' });
    if (signUp.status !== 201) throw new Error(`sign-up: ${signUp.status} ${signUp.text}`);
    const org = await json(owner, 'POST', '/api/user/organizations', { name: 'Acme', slug: 'acme' });
    if (org.status !== 201) throw new Error(`create org: ${org.status} ${org.text}`);
    orgId = JSON.parse(org.text).data.id;
    // The IdP's metadata by URL: entity ID, SSO URL, certificate — and now its SingleLogoutService.
    const put = await json(owner, 'PUT', `/api/user/organizations/${orgId}/settings/sso`, {
      provider: 'saml', idpMetadataUrl: idp.metadataUrl, signOutOfIdp: true, allowJitProvisioning: true,
    });
    if (put.status !== 200) throw new Error(`PUT settings/sso: ${put.status} ${put.text}`);
    // SimpleSAMLphp reads Gatehouse's SP metadata as published (SLO endpoints, signing certificate).
    const metadata = await fetch(`${gh.base}/api/auth/sso/acme/saml/metadata`);
    idp.setSpMetadataXml([await metadata.text()]);
  });
  afterAll(async () => {
    await gh?.close();
    await idp?.close();
  });

  /** SP-initiated login in `b`: Gatehouse → SimpleSAMLphp's login form → its POST to the ACS. */
  async function signIn(b: Browser, username = 'alice@acme.test', password = 'alice-pass') {
    const start = await b.request(`${gh.base}/api/auth/sso/acme/login`);
    expect(start.status, start.text).toBe(302);
    const post = await idp.login(start.location!, username, password, b);
    const acs = await b.request(post.action, { form: { SAMLResponse: post.samlResponse, ...(post.relayState ? { RelayState: post.relayState } : {}) } });
    expect(acs.status, acs.text).toBe(302);
    expect(b.cookie(gh.base, 'gatehouse_session')).toBeTruthy();
    const session = await json(b, 'GET', '/api/auth/session');
    expect(session.status, session.text).toBe(200);
    return JSON.parse(session.text).data.session.id as string;
  }

  it('imports the IdP SingleLogoutService from its metadata and lists its own in the SP metadata', async () => {
    const get = await json(owner, 'GET', `/api/user/organizations/${orgId}/settings/sso`);
    const data = JSON.parse(get.text).data;
    expect(data.idpSloUrl).toBe(idp.sloUrl);
    expect(data.signOutOfIdp).toBe(true);
    const xml = await (await fetch(`${gh.base}/api/auth/sso/acme/saml/metadata`)).text();
    for (const binding of ['HTTP-Redirect', 'HTTP-POST']) expect(xml).toContain(`<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:${binding}" Location="${data.sloUrl}"/>`);
  });

  it('SP-initiated: sign-out answers idpLogoutUrl; SimpleSAMLphp ends its session and its signed LogoutResponse lands on /signed-out; the next login asks for the password again', async () => {
    const b = new Browser();
    const sessionId = await signIn(b);
    const row = await gh.t.deps.db.selectFrom('sessions').select(['identity_id', 'idp_session_id']).where('id', '=', sessionId).executeTakeFirstOrThrow();
    expect(row.identity_id).toBeTruthy();
    expect(row.idp_session_id).toMatch(/^_/);

    const out = await json(b, 'POST', '/api/auth/sign-out');
    expect(out.status, out.text).toBe(200);
    const idpLogoutUrl: string = JSON.parse(out.text).data.idpLogoutUrl;
    expect(idpLogoutUrl.startsWith(`${idp.sloUrl}?SAMLRequest=`)).toBe(true);
    expect(redirectMessage(idpLogoutUrl).xml).toContain(`<samlp:SessionIndex>${row.idp_session_id}</samlp:SessionIndex>`);
    expect((await json(b, 'GET', '/api/auth/session')).status).toBe(401);

    // The browser follows it: SimpleSAMLphp verifies the request, ends its session, and redirects
    // back with a signed LogoutResponse to Gatehouse's SLO service.
    const atIdp = await b.follow(idpLogoutUrl, idp.baseUrl);
    expect(atIdp.status, `${atIdp.text.slice(0, 2000)}\n${idp.logs()}`).toBe(302);
    expect(atIdp.location, `${atIdp.text.slice(0, 1500)}\n${idp.simpleSamlLog().slice(-6000)}`).toMatch(new RegExp(`^${gh.base}/api/auth/sso/acme/saml/slo\\?SAMLResponse=`));
    const response = redirectMessage(atIdp.location!);
    expect(response.xml).toContain('urn:oasis:names:tc:SAML:2.0:status:Success');
    expect(new URL(atIdp.location!).searchParams.get('Signature')).toBeTruthy();
    const back = await b.request(atIdp.location!);
    expect(back.status, back.text).toBe(302);
    expect(back.location).toBe(`${gh.base}/signed-out`);

    // SimpleSAMLphp's session is gone: a new sign-in shows its login form again.
    const again = await b.request(`${gh.base}/api/auth/sso/acme/login`);
    const page = await b.follow(again.location!, idp.baseUrl);
    const form = parseForm(page.text, page.url);
    expect(form && 'password' in form.fields, page.text.slice(0, 500)).toBe(true);
  });

  it('IdP-initiated: logging out at SimpleSAMLphp sends a signed LogoutRequest to /saml/slo, the Gatehouse session ends, and SimpleSAMLphp accepts the signed LogoutResponse', async () => {
    const b = new Browser();
    const sessionId = await signIn(b, 'bob@acme.test', 'bob-pass');
    const other = new Browser();
    const otherSessionId = await signIn(other, 'alice@acme.test', 'alice-pass');

    const returnTo = idp.metadataUrl;
    const start = await b.follow(idp.idpLogoutUrl(returnTo), idp.baseUrl);
    expect(start.status, `${start.text.slice(0, 2000)}\n${idp.logs()}`).toBe(302);
    // SimpleSAMLphp's traditional logout: the browser carries its LogoutRequest to Gatehouse.
    expect(start.location, `${start.text.slice(0, 1500)}\n${idp.simpleSamlLog().slice(-4000)}`).toMatch(new RegExp(`^${gh.base}/api/auth/sso/acme/saml/slo\\?SAMLRequest=`));
    const request = redirectMessage(start.location!);
    expect(request.xml).toContain('LogoutRequest');
    expect(new URL(start.location!).searchParams.get('Signature')).toBeTruthy();

    const atGatehouse = await b.request(start.location!);
    expect(atGatehouse.status, atGatehouse.text).toBe(302);
    expect(atGatehouse.location!.startsWith(`${idp.sloUrl}?SAMLResponse=`)).toBe(true);
    expect(redirectMessage(atGatehouse.location!).xml).toContain('urn:oasis:names:tc:SAML:2.0:status:Success');
    const revoked = await gh.t.deps.db.selectFrom('sessions').select(['id', 'revoked_at']).where('id', 'in', [sessionId, otherSessionId]).execute();
    expect(revoked.find((r) => r.id === sessionId)?.revoked_at).toBeTruthy();
    expect(revoked.find((r) => r.id === otherSessionId)?.revoked_at, "another user's session stays").toBeNull();
    expect((await json(b, 'GET', '/api/auth/session')).status).toBe(401);
    expect((await json(other, 'GET', '/api/auth/session')).status).toBe(200);

    // SimpleSAMLphp accepts Gatehouse's LogoutResponse and completes the logout at ReturnTo.
    const logLength = idp.simpleSamlLog().length;
    const done = await b.follow(atGatehouse.location!, idp.baseUrl);
    const log = idp.simpleSamlLog().slice(logLength);
    expect(done.status, `${done.text.slice(0, 2000)}\n${log}`).toBe(200);
    expect(done.url).toBe(returnTo);
    expect(log).toContain('Received SAML 2.0 LogoutResponse from');
    expect(log).toMatch(/Logged out of 'saml:http:\/\/127\.0\.0\.1:\d+\/api\/auth\/sso\/acme\/saml\/metadata'/);
    expect(log).not.toMatch(/ERROR|Exception/);

    // SimpleSAMLphp's genuine LogoutRequest, replayed: refused (answered Requester), and a
    // session the same user opened since stays alive.
    const again = await signIn(b, 'bob@acme.test', 'bob-pass');
    const replay = await b.request(start.location!);
    expect(replay.status, replay.text).toBe(302);
    expect(redirectMessage(replay.location!).xml).toContain('<samlp:StatusMessage>replayed</samlp:StatusMessage>');
    const row = await gh.t.deps.db.selectFrom('sessions').select('revoked_at').where('id', '=', again).executeTakeFirstOrThrow();
    expect(row.revoked_at).toBeNull();
  });
});
