import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

/** Small server-rendered pages a browser lands on from an emailed link (same style as the SSO error page). */

export const PAGE_STYLE = `body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.5}
.box{border:1px solid #d0d0d0;border-radius:8px;padding:1.5rem}
h1{font-size:1.4rem;margin-top:0}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input{display:block;width:100%;box-sizing:border-box;font:inherit;padding:.5rem;border:1px solid #767676;border-radius:4px}
button{margin-top:1rem;font:inherit;font-weight:600;padding:.5rem 1rem;border-radius:4px;border:1px solid #1f4fbf;background:#1f4fbf;color:#fff;cursor:pointer}
button[disabled]{opacity:.6}
.error:empty,.status:empty{display:none}
.error{border:2px solid #b00020;background:#fdecee;padding:.75rem 1rem;border-radius:4px}
.status{border:2px solid #1d6b2f;background:#edf7ef;padding:.75rem 1rem;border-radius:4px}
.meta{color:#555;font-size:.9rem}`;

/** Content-Security-Policy of these pages: no inline script, scripts and requests only to this origin. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

export function layout(title: string, body: HtmlEscapedString | Promise<HtmlEscapedString>, script?: string) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} — Gatehouse</title>
<style>${PAGE_STYLE}</style>
${script ? html`<script type="module" src="${script}"></script>` : ''}
</head>
<body>
<main class="box" role="main">
${body}
</main>
</body>
</html>`;
}

/** An emailed link that is unknown, used or expired (or refused by policy): say so and offer the way back. */
export function linkProblemPage(input: { title: string; message: string; action?: { href: string; text: string } | null; requestId: string }) {
  const action = input.action ?? { href: '/sign-in', text: 'Go to sign-in' };
  return layout(
    input.title,
    html`<h1>${input.title}</h1>
<p role="alert">${input.message}</p>
<p><a href="${action.href}">${action.text}</a></p>
<p class="meta">Reference: request <code>${input.requestId}</code>.</p>`,
  );
}

/** Body of the 302 after a verified email (shown only by clients that do not follow redirects). */
export function emailVerifiedPage(next: string) {
  return layout(
    'Email address verified',
    html`<h1>Email address verified</h1>
<p role="status">Thank you: your email address is verified.</p>
<p><a href="${next}">Continue</a></p>`,
  );
}
