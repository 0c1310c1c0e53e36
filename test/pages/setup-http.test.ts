/**
 * The setup-link pages over HTTP (no browser): headers, the binding cookie, refusal statuses,
 * scope, escaping, no inline code, and the token appearing nowhere but the page's own URL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_CSP } from '../../src/pages/layout.js';
import { IDP_IDS } from '../../src/pages/setup/idps/types.js';
import { createOrg, createTestGatehouse, type TestGatehouse, type TestUser } from '../helpers/app.js';

let t: TestGatehouse;
let owner: TestUser;
let orgId: string;

beforeAll(async () => {
  t = await createTestGatehouse();
  owner = await t.signUp('owner@umbrella.test');
  orgId = await createOrg(t, owner, 'Umbrella <Corp> & "Sons"', 'umbrella');
});
afterAll(async () => {
  await t.destroy();
});

async function newLink(scope: string[]): Promise<{ id: string; url: string; path: string; token: string }> {
  const res = await t.request('POST', `/api/user/organizations/${orgId}/setup-links`, { as: owner, body: { scope } });
  expect(res.status).toBe(201);
  const path = new URL(res.body.data.url).pathname;
  return { ...res.body.data, path, token: path.split('/').pop()! };
}

/** Open the link as the browser holding `cookies` (binds nothing). */
const open = (path: string, cookies: Record<string, string> = {}) => t.request('GET', path, { cookies });
/** "Start setup": POST to the page's URL, which binds the link to the browser that sends it. */
const start = (path: string, cookies: Record<string, string> = {}, origin?: string | null) => t.request('POST', path, { cookies, ...(origin === undefined ? {} : { origin }) });
/** Start the link and return the browser's cookie jar. */
async function bind(link: { id: string; path: string }): Promise<Record<string, string>> {
  const res = await start(link.path);
  expect(res.status).toBe(303);
  const name = `gatehouse_setup_${link.id}`;
  expect(res.cookies[name]).toBeTruthy();
  return { [name]: res.cookies[name]! };
}

function expectStrictPage(res: { headers: Headers; text: string }) {
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  expect(res.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
  expect(res.text).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
}

describe('setup pages over HTTP', () => {
  it('opening the URL binds nothing (a mail scanner may fetch it); Start setup does, with an HttpOnly, SameSite=Strict cookie, and 303s back to the same URL', async () => {
    const link = await newLink(['sso', 'domains']);
    // A scanner or chat preview: the start page, no cookie, and the link stays free.
    for (let i = 0; i < 2; i++) {
      const preview = await open(`${link.path}?idp=okta`);
      expect(preview.status).toBe(200);
      expectStrictPage(preview);
      expect(preview.text).toContain('id="start-form" method="post"');
      expect(preview.text).not.toMatch(/<form[^>]*\saction=/);
      expect(preview.text).not.toContain(link.token);
      expect(preview.text).not.toContain('data-link-id');
      expect(Object.keys(preview.cookies)).toEqual([]);
    }
    const listed = await t.request('GET', `/api/user/organizations/${orgId}/setup-links`, { as: owner });
    expect(listed.body.data.items.find((l: { id: string }) => l.id === link.id).boundAt).toBeNull();

    // Started from another site: refused, nothing bound.
    const forged = await start(`${link.path}?idp=okta`, {}, 'https://evil.example');
    expect(forged.status).toBe(403);
    expect(forged.text).toContain('Setup not started');
    expect(Object.keys(forged.cookies)).toEqual([]);
    // A cross-site page with its own no-referrer policy (Origin: null): the browser's Sec-Fetch-Site gives it away.
    const nullOrigin = await t.request('POST', link.path, { origin: 'null', headers: { 'sec-fetch-site': 'cross-site' } });
    expect(nullOrigin.status).toBe(403);
    expect(Object.keys(nullOrigin.cookies)).toEqual([]);

    const first = await start(`${link.path}?idp=okta`);
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe(`${link.path}?idp=okta`);
    expect(first.headers.get('referrer-policy')).toBe('no-referrer');
    expect(first.headers.get('cache-control')).toBe('no-store');
    const name = `gatehouse_setup_${link.id}`;
    expect(first.cookies[name]).toBeTruthy();
    const setCookie = first.headers.getSetCookie().find((c) => c.startsWith(`${name}=`))!;
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    expect(setCookie).toMatch(/Path=\//);
    const page = await open(link.path, { [name]: first.cookies[name]! });
    expect(page.status).toBe(200);
    expect(page.text).toContain(`data-link-id="${link.id}"`);
    expect(page.text).toContain(`data-organization-id="${orgId}"`);
    expect(page.text).not.toContain(link.token);
    // The organization's name is escaped.
    expect(page.text).toContain('Umbrella &lt;Corp&gt; &amp; &quot;Sons&quot;');
    expect(page.text).not.toContain('<Corp>');
    // Starting again from the same browser changes nothing; from another, it is refused.
    const again = await start(link.path, { [name]: first.cookies[name]! });
    expect(again.status).toBe(303);
    expect(again.cookies[name]).toBeUndefined();
    expect((await start(link.path)).status).toBe(403);

    const jar = { [name]: first.cookies[name]! };
    for (const query of ['', ...IDP_IDS.map((id) => `?idp=${id}`), '?step=domains']) {
      const res = await open(`${link.path}${query}`, jar);
      expect(res.status, query).toBe(200);
      expectStrictPage(res);
      expect(res.text, query).not.toContain(link.token);
      expect(res.cookies[name], 'bound already: no new cookie').toBeUndefined();
    }
    // Inputs have no name: a script-less submit cannot put a value in the URL.
    const okta = await open(`${link.path}?idp=okta`, jar);
    expect(okta.text).not.toMatch(/<(input|textarea)[^>]*\sname=/);
    expect(okta.text).toContain('<input id="f-clientSecret" data-field="clientSecret" type="password"');
    // An IdP the wizard does not know: the choice page again, 404.
    expect((await open(`${link.path}?idp=ping`, jar)).status).toBe(404);
    // Another browser (no cookie, or someone else's): 403.
    expect((await open(link.path)).status).toBe(403);
    expect((await open(link.path, { [name]: `${link.id}.not-the-secret` })).status).toBe(403);
  });

  it('refusals: unknown 404, revoked 410, expired 410, a part outside the scope 403', async () => {
    expect((await open('/setup/gsl_nothing-here')).status).toBe(404);
    expect((await open('/setup/x')).status).toBe(404);

    const revoked = await newLink(['sso']);
    const jar = await bind(revoked);
    const outside = await open(`${revoked.path}?step=domains`, jar);
    expect(outside.status).toBe(403);
    expect(outside.text).toContain('Not part of this setup link');
    expect((await t.request('DELETE', `/api/user/organizations/${orgId}/setup-links/${revoked.id}`, { as: owner })).status).toBe(200);
    const gone = await open(revoked.path, jar);
    expect(gone.status).toBe(410);
    expectStrictPage(gone);
    expect(gone.text).toContain('This setup link was withdrawn');
    expect(gone.text).not.toContain('data-link-id');
    expect((await start(revoked.path, jar)).status).toBe(410);

    const domainsOnly = await newLink(['domains']);
    const cookie = await bind(domainsOnly);
    const d = await open(domainsOnly.path, cookie);
    expect(d.status).toBe(200);
    expect(d.text).toContain('data-view="domains"');
    expect(d.text).not.toContain('?idp=');
    expect((await open(`${domainsOnly.path}?idp=okta`, cookie)).status).toBe(403);

    t.clock.advance(25 * 3600_000);
    const expired = await open(domainsOnly.path, cookie);
    expect(expired.status).toBe(410);
    expect(expired.text).toContain('This setup link has expired');
  });

  it('serves setup.js and setup.css', async () => {
    const js = await t.request('GET', '/assets/setup.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toContain('text/javascript');
    expect(js.text).toContain("'x-setup-link'");
    expect(js.text).not.toMatch(/\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|eval\(|new Function/);
    const css = await t.request('GET', '/assets/setup.css');
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toContain('text/css');
  });
});
