import { html } from 'hono/html';
import { apiButton, fmtTime, nextPageLink, orgApi, sectionHref } from './frame.js';
import { cursorOf, type SectionInput, type SectionPage } from './section.js';

/** SSO identities section (owner, admin): who is linked to which IdP subject, the cached claims, the IdP token status (never a token), Unlink. */
export async function identitiesSection({ services, ctx, org, query }: SectionInput): Promise<SectionPage> {
  const page = await services.identities.list(ctx, org.id, { limit: 50, cursor: cursorOf(query) });
  const rows = page.items.map((i) => {
    const t = i.idpTokens;
    return html`<li class="card identity-card">
<h3>${i.user.name ?? i.user.email} <span class="meta">${i.user.email}</span></h3>
<dl class="facts">
<dt>Connection</dt><dd>${i.connection.protocol.toUpperCase()} · ${i.connection.provider}${i.connection.active ? '' : ' (replaced)'}</dd>
<dt>Subject</dt><dd><code>${i.subject}</code></dd>
<dt>Last login</dt><dd>${fmtTime(i.lastLoginAt)}</dd>
<dt>Linked</dt><dd>${fmtTime(i.createdAt)}</dd>
<dt>IdP tokens</dt><dd>${t
      ? html`<span class="badge ${t.status}">${t.status}</span> · access token expires ${fmtTime(t.accessTokenExpiresAt)}${t.scopes.length ? html` · scopes <code>${t.scopes.join(' ')}</code>` : ''}${t.lastRefreshError ? html`<br><span class="warn">Last refresh error: ${t.lastRefreshError}</span>` : ''}`
      : 'none kept'}</dd>
</dl>
<details><summary>Claims of the last login</summary><pre><code>${JSON.stringify(i.claims, null, 2)}</code></pre></details>
<div class="actions">${apiButton({ api: `DELETE ${orgApi(org.id, `/sso/identities/${i.id}`)}`, label: 'Unlink', className: 'danger', accessibleName: `Unlink ${i.user.email} (${i.subject})`, confirm: `Unlink ${i.user.email}? The sessions this identity created end.`, flash: 'Identity unlinked.' })}</div>
</li>`;
  });
  return {
    title: 'SSO identities',
    body: html`<section aria-labelledby="ids-heading"><h2 id="ids-heading">Linked IdP identities</h2>
${rows.length ? html`<ul class="cards">${rows}</ul>` : html`<p>Nobody has signed in through SSO yet.</p>`}
${nextPageLink(sectionHref(org.id, 'identities'), {}, page.nextCursor)}
</section>`,
  };
}
