import { html } from 'hono/html';
import type { Html } from './idps/types.js';

export const SETUP_SCRIPT = '/assets/setup.js';

/** What the wizard's script needs to know about the link (never the token). */
export interface SetupShell {
  /** The slug is shown beside the free-text name: another organization may call itself the same. */
  organization: { id: string; name: string; slug: string };
  /** The email of the owner or admin who created the link, so the visitor can tell who asked. */
  sender?: string | null;
  link: { id: string; scope: readonly ('sso' | 'domains')[]; expiresAt: string };
}

/**
 * The frame of every setup-wizard page: the hosted pages' stylesheet plus setup.css, one module
 * script, the two live regions, and the link's facts as data attributes for /assets/setup.js.
 * No referrer ever leaves a page whose URL holds the token.
 */
export function setupLayout(input: { title: string; view: 'choice' | 'guide' | 'domains'; shell: SetupShell; body: Html; data?: Record<string, string> }) {
  const { shell } = input;
  const extra = Object.entries(input.data ?? {}).map(([k, v]) => html` data-${k}="${v}"`);
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<title>${input.title} — ${shell.organization.name} — Gatehouse</title>
<link rel="stylesheet" href="/assets/gatehouse.css">
<link rel="stylesheet" href="/assets/setup.css">
<script type="module" src="${SETUP_SCRIPT}"></script>
</head>
<body class="setup">
<header class="setup-header">
<p class="setup-brand">Gatehouse setup for <strong id="org-name">${shell.organization.name}</strong></p>
${nav(shell, input.view)}
</header>
<main id="setup-page" data-view="${input.view}" data-organization-id="${shell.organization.id}" data-link-id="${shell.link.id}" data-scope="${shell.link.scope.join(' ')}" data-expires-at="${shell.link.expiresAt}"${extra}>
<h1>${input.title}</h1>
<div id="error" class="error" role="alert" aria-live="assertive" tabindex="-1"></div>
<div id="status" class="status" role="status" aria-live="polite" tabindex="-1"></div>
${input.body}
<p class="meta foot" id="link-expiry">This setup link can change only ${scopeWords(shell.link.scope)} of ${shell.organization.name}, and stops working at <time datetime="${shell.link.expiresAt}">${humanTime(shell.link.expiresAt)}</time>. Every change made through it is recorded in the organization's audit log.</p>
<p id="copy-status" class="visually-hidden" role="status" aria-live="polite"></p>
</main>
</body>
</html>`;
}

function nav(shell: SetupShell, view: string) {
  const items: Array<{ href: string; text: string; current: boolean }> = [];
  if (shell.link.scope.includes('sso')) items.push({ href: '?', text: 'Single sign-on', current: view === 'choice' || view === 'guide' });
  if (shell.link.scope.includes('domains')) items.push({ href: '?step=domains', text: 'Domains', current: view === 'domains' });
  if (items.length < 2) return '';
  return html`<nav aria-label="Setup sections"><ul class="setup-nav">${items.map((i) => html`<li><a href="${i.href}"${i.current ? html` aria-current="page"` : ''}>${i.text}</a></li>`)}</ul></nav>`;
}

export function scopeWords(scope: readonly string[]): string {
  const words = scope.map((s) => (s === 'sso' ? 'the single sign-on connection' : 'the email domains'));
  return words.join(' and ');
}

/** `2026-12-03 16:00 UTC`: the expiry, readable without a script. */
export function humanTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}
