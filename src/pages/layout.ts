import type { Context } from 'hono';
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/**
 * Content-Security-Policy of the hosted pages: scripts and styles only from Gatehouse itself (no
 * inline code anywhere), fetches only to Gatehouse, forms only to Gatehouse, no framing, no
 * plugins, no <base> rewriting. The SSO button is a plain link, which form-action does not govern.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/**
 * The same policy as a `<meta http-equiv>` for pages whose route does not set the header (a meta
 * policy cannot carry frame-ancestors; the header from sendPage is the real one).
 */

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/** The frame every hosted page shares: one stylesheet, one module script, the two live regions. */
export function layout(input: { title: string; pageId: string; returnTo: string; step?: string; script?: string; body: Html; serverError?: Html | null; serverStatus?: Html | null; referrer?: 'no-referrer' | 'same-origin' }) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="${input.referrer ?? 'no-referrer'}">
<title>${input.title} — Gatehouse</title>
<link rel="stylesheet" href="/assets/gatehouse.css">
${input.script ? html`<script type="module" src="${input.script}"></script>` : ''}
</head>
<body>
<main id="${input.pageId}" data-return-to="${input.returnTo}" data-step="${input.step ?? 'email'}">
<h1>${input.title}</h1>
<div id="error" class="error" role="alert" aria-live="assertive" tabindex="-1">${input.serverError ?? ''}</div>
<div id="status" class="status" role="status" aria-live="polite" tabindex="-1">${input.serverStatus ?? ''}</div>
${input.body}
</main>
</body>
</html>`;
}

/** One server-rendered error paragraph (the same shape the scripts render). */
export function errorParagraph(message: string) {
  return html`<p><strong>Error: </strong>${message}</p>`;
}

/** Answer with a page: CSP, never cached (it can carry an email address), HTML. */
export function sendPage(c: Context, page: Html, status: ContentfulStatusCode = 200, csp: string = PAGE_CSP) {
  c.header('Content-Security-Policy', csp);
  c.header('Cache-Control', 'no-store');
  return c.html(page, status);
}

/** Append returnTo to an SSO login URL (relative, from discovery or SSO_REQUIRED) unless it is the default. */
export function ssoHref(url: string, returnTo: string): string {
  if (returnTo === '/') return url;
  const u = new URL(url, 'http://gatehouse.invalid');
  if (!u.searchParams.has('returnTo')) u.searchParams.set('returnTo', returnTo);
  return u.origin === 'http://gatehouse.invalid' ? u.pathname + u.search : u.href;
}

/** `/path?returnTo=…&email=…` with only the parameters that are set (and returnTo only when not the default). */
export function pageHref(path: string, params: { returnTo?: string; email?: string | null }): string {
  const q = new URLSearchParams();
  if (params.email) q.set('email', params.email);
  if (params.returnTo && params.returnTo !== '/') q.set('returnTo', params.returnTo);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
