import { html } from 'hono/html';
import { layout } from './layout.js';

/**
 * The page a browser lands on when an SSO login fails: what happened, in words an admin can act on.
 * Uses the shared page frame (stylesheet, no inline code). The policy is also in a `<meta>` tag
 * because the SSO routes answer with `c.html()` and may not set the Content-Security-Policy header.
 */
export function ssoErrorPage(input: { title: string; message: string; reason: string; requestId: string }) {
  return layout({
    title: input.title,
    pageId: 'sso-error-page',
    returnTo: '/',
    step: 'error',
    serverError: html`<p>${input.message}</p>`,
    body: html`<p class="meta">If you need help, give your administrator this reference: reason <code>${input.reason}</code>, request <code>${input.requestId}</code>.</p>
`,
  });
}
