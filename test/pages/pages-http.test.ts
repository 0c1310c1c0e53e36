/** The hosted pages over HTTP (no browser): headers, returnTo refusal, escaping, assets, server-side steps. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestGatehouse, type TestGatehouse } from '../helpers/app.js';
import { isLoopbackUrl } from '../helpers/browser.js';
import { PAGE_CSP } from '../../src/pages/layout.js';

let t: TestGatehouse;

beforeAll(async () => {
  t = await createTestGatehouse({ env: { GATEHOUSE_TRUSTED_ORIGINS: 'https://app.example.test' } });
});
afterAll(async () => {
  await t.destroy();
});

const page = (path: string, cookie?: string) => t.request('GET', path, cookie ? { as: { cookie } } : {});

describe('hosted pages: headers', () => {
  it.each(['/sign-in', '/sign-up'])('%s is HTML with a strict CSP (script-src self, no inline code), never cached, not frameable', async (path) => {
    const res = await page(path);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(PAGE_CSP).toContain("script-src 'self'");
    expect(PAGE_CSP).toContain("frame-ancestors 'none'");
    expect(PAGE_CSP).not.toContain('unsafe-inline');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    // No inline script or style for the CSP to have to allow.
    expect(res.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(res.text).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
  });

  it('serves the scripts and stylesheet with their types, an ETag and 304 on revalidation', async () => {
    for (const [file, type] of [['sign-in.js', 'text/javascript'], ['sign-up.js', 'text/javascript'], ['common.js', 'text/javascript'], ['gatehouse.css', 'text/css']] as const) {
      const res = await page(`/assets/${file}`);
      expect(res.status, file).toBe(200);
      expect(res.headers.get('content-type')).toContain(type);
      const etag = res.headers.get('etag')!;
      expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
      const again = await t.request('GET', `/assets/${file}`, { headers: { 'if-none-match': etag } });
      expect(again.status).toBe(304);
    }
    expect((await page('/assets/nope.js')).status).toBe(404);
    expect((await page('/assets/..%2Fpages%2Froutes.ts')).status).toBe(404);
    expect((await page('/assets/..%2F..%2Fpackage.json')).status).toBe(404);
  });
});

describe('hosted pages: returnTo (SPEC §11)', () => {
  it.each([
    ['an absolute URL on an untrusted origin', 'https://evil.example/steal'],
    ['a protocol-relative URL', '//evil.example/steal'],
    ['a backslash trick', '/\\evil.example'],
    ['a javascript: URL', 'javascript:alert(1)'],
    ['a trusted host on the wrong scheme', 'http://app.example.test/x'],
  ])('open redirect refused on /sign-in and /sign-up: %s answers 400 with the error and no form', async (_name, target) => {
    for (const path of ['/sign-in', '/sign-up']) {
      const res = await page(`${path}?returnTo=${encodeURIComponent(target)}`);
      expect(res.status, path).toBe(400);
      expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
      expect(res.text).toContain('role="alert"');
      expect(res.text).toContain('returnTo must be a relative path or a URL on a trusted origin');
      expect(res.text).not.toContain('<form');
      expect(res.text).not.toContain('evil.example');
    }
  });

  it('a trusted absolute returnTo and a relative one are kept as given', async () => {
    const abs = await page(`/sign-in?returnTo=${encodeURIComponent('https://app.example.test/after?x=1')}`);
    expect(abs.status).toBe(200);
    expect(abs.text).toContain('data-return-to="https://app.example.test/after?x=1"');
    const rel = await page('/sign-up?returnTo=%2Fhome');
    expect(rel.text).toContain('data-return-to="/home"');
    expect(rel.text).toContain('name="returnTo" value="/home"');
    expect((await page('/sign-in')).text).toContain('data-return-to="/"');
  });

  it('reflected XSS: returnTo, email and name are escaped in the page', async () => {
    const evil = '/x"><script>alert(1)</script>';
    const res = await page(`/sign-in?returnTo=${encodeURIComponent(evil)}&email=${encodeURIComponent('"><img src=x onerror=alert(1)>@x.test')}`);
    expect(res.text).not.toContain('<script>alert(1)');
    expect(res.text).not.toContain('<img src=x');
    expect(res.text).toContain('&quot;&gt;&lt;script&gt;');
    const up = await page(`/sign-up?name=${encodeURIComponent('<b onmouseover=alert(1)>')}`);
    expect(up.text).not.toContain('<b onmouseover');
  });
});

describe('hosted pages: server-side steps', () => {
  it('an email in the URL (the script-less email step) renders the password step; a malformed one a 400 with the error', async () => {
    const res = await page('/sign-in?email=someone%40plain.test');
    expect(res.status).toBe(200);
    expect(res.text).toContain('data-step="password"');
    expect(res.text).toContain('value="someone@plain.test"');
    // The password input has no name: a script-less submit can never put it in a URL.
    expect(res.text).toMatch(/<input id="password" type="password"(?![^>]*\bname=)[^>]*autocomplete="current-password"/);
    const bad = await page('/sign-in?email=not-an-email');
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('Enter a valid email address');
    expect(bad.text).toContain('data-step="email"');
  });

  it('a signed-in visitor goes straight to returnTo; a session waiting for MFA gets the MFA step', async () => {
    const user = await t.signUp('signed-in@plain.test');
    const res = await page('/sign-in?returnTo=%2Fdash', user.cookie);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/dash');
    await t.deps.db.updateTable('sessions').set({ mfa_state: 'pending' }).where('user_id', '=', user.id).execute();
    t.deps.sessionCache.clear(); // written around the services: the session cache cannot know
    const pending = await page('/sign-in?returnTo=%2Fdash', user.cookie);
    expect(pending.status).toBe(200);
    expect(pending.text).toContain('data-step="mfa"');
    expect(pending.text).toContain('autocomplete="one-time-code"');
    // A stale or forged cookie is just no session.
    expect((await page('/sign-in', 'gs_forged')).status).toBe(200);
  });
});

describe('browser test guard', () => {
  it('classifies only loopback URLs as allowed', () => {
    for (const ok of ['http://127.0.0.1:3000/x', 'http://localhost/x', 'http://[::1]:8080/', 'http://127.8.9.10/', 'data:text/plain,x', 'about:blank']) expect(isLoopbackUrl(ok), ok).toBe(true);
    for (const bad of ['http://example.com/', 'https://10.0.0.1/', 'http://127.0.0.1.nip.io/', 'http://[::ffff:7f00:1]/', 'http://localhost.evil.test/', 'http://169.254.169.254/', 'ws://192.168.1.1/']) expect(isLoopbackUrl(bad), bad).toBe(false);
  });
});
