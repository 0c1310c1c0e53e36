import { html } from 'hono/html';

/** The page a browser lands on when an SSO login fails: what happened, in words an admin can act on. */
export function ssoErrorPage(input: { title: string; message: string; reason: string; requestId: string; retryUrl?: string | null }) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${input.title} — Gatehouse</title>
<style>
body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.5}
.box{border:1px solid #d0d0d0;border-radius:8px;padding:1.5rem}
h1{font-size:1.4rem;margin-top:0}
code{background:#f3f3f3;padding:.1rem .3rem;border-radius:4px}
.meta{color:#555;font-size:.9rem}
</style>
</head>
<body>
<main class="box" role="main">
<h1>${input.title}</h1>
<p role="alert">${input.message}</p>
<p class="meta">If you need help, give your administrator this reference: reason <code>${input.reason}</code>, request <code>${input.requestId}</code>.</p>
${input.retryUrl ? html`<p><a href="${input.retryUrl}">Try signing in again</a></p>` : ''}
</main>
</body>
</html>`;
}
