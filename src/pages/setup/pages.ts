import { html } from 'hono/html';
import { layout } from '../layout.js';
import { humanTime, scopeWords, setupLayout, type SetupShell } from './frame.js';
import { GUIDES } from './idps/index.js';

/** `/setup/{token}` with SSO in scope: which IdP the organization uses (links to `?idp=…`). */
export function choicePage(shell: SetupShell) {
  const body = html`
<p class="lead">${shell.organization.name} asked you to connect its single sign-on. Choose the identity provider your organization uses; the next page shows its own admin-console steps and the values to paste, then you test and save.</p>
<section aria-labelledby="idp-heading">
<h2 id="idp-heading">Your identity provider</h2>
<ul class="idp-list">
${Object.values(GUIDES).map((g) => html`<li><a class="idp-choice" id="idp-${g.id}" href="?idp=${g.id}"><span class="idp-name">${g.name}</span><span class="idp-summary">${g.summary}</span></a></li>`)}
</ul>
</section>
${shell.link.scope.includes('domains') ? html`<p>This link can also <a href="?step=domains" id="domains-link">add and verify your email domains</a>.</p>` : ''}`;
  return setupLayout({ title: 'Set up single sign-on', view: 'choice', shell, body });
}

/** `/setup/{token}?step=domains`: add a domain, publish its TXT record, verify (setup.js). */
export function domainsPage(shell: SetupShell) {
  const body = html`
<p class="lead">Prove that ${shell.organization.name} owns its email domains: add each domain, publish the TXT record Gatehouse shows at your DNS provider, then select Verify. DNS changes usually show up within minutes.</p>
<section aria-labelledby="add-heading">
<h2 id="add-heading">Add a domain</h2>
<form id="domain-form" novalidate aria-labelledby="add-heading">
<div class="field">
<label for="f-domain">Domain</label>
<input id="f-domain" data-field="domain" type="text" inputmode="url" spellcheck="false" autocapitalize="none" autocomplete="off" required aria-required="true" maxlength="253" placeholder="example.com" aria-describedby="h-domain e-domain">
<span class="hint" id="h-domain">The part after @ in your people's email addresses, such as <code>example.com</code>.</span>
<span class="field-error" id="e-domain"></span>
</div>
<button type="submit" id="add-domain">Add domain</button>
</form>
<noscript><p><strong>Note:</strong> this setup needs JavaScript. Turn it on and reload this page.</p></noscript>
</section>
<section aria-labelledby="list-heading">
<h2 id="list-heading">Your domains</h2>
<p id="domains-empty">Loading…</p>
<ul id="domain-list" class="domain-list"></ul>
</section>`;
  return setupLayout({ title: 'Verify your domains', view: 'domains', shell, body });
}

/**
 * `GET /setup/{token}` of a link no browser holds yet: what it is for, and a button that starts it
 * (`POST` to this same URL binds the link to this browser). Opening the URL binds nothing, so a mail
 * scanner or chat preview that fetches it cannot take the link. The form has no action: it posts
 * to the page's own URL, so the token is written nowhere else.
 */
export function startPage(shell: SetupShell) {
  const parts = shell.link.scope.map((s) => (s === 'sso' ? 'connect its identity provider (single sign-on)' : 'verify its email domains'));
  return layout({
    title: `Set up ${shell.organization.name}`,
    pageId: 'setup-start-page',
    returnTo: '/',
    step: 'start',
    referrer: 'no-referrer',
    body: html`<p id="start-text"><strong>${shell.organization.name}</strong> asked you to ${parts.join(' and ')} with Gatehouse. You don't need an account.</p>
<p class="meta">This link can change only ${scopeWords(shell.link.scope)} of ${shell.organization.name}, until ${humanTime(shell.link.expiresAt)}. Every change made through it is recorded in the organization's audit log.</p>
<dl class="meta" id="link-origin"><dt>Organization</dt><dd>${shell.organization.name} (<code>${shell.organization.slug}</code>)</dd>${shell.sender ? html`<dt>Sent by</dt><dd>${shell.sender}</dd>` : ''}</dl>
<p>Check that you expected this link from this person before you enter your identity provider's details. Once you start, the link works <strong>only in this browser</strong>: use the browser you will do the whole setup in.</p>
<form id="start-form" method="post">
<button type="submit" id="start" class="primary-action">Start setup</button>
</form>`,
  });
}

export type Refusal = 'unknown' | 'expired' | 'revoked' | 'bound_elsewhere' | 'out_of_scope' | 'cross_site';

const REFUSALS: Record<Refusal, { status: 403 | 404 | 410; title: string; text: string }> = {
  unknown: { status: 404, title: 'Setup link not found', text: 'This setup link is not valid. Check that you opened the whole link, or ask the person who sent it for a new one.' },
  expired: { status: 410, title: 'This setup link has expired', text: 'Setup links work for a limited time. Ask the person who sent it for a new one.' },
  revoked: { status: 410, title: 'This setup link was withdrawn', text: 'The organization withdrew this setup link. Ask the person who sent it for a new one.' },
  bound_elsewhere: { status: 403, title: 'This setup link is in use in another browser', text: 'A setup link works only in the browser that opened it first. This link is already in use in another browser; open it there, or ask for a new one.' },
  cross_site: { status: 403, title: 'Setup not started', text: 'The request to start this setup came from another site, so Gatehouse did not start it. Open the setup link itself and select Start setup.' },
  out_of_scope: { status: 403, title: 'Not part of this setup link', text: 'This setup link does not cover that part of the setup. Ask the person who sent it for a link that includes it.' },
};

export const refusalStatus = (r: Refusal) => REFUSALS[r].status;

/** A setup link that cannot be used (or a part it does not cover): what happened and what to do. */
export function refusalPage(reason: Refusal) {
  const r = REFUSALS[reason];
  return layout({
    title: r.title,
    pageId: 'setup-refused-page',
    returnTo: '/',
    step: reason,
    referrer: 'no-referrer',
    serverError: html`<p>${r.text}</p>`,
    body: html`<p class="meta">Nothing was changed.</p>`,
  });
}
