/**
 * End-to-end SAML against a REAL IdP: SimpleSAMLphp 1.19 (Debian package) started per run by
 * test/helpers/simplesamlphp.ts on 127.0.0.1, and Gatehouse served over real HTTP on another
 * loopback port. The "browser" is plain fetch with a cookie jar: Gatehouse's 302 → the IdP's
 * login form → username/password → the IdP's auto-submit form → POST to Gatehouse's ACS
 * (without Gatehouse cookies, as a cross-site POST from a real browser carries none).
 *
 * Missing SimpleSAMLphp: skipped with a message locally, a failure under CI=true.
 */
import { randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { DOMParser } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { createHash, X509Certificate } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestGatehouse, ENGINE, type TestGatehouse } from '../../helpers/app.js';
import {
  DEFAULT_USERS,
  makeCertificate,
  NAMEID_EMAIL,
  parseForm,
  skipWithoutSimpleSamlPhp,
  startSimpleSamlPhp,
  type IdpPost,
  type SimpleSamlPhpIdp,
} from '../../helpers/simplesamlphp.js';

const skip = skipWithoutSimpleSamlPhp();
const DSIG = 'http://www.w3.org/2000/09/xmldsig#';

interface CheckedSignature {
  /** Local name of the signed element (Response or Assertion). */
  element: string;
  id: string | null;
  valid: boolean;
  signatureMethod: string | null;
  digestMethods: string[];
}

/** Verify every ds:Signature in `xml` with xml-crypto against `certPem` only (KeyInfo ignored). */
function checkSignatures(xml: string, certPem: string): CheckedSignature[] {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const nodes = Array.from(doc.getElementsByTagNameNS(DSIG, 'Signature'));
  return nodes.map((node) => {
    const parent = node.parentNode as unknown as { localName: string; getAttribute(n: string): string | null };
    const sx = new SignedXml({ publicCert: certPem, getCertFromKeyInfo: () => null });
    sx.loadSignature(node.toString());
    let valid = false;
    try {
      valid = sx.checkSignature(xml);
    } catch {
      valid = false;
    }
    const sig = node.toString();
    return {
      element: parent.localName,
      id: parent.getAttribute('ID'),
      valid,
      signatureMethod: /SignatureMethod Algorithm="([^"]+)"/.exec(sig)?.[1] ?? null,
      digestMethods: [...sig.matchAll(/DigestMethod Algorithm="([^"]+)"/g)].map((m) => m[1]!),
    };
  });
}

/** An HTTP-Redirect binding AuthnRequest URL, as an SP would build it (unsigned). */
function authnRequestUrl(idp: SimpleSamlPhpIdp, sp: { entityId: string; acsUrl: string }, id: string, relayState?: string) {
  const xml =
    `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ` +
    `ID="${id}" Version="2.0" IssueInstant="${new Date().toISOString()}" Destination="${idp.ssoUrl}" ` +
    `AssertionConsumerServiceURL="${sp.acsUrl}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">` +
    `<saml:Issuer>${sp.entityId}</saml:Issuer></samlp:AuthnRequest>`;
  const u = new URL(idp.ssoUrl);
  u.searchParams.set('SAMLRequest', deflateRawSync(Buffer.from(xml)).toString('base64'));
  if (relayState) u.searchParams.set('RelayState', relayState);
  return u.toString();
}

describe.skipIf(skip)('SimpleSAMLphp test IdP (the helper itself)', () => {
  let idp: SimpleSamlPhpIdp;
  const sp = { entityId: 'http://127.0.0.1:9/helper-sp', acsUrl: 'http://127.0.0.1:9/helper-sp/acs' };
  beforeAll(async () => {
    idp = await startSimpleSamlPhp({ sps: [sp] });
  });
  afterAll(async () => {
    await idp?.close();
  });

  it('serves IdP metadata with its entity ID, SSO endpoints and the per-run signing certificate', async () => {
    const xml = await idp.metadataXml();
    expect(xml).toContain(`entityID="${idp.entityId}"`);
    expect(xml).toContain(`Location="${idp.ssoUrl}"`);
    expect(xml).toContain('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect');
    const certB64 = idp.certificatePem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    expect(xml.replace(/\s+/g, '')).toContain(`<ds:X509Certificate>${certB64}</ds:X509Certificate>`);
  });

  it('answers an SP-initiated AuthnRequest with a Response whose response and assertion signatures verify (rsa-sha256, sha256) against its certificate', async () => {
    const requestId = `_req${randomBytes(8).toString('hex')}`;
    const post = await idp.login(authnRequestUrl(idp, sp, requestId, 'relay-1'), 'alice@acme.test', 'alice-pass');
    expect(post.action).toBe(sp.acsUrl);
    expect(post.relayState).toBe('relay-1');
    expect(post.xml).toContain(`InResponseTo="${requestId}"`);
    expect(post.xml).toContain(`Destination="${sp.acsUrl}"`);
    expect(post.xml).toContain(`<saml:Audience>${sp.entityId}</saml:Audience>`);
    expect(post.xml).toMatch(/<saml:NameID[^>]*Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"[^>]*>alice-0001<\/saml:NameID>/);
    for (const [name, value] of [['email', 'alice@acme.test'], ['givenName', 'Alice'], ['sn', 'Anders'], ['displayName', 'Alice Anders']])
      expect(post.xml).toMatch(new RegExp(`<saml:Attribute Name="${name}"[^>]*><saml:AttributeValue[^>]*>${value}</saml:AttributeValue>`));

    const sigs = checkSignatures(post.xml, idp.certificatePem);
    expect(sigs.map((s) => s.element).sort()).toEqual(['Assertion', 'Response']);
    for (const s of sigs) {
      expect(s.valid, `${s.element} signature`).toBe(true);
      expect(s.signatureMethod).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
      expect(s.digestMethods).toEqual(['http://www.w3.org/2001/04/xmlenc#sha256']);
    }
  });

  it('its signatures do not verify against another certificate (the check can fail)', async () => {
    const post = await idp.login(authnRequestUrl(idp, sp, `_req${randomBytes(8).toString('hex')}`), 'bob@acme.test', 'bob-pass');
    const other = makeCertificate('not-the-idp').certificatePem;
    const sigs = checkSignatures(post.xml, other);
    expect(sigs).toHaveLength(2);
    expect(sigs.every((s) => !s.valid)).toBe(true);
    // And a tampered document fails against the right certificate.
    const tampered = post.xml.replace('bob@acme.test', 'eve@acme.test');
    expect(checkSignatures(tampered, idp.certificatePem).every((s) => !s.valid)).toBe(true);
  });

  it('issues an unsolicited (IdP-initiated) Response for a configured SP, with no InResponseTo', async () => {
    const post = await idp.login(idp.idpInitiatedUrl(sp.entityId, '/landing'), 'alice@acme.test', 'alice-pass');
    expect(post.action).toBe(sp.acsUrl);
    expect(post.relayState).toBe('/landing');
    expect(post.xml).not.toContain('InResponseTo=');
    expect(checkSignatures(post.xml, idp.certificatePem).every((s) => s.valid)).toBe(true);
  });

  it('rejects a wrong password and an unknown SP; SP metadata rewritten between requests applies at once', async () => {
    await expect(idp.login(idp.idpInitiatedUrl(sp.entityId), 'alice@acme.test', 'wrong')).rejects.toThrow(/auto-submit SAMLResponse form/);
    const later = { entityId: 'http://127.0.0.1:9/later-sp', acsUrl: 'http://127.0.0.1:9/later-sp/acs' };
    await expect(idp.login(idp.idpInitiatedUrl(later.entityId), 'alice@acme.test', 'alice-pass')).rejects.toThrow();
    idp.setSps([sp, later]);
    const post = await idp.login(idp.idpInitiatedUrl(later.entityId), 'alice@acme.test', 'alice-pass');
    expect(post.action).toBe(later.acsUrl);
  });

  it('close() stops the PHP server and removes its config directory', async () => {
    const other = await startSimpleSamlPhp();
    const url = other.metadataUrl;
    expect((await fetch(url)).status).toBe(200);
    await other.close();
    await expect(fetch(url)).rejects.toThrow();
    const { existsSync } = await import('node:fs');
    expect(existsSync(other.configDir)).toBe(false);
  });
});

// ---- Gatehouse over real HTTP ---------------------------------------------------------------

interface HttpResponse {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test convenience: envelope JSON
  body: any;
  cookies: Record<string, string>;
}

interface HttpGatehouse {
  t: TestGatehouse;
  base: string;
  request(method: string, path: string, opts?: { cookie?: string; body?: unknown; form?: Record<string, string>; accept?: string; origin?: string }): Promise<HttpResponse>;
  close(): Promise<void>;
}

/**
 * Gatehouse (the test app on its own database) served over HTTP on 127.0.0.1. The socket is bound
 * first (port 0, no race) so that GATEHOUSE_BASE_URL can name the port; requests are handed to
 * the app once it is built.
 */
async function startHttpGatehouse(): Promise<HttpGatehouse> {
  let handler: RequestListener | null = null;
  const server = createServer((req, res) => {
    if (handler) handler(req, res);
    else res.writeHead(503).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  const t = await createTestGatehouse({ env: { GATEHOUSE_BASE_URL: base, GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  handler = getRequestListener(t.app.fetch);
  return {
    t,
    base,
    async request(method, path, opts = {}) {
      const headers: Record<string, string> = {};
      if (opts.cookie) headers.cookie = `gatehouse_session=${opts.cookie}`;
      if (opts.accept) headers.accept = opts.accept;
      let body: string | undefined;
      if (opts.body !== undefined) {
        headers['content-type'] = 'application/json';
        body = JSON.stringify(opts.body);
      } else if (opts.form) {
        headers['content-type'] = 'application/x-www-form-urlencoded';
        body = new URLSearchParams(opts.form).toString();
      }
      // A browser sends Origin on every POST: Gatehouse's own for API writes, the IdP's for the ACS POST.
      if (method !== 'GET') headers.origin = opts.origin ?? base;
      const res = await fetch(new URL(path, base), { method, headers, body, redirect: 'manual' });
      const text = await res.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
      const cookies: Record<string, string> = {};
      for (const line of res.headers.getSetCookie()) {
        const m = /^([^=]+)=([^;]*)/.exec(line);
        if (m) cookies[m[1]!] = m[2]!;
      }
      return { status: res.status, headers: res.headers, text, body: json, cookies };
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await t.destroy();
    },
  };
}

describe.skipIf(skip)(`Gatehouse SAML SP with SimpleSAMLphp as the IdP, on ${ENGINE}`, () => {
  let idp: SimpleSamlPhpIdp;
  let gh: HttpGatehouse;
  let ownerCookie = '';
  let n = 0;

  beforeAll(async () => {
    idp = await startSimpleSamlPhp();
    gh = await startHttpGatehouse();
    const res = await gh.request('POST', '/api/auth/sign-up/email', { body: { email: 'owner@acme.test', password: 'correct horse battery' } });
    if (res.status !== 201 || !res.cookies.gatehouse_session) throw new Error(`sign-up: ${res.status} ${res.text}`);
    ownerCookie = res.cookies.gatehouse_session;
  });
  afterAll(async () => {
    await gh?.close();
    await idp?.close();
  });
  afterEach(() => {
    // Tests that change the IdP's users or SP-metadata XML put the defaults back.
    idp?.setUsers(DEFAULT_USERS);
    idp?.setSpMetadataXml([]);
  });

  /** A fresh organization; returns its id and slug. */
  async function newOrg(): Promise<{ orgId: string; slug: string }> {
    const slug = `acme-ssp-${++n}-${randomBytes(2).toString('hex')}`;
    const res = await gh.request('POST', '/api/user/organizations', { cookie: ownerCookie, body: { name: `Acme ${n}`, slug } });
    expect(res.status, res.text).toBe(201);
    return { orgId: res.body.data.id, slug };
  }

  /** PUT the SAML connection; returns GET settings/sso's data (acsUrl, spEntityId, …). */
  async function configureSaml(orgId: string, body: Record<string, unknown>) {
    const put = await gh.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, { cookie: ownerCookie, body: { provider: 'saml', ...body } });
    expect(put.status, put.text).toBe(200);
    const get = await gh.request('GET', `/api/user/organizations/${orgId}/settings/sso`, { cookie: ownerCookie });
    expect(get.status, get.text).toBe(200);
    return get.body.data as { id: string; acsUrl: string; spEntityId: string; spMetadataUrl: string; loginUrl: string };
  }

  /**
   * A user new to Gatehouse, in a domain of its own (`user@<slug>.test`), made the IdP's only
   * user; returns [username, password] for idp.login. (Signing a user created in one organization
   * into another one is rightly refused as SSO_ACCOUNT_LINK_REQUIRED: the domain is not verified.)
   */
  function fresh(slug: string): [string, string] {
    const email = `user@${slug}.test`;
    idp.setUsers([{ username: email, password: 'user-pass', attributes: { uid: `uid-${slug}`, email, givenName: 'Una', sn: 'User', displayName: 'Una User' } }]);
    return [email, 'user-pass'];
  }

  function pinnedBody() {
    return { idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpCertificate: idp.certificatePem };
  }

  /** The 302 (HTTP-Redirect binding) or auto-submit form (HTTP-POST binding) Gatehouse starts a login with. */
  function loginStart(res: HttpResponse): string | { action: string; fields: Record<string, string> } {
    if (res.status === 302) return res.headers.get('location')!;
    const form = parseForm(res.text, gh.base);
    if (res.status === 200 && form?.fields.SAMLRequest) return form;
    throw new Error(`login start: ${res.status} ${res.text.slice(0, 500)}`);
  }

  /** POST the IdP's auto-submit form to Gatehouse's ACS, from the IdP's origin, with no Gatehouse cookie. */
  async function postToAcs(post: IdpPost, accept?: string) {
    const acs = new URL(post.action);
    expect(acs.origin).toBe(gh.base);
    const form: Record<string, string> = { SAMLResponse: post.samlResponse };
    if (post.relayState !== null) form.RelayState = post.relayState;
    return gh.request('POST', acs.pathname + acs.search, { form, origin: idp.baseUrl, ...(accept ? { accept } : {}) });
  }

  async function session(cookie: string) {
    const res = await gh.request('GET', '/api/auth/session', { cookie });
    expect(res.status, res.text).toBe(200);
    return res.body.data;
  }

  it('SP-initiated login: the user is created just in time, joins with defaultRole, and the session is an SSO session', async () => {
    const { orgId, slug } = await newOrg();
    const conn = await configureSaml(orgId, { ...pinnedBody(), defaultRole: 'admin' });
    expect(conn.acsUrl).toBe(`${gh.base}/api/auth/sso/${slug}/saml/acs`);
    idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl }]);

    const start = await gh.request('GET', `/api/auth/sso/${slug}/login?returnTo=/welcome`);
    const post = await idp.login(loginStart(start), 'alice@acme.test', 'alice-pass');
    expect(post.action).toBe(conn.acsUrl);
    const acs = await postToAcs(post);
    expect(acs.status, acs.text).toBe(302);
    expect(acs.headers.get('location')).toBe('/welcome');
    const cookie = acs.cookies.gatehouse_session!;
    expect(cookie).toBeTruthy();

    const s = await session(cookie);
    expect(s.user).toMatchObject({ email: 'alice@acme.test', name: 'Alice Anders' });
    expect(s.session).toMatchObject({ authMethod: 'sso', connectionId: conn.id, organizationId: orgId });
    expect(s.memberships).toEqual(expect.arrayContaining([expect.objectContaining({ organizationId: orgId, role: 'admin' })]));

    const members = await gh.request('GET', `/api/user/organizations/${orgId}/members`, { cookie: ownerCookie });
    expect(JSON.stringify(members.body.data)).toContain('alice@acme.test');

    // Repeat login, after the IdP changed the user's display name: same user, refreshed identity, no duplicate.
    idp.setUsers([
      {
        username: 'alice@acme.test',
        password: 'alice-pass',
        attributes: { uid: 'alice-0001', email: 'alice@acme.test', givenName: 'Alice', sn: 'Anders-Smith', displayName: 'Alice Anders-Smith' },
      },
    ]);
    const again = await postToAcs(await idp.login(loginStart(await gh.request('GET', `/api/auth/sso/${slug}/login`)), 'alice@acme.test', 'alice-pass'));
    expect(again.status, again.text).toBe(302);
    expect(again.headers.get('location')).toBe('/');
    const s2 = await session(again.cookies.gatehouse_session!);
    expect(s2.user.id).toBe(s.user.id);
    const identities = await gh.request('GET', `/api/user/organizations/${orgId}/sso/identities`, { cookie: ownerCookie });
    expect(identities.status, identities.text).toBe(200);
    const list = identities.body.data.items as Array<Record<string, unknown>>;
    const alices = list.filter((i) => JSON.stringify(i).includes('alice-0001'));
    expect(alices, JSON.stringify(list)).toHaveLength(1);
    expect(JSON.stringify(alices[0])).toContain('Alice Anders-Smith');
    const members2 = await gh.request('GET', `/api/user/organizations/${orgId}/members`, { cookie: ownerCookie });
    expect((JSON.stringify(members2.body.data).match(/alice@acme\.test/g) ?? []).length).toBe(1);
  });

  it('IdP-initiated login via SSOService.php?spentityid= is accepted when allowIdpInitiated is true and lands on RelayState', async () => {
    const { orgId, slug } = await newOrg();
    const conn = await configureSaml(orgId, { ...pinnedBody(), allowIdpInitiated: true });
    idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl }]);
    const post = await idp.login(idp.idpInitiatedUrl(conn.spEntityId, '/from-idp'), 'bob@acme.test', 'bob-pass');
    expect(post.action).toBe(`${gh.base}/api/auth/sso/${slug}/saml/acs`);
    const acs = await postToAcs(post);
    expect(acs.status, acs.text).toBe(302);
    expect(acs.headers.get('location')).toBe('/from-idp');
    const s = await session(acs.cookies.gatehouse_session!);
    expect(s.user.email).toBe('bob@acme.test');
    expect(s.session).toMatchObject({ authMethod: 'sso', connectionId: conn.id, organizationId: orgId });
    // An unsolicited response has no request to consume: replaying it is stopped by the assertion-ID cache.
    const replay = await postToAcs(post, 'application/json');
    expect(replay.status, replay.text).toBe(400);
    expect(replay.body.details.reason).toBe('replayed');
  });

  it('rejects an unsolicited IdP-initiated response when allowIdpInitiated is false (unsolicited_not_allowed)', async () => {
    const { orgId } = await newOrg();
    const conn = await configureSaml(orgId, pinnedBody());
    idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl }]);
    const post = await idp.login(idp.idpInitiatedUrl(conn.spEntityId), 'bob@acme.test', 'bob-pass');
    const acs = await postToAcs(post, 'application/json');
    expect(acs.status, acs.text).toBe(400);
    expect(acs.body.code).toBe('SSO_LOGIN_FAILED');
    expect(acs.body.details.reason).toBe('unsolicited_not_allowed');
    expect(acs.cookies.gatehouse_session ?? '').toBe('');
  });

  it('rejects the IdP response when the connection pins a different certificate (signature_invalid)', async () => {
    const { orgId, slug } = await newOrg();
    const wrong = makeCertificate('not-the-idp').certificatePem;
    const conn = await configureSaml(orgId, { ...pinnedBody(), idpCertificate: wrong });
    idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl }]);
    const post = await idp.login(loginStart(await gh.request('GET', `/api/auth/sso/${slug}/login`)), 'alice@acme.test', 'alice-pass');
    const acs = await postToAcs(post, 'application/json');
    expect(acs.status, acs.text).toBe(400);
    expect(acs.body.code).toBe('SSO_LOGIN_FAILED');
    expect(acs.body.details.reason).toBe('signature_invalid');
    expect(acs.cookies.gatehouse_session ?? '').toBe('');
  });

  it('SimpleSAMLphp accepts Gatehouse SP metadata as-is (imported from /saml/metadata), verifies the signed AuthnRequest with its certificate, and the login completes', async () => {
    const { orgId, slug } = await newOrg();
    const conn = await configureSaml(orgId, { ...pinnedBody(), signAuthnRequests: true });
    const md = await gh.request('GET', `/api/auth/sso/${slug}/saml/metadata`);
    expect(md.status, md.text).toBe(200);
    expect(md.text).toContain(`entityID="${conn.spEntityId}"`);
    expect(md.text).toContain('AuthnRequestsSigned="true"');
    idp.setSps([]);
    idp.setSpMetadataXml([md.text]);
    const mark = idp.simpleSamlLog().length;
    const post = await idp.login(loginStart(await gh.request('GET', `/api/auth/sso/${slug}/login`)), ...fresh(slug));
    expect(idp.simpleSamlLog().slice(mark)).toContain('Validation with key #0 succeeded');
    expect(post.action).toBe(conn.acsUrl);
    const acs = await postToAcs(post);
    expect(acs.status, acs.text).toBe(302);
    expect((await session(acs.cookies.gatehouse_session!)).session.organizationId).toBe(orgId);
  });

  /** SHA-256 fingerprint of a PEM certificate, as hex without separators (lower case). */
  function fingerprint(pem: string) {
    return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
  }
  const plainHex = (f: string) => f.replace(/[^0-9a-f]/gi, '').toLowerCase();

  /** SP-initiated login as alice on `slug`; returns the ACS answer. */
  async function freshUserLogsIn(slug: string, accept?: string) {
    const post = await idp.login(loginStart(await gh.request('GET', `/api/auth/sso/${slug}/login`)), ...fresh(slug));
    return postToAcs(post, accept);
  }

  it('a connection configured by pasting SimpleSAMLphp\'s IdP metadata XML signs users in', async () => {
    const { orgId, slug } = await newOrg();
    const put = await gh.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, {
      cookie: ownerCookie,
      body: { provider: 'saml', idpMetadataXml: await idp.metadataXml() },
    });
    expect(put.status, put.text).toBe(200);
    const get = await gh.request('GET', `/api/user/organizations/${orgId}/settings/sso`, { cookie: ownerCookie });
    const conn = get.body.data;
    expect(conn).toMatchObject({ idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl });
    expect(conn.idpCertificates.map((c: { fingerprintSha256: string }) => plainHex(c.fingerprintSha256))).toEqual([fingerprint(idp.certificatePem)]);
    idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl }]);
    const acs = await freshUserLogsIn(slug);
    expect(acs.status, acs.text).toBe(302);
    expect((await session(acs.cookies.gatehouse_session!)).session).toMatchObject({ authMethod: 'sso', organizationId: orgId, connectionId: conn.id });
  });

  it('a connection configured by idpMetadataUrl (loopback, allowed by GATEHOUSE_ALLOW_LOOPBACK_IDPS) signs users in', async () => {
    const { orgId, slug } = await newOrg();
    const put = await gh.request('PUT', `/api/user/organizations/${orgId}/settings/sso`, {
      cookie: ownerCookie,
      body: { provider: 'saml', idpMetadataUrl: idp.metadataUrl },
    });
    expect(put.status, put.text).toBe(200);
    const conn = (await gh.request('GET', `/api/user/organizations/${orgId}/settings/sso`, { cookie: ownerCookie })).body.data;
    expect(conn).toMatchObject({ idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpMetadataUrl: idp.metadataUrl });
    expect(conn.idpCertificates.map((c: { fingerprintSha256: string }) => plainHex(c.fingerprintSha256))).toEqual([fingerprint(idp.certificatePem)]);
    idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl }]);
    const acs = await freshUserLogsIn(slug);
    expect(acs.status, acs.text).toBe(302);
    expect((await session(acs.cookies.gatehouse_session!)).user.email).toBe(`user@${slug}.test`);
  });

  for (const binding of ['redirect', 'post'] as const) {
    it(`SimpleSAMLphp verifies Gatehouse's signed AuthnRequest (HTTP-${binding === 'post' ? 'POST' : 'Redirect'} binding) and refuses it under another SP certificate`, async () => {
      const { orgId, slug } = await newOrg();
      const conn = (await configureSaml(orgId, { ...pinnedBody(), signAuthnRequests: true, authnRequestBinding: binding })) as unknown as {
        id: string; acsUrl: string; spEntityId: string; spCertificate: string;
      };
      expect(conn.spCertificate).toContain('BEGIN CERTIFICATE');
      // The IdP holds another certificate for this SP: it must refuse the request.
      idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl, signingCertificate: makeCertificate('impostor-sp').certificatePem }]);
      const mark = idp.simpleSamlLog().length;
      await expect(idp.login(loginStart(await gh.request('GET', `/api/auth/sso/${slug}/login`)), ...fresh(slug))).rejects.toThrow(/auto-submit SAMLResponse form|login form/);
      // SimpleSAMLphp found a signature and it did not verify (not "no signature found").
      const log = idp.simpleSamlLog().slice(mark);
      expect(log).toMatch(/Validation with key #0 failed with exception: Unable to validate signature/i);
      expect(log).not.toContain('no signature found');
      // With the SP's real certificate it accepts, and the login completes.
      idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl, signingCertificate: conn.spCertificate }]);
      const start = await gh.request('GET', `/api/auth/sso/${slug}/login`);
      if (binding === 'post') expect(start.status, start.text).toBe(200);
      else expect(start.status).toBe(302);
      const acs = await postToAcs(await idp.login(loginStart(start), ...fresh(slug)));
      expect(acs.status, acs.text).toBe(302);
      expect((await session(acs.cookies.gatehouse_session!)).session.organizationId).toBe(orgId);
    });
  }

  it('decrypts an assertion SimpleSAMLphp encrypted to the SP certificate from the settings', async () => {
    const { orgId, slug } = await newOrg();
    const conn = (await configureSaml(orgId, pinnedBody())) as unknown as { acsUrl: string; spEntityId: string; spCertificate: string };
    idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl, encryptionCertificate: conn.spCertificate }]);
    const post = await idp.login(loginStart(await gh.request('GET', `/api/auth/sso/${slug}/login`)), ...fresh(slug));
    expect(post.xml).toContain('EncryptedAssertion');
    expect(post.xml).not.toContain(`user@${slug}.test`);
    const acs = await postToAcs(post);
    expect(acs.status, acs.text).toBe(302);
    const s = await session(acs.cookies.gatehouse_session!);
    expect(s.user.email).toBe(`user@${slug}.test`);
    expect(s.session.organizationId).toBe(orgId);
  });

  for (const [label, signing] of [
    ['only the assertion is signed', { signResponse: false, signAssertion: true }],
    ['only the response is signed', { signResponse: true, signAssertion: false }],
  ] as const) {
    it(`accepts a SimpleSAMLphp response where ${label}`, async () => {
      const { orgId, slug } = await newOrg();
      const conn = await configureSaml(orgId, pinnedBody());
      idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl, ...signing }]);
      const post = await idp.login(loginStart(await gh.request('GET', `/api/auth/sso/${slug}/login`)), ...fresh(slug));
      const sigs = checkSignatures(post.xml, idp.certificatePem);
      expect(sigs.map((x) => x.element)).toEqual([signing.signResponse ? 'Response' : 'Assertion']);
      const acs = await postToAcs(post);
      expect(acs.status, acs.text).toBe(302);
      expect((await session(acs.cookies.gatehouse_session!)).session.organizationId).toBe(orgId);
    });
  }

  it('rejects a response with neither the response nor the assertion signed (signature_missing)', async () => {
    const { orgId, slug } = await newOrg();
    const conn = await configureSaml(orgId, pinnedBody());
    idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl, signResponse: false, signAssertion: false }]);
    const post = await idp.login(loginStart(await gh.request('GET', `/api/auth/sso/${slug}/login`)), ...fresh(slug));
    expect(post.xml).not.toContain('Signature');
    const acs = await postToAcs(post, 'application/json');
    expect(acs.status, acs.text).toBe(400);
    expect(acs.body.details.reason).toBe('signature_missing');
    expect(acs.cookies.gatehouse_session ?? '').toBe('');
  });

  it('rejects an IdP response signed with RSA-SHA1 and SHA-1 digests (algorithm_refused)', async () => {
    const { orgId, slug } = await newOrg();
    const conn = await configureSaml(orgId, pinnedBody());
    idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl, signatureAlgorithm: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1' }]);
    const post = await idp.login(loginStart(await gh.request('GET', `/api/auth/sso/${slug}/login`)), ...fresh(slug));
    expect(post.xml).toContain('http://www.w3.org/2000/09/xmldsig#rsa-sha1');
    const acs = await postToAcs(post, 'application/json');
    expect(acs.status, acs.text).toBe(400);
    expect(acs.body.details.reason).toBe('algorithm_refused');
    expect(acs.cookies.gatehouse_session ?? '').toBe('');
  });

  it('rejects a replayed SimpleSAMLphp response: the same POST a second time (replayed)', async () => {
    const { orgId, slug } = await newOrg();
    const conn = await configureSaml(orgId, pinnedBody());
    idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl }]);
    const post = await idp.login(loginStart(await gh.request('GET', `/api/auth/sso/${slug}/login`)), ...fresh(slug));
    const first = await postToAcs(post);
    expect(first.status, first.text).toBe(302);
    const again = await postToAcs(post, 'application/json');
    expect(again.status, again.text).toBe(400);
    expect(again.body.code).toBe('SSO_LOGIN_FAILED');
    expect(again.body.details.reason).toBe('replayed');
    expect(again.cookies.gatehouse_session ?? '').toBe('');
  });

  it('default mapping: email from an emailAddress NameID when the IdP sends no email attribute', async () => {
    const { orgId, slug } = await newOrg();
    const conn = await configureSaml(orgId, pinnedBody());
    idp.setUsers([{ username: 'carol', password: 'carol-pass', attributes: { uid: 'carol-0003', mailbox: 'carol@acme.test', displayName: 'Carol Chen' } }]);
    idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl, nameIdFormat: NAMEID_EMAIL, nameIdAttribute: 'mailbox' }]);
    const post = await idp.login(loginStart(await gh.request('GET', `/api/auth/sso/${slug}/login`)), 'carol', 'carol-pass');
    expect(post.xml).toMatch(/<saml:NameID[^>]*emailAddress[^>]*>carol@acme\.test</);
    const acs = await postToAcs(post);
    expect(acs.status, acs.text).toBe(302);
    expect((await session(acs.cookies.gatehouse_session!)).user).toMatchObject({ email: 'carol@acme.test', name: 'Carol Chen' });
  });

  it('default mapping: urn:oid attribute names (uri NameFormat, as LDAP-backed IdPs send them)', async () => {
    const { orgId, slug } = await newOrg();
    const conn = await configureSaml(orgId, pinnedBody());
    idp.setUsers([
      {
        username: 'dave',
        password: 'dave-pass',
        attributes: { uid: 'dave-0004', 'urn:oid:0.9.2342.19200300.100.1.3': 'dave@acme.test', 'urn:oid:2.5.4.42': 'Dave', 'urn:oid:2.5.4.4': 'Dunn' },
      },
    ]);
    idp.setSps([{ entityId: conn.spEntityId, acsUrl: conn.acsUrl, extra: { 'attributes.NameFormat': 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri' } }]);
    const post = await idp.login(loginStart(await gh.request('GET', `/api/auth/sso/${slug}/login`)), 'dave', 'dave-pass');
    expect(post.xml).toContain('Name="urn:oid:0.9.2342.19200300.100.1.3" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri"');
    const acs = await postToAcs(post);
    expect(acs.status, acs.text).toBe(302);
    expect((await session(acs.cookies.gatehouse_session!)).user.email).toBe('dave@acme.test');
    // First and last name were read too: the identity's cached claims hold them.
    const identities = await gh.request('GET', `/api/user/organizations/${orgId}/sso/identities`, { cookie: ownerCookie });
    const dave = JSON.stringify((identities.body.data.items as unknown[]).filter((i) => JSON.stringify(i).includes('dave-0004')));
    expect(dave).toContain('Dave');
    expect(dave).toContain('Dunn');
  });
});
