import type { Context } from 'hono';
import { html } from 'hono/html';
import { sendPage } from './layout.js';

/**
 * The SAML HTTP-POST binding's page: a form to the IdP's SSO URL, submitted by our one external
 * script (a button too, for browsers without script). Its policy allows that script, and a form
 * that may go only to the IdP's origin.
 */
export function sendSamlPostPage(c: Context, url: string, fields: Record<string, string>) {
  const page = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signing in…</title><script src="/assets/auto-post.js" defer></script></head>
<body><form method="post" action="${url}">${Object.entries(fields).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}<noscript><p>Continue to your identity provider.</p></noscript><button type="submit">Continue</button></form></body></html>`;
  return sendPage(c, page, 200, `default-src 'none'; script-src 'self'; form-action ${new URL(url).origin}; frame-ancestors 'none'; base-uri 'none'`);
}
