import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestGatehouse, type TestGatehouse } from '../../helpers/app.js';
import { IDP_KEYS, decodeRedirect, forgeResponse, postForm, responseFields } from '../../helpers/saml-forge.js';

/**
 * Login CSRF on SAML: an attacker starts a login in their own browser, signs in at the IdP as
 * themselves and posts the genuine response into the victim's browser, which would then hold the
 * attacker's session. On an https deployment the SP-initiated flow is bound to the browser that
 * started it (a SameSite=None; Secure cookie, which a cross-site POST does carry).
 */
const BASE = 'https://gatehouse.test';
const IDP_ENTITY_ID = 'https://idp.binding.example/metadata';
let t: TestGatehouse;
let acsUrl: string;
let spEntityId: string;

beforeAll(async () => {
  // The helper's requests carry Origin http://localhost:3000: trusted in addition to the https base.
  t = await createTestGatehouse({ env: { GATEHOUSE_BASE_URL: BASE, GATEHOUSE_TRUSTED_ORIGINS: 'http://localhost:3000', GATEHOUSE_ALLOW_LOOPBACK_IDPS: 'true' } });
  const owner = await t.signUp('owner@binding.example');
  const org = await t.request('POST', '/api/user/organizations', { as: owner, origin: BASE, body: { name: 'Binding', slug: 'binding' } });
  expect(org.status, org.text).toBe(201);
  const put = await t.request('PUT', `/api/user/organizations/${org.body.data.id}/settings/sso`, {
    as: owner,
    origin: BASE,
    body: { provider: 'saml', idpEntityId: IDP_ENTITY_ID, idpSsoUrl: 'http://127.0.0.1:9/sso', idpCertificate: IDP_KEYS.cert },
  });
  expect(put.status, put.text).toBe(200);
  ({ acsUrl, spEntityId } = put.body.data);
});
afterAll(async () => {
  await t.destroy();
});

async function startInBrowser() {
  const start = await t.request('GET', '/api/auth/sso/binding/login');
  expect(start.status).toBe(302);
  const cookie = start.headers.getSetCookie().find((c) => c.startsWith('gatehouse_saml_browser='))!;
  expect(cookie).toMatch(/HttpOnly/i);
  expect(cookie).toMatch(/SameSite=None/i);
  expect(cookie).toMatch(/Secure/i);
  const request = decodeRedirect(start.headers.get('location')!);
  const xml = forgeResponse(responseFields({ acsUrl, spEntityId, idpEntityId: IDP_ENTITY_ID, inResponseTo: request.id, now: t.clock.now(), email: 'mallory@binding.test' }));
  return { binding: start.cookies.gatehouse_saml_browser!, body: postForm(xml, request.relayState) };
}

const post = (body: string, cookies: Record<string, string>) =>
  t.request('POST', '/api/auth/sso/binding/saml/acs', {
    rawBody: body,
    origin: 'https://idp.binding.example',
    cookies,
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
  });

it("refuses a genuine SP-initiated response posted into a browser that did not start the login (login CSRF)", async () => {
  const attackers = await startInBrowser();
  const victim = await post(attackers.body, {});
  expect(victim.status).toBe(400);
  expect(victim.body.details.reason).toBe('browser_mismatch');
  expect(victim.cookie).toBeNull();
  const other = await post(attackers.body, { gatehouse_saml_browser: 'x'.repeat(32) });
  expect(other.body.details.reason).toBe('browser_mismatch');
});

it('a second login started in the same browser keeps its binding, so the first response still works (two tabs)', async () => {
  const first = await startInBrowser();
  const second = await t.request('GET', '/api/auth/sso/binding/login', { cookies: { gatehouse_saml_browser: first.binding } });
  expect(second.cookies.gatehouse_saml_browser).toBe(first.binding);
  const res = await post(first.body, { gatehouse_saml_browser: first.binding });
  expect(res.status, res.text).toBe(302);
});

it('accepts the response in the browser that started the login', async () => {
  const mine = await startInBrowser();
  const res = await post(mine.body, { gatehouse_saml_browser: mine.binding });
  expect(res.status, res.text).toBe(302);
  expect(res.cookie).toBeTruthy();
});
