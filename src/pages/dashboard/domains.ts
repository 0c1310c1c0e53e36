import { html } from 'hono/html';
import type { DomainView } from '../../domains/service.js';
import { apiButton, apiForm, checkbox, copyField, field, fmtTime, nextPageLink, orgApi, sectionHref, select, type Html } from './frame.js';
import { cursorOf, type SectionInput, type SectionPage } from './section.js';

function domainCard(orgId: string, d: DomainView): Html {
  const api = orgApi(orgId, `/domains/${d.id}`);
  const outputId = `verify-output-${d.id}`;
  return html`<li class="card domain" id="domain-${d.id}">
<h3>${d.domain} <span class="badge ${d.status}">${d.status}</span></h3>
<p class="meta">Added ${fmtTime(d.createdAt)}${d.verifiedAt ? ` · verified ${fmtTime(d.verifiedAt)}` : ''}${d.lastCheckedAt ? ` · last checked ${fmtTime(d.lastCheckedAt)}` : ''}</p>
${d.status === 'pending'
    ? html`<p>Publish this DNS TXT record at your DNS provider, then press Verify.</p>
${copyField(`TXT record name for ${d.domain}`, d.verification.name)}
${copyField(`TXT record value for ${d.domain}`, d.verification.value)}
<div class="actions">${apiButton({ api: `POST ${api}/verify`, label: 'Verify', className: 'primary', accessibleName: `Verify ${d.domain}`, after: 'domain-verify', output: outputId, flash: `${d.domain} verified.` })}</div>
<div id="${outputId}" class="form-output" aria-live="polite"></div>`
    : ''}
<details${d.status === 'verified' ? html` open` : ''}><summary>Auto-join settings for ${d.domain}</summary>
${apiForm({
    api: `PUT ${api}/settings`,
    label: `Auto-join settings for ${d.domain}`,
    submit: 'Save auto-join settings',
    flash: `Auto-join settings of ${d.domain} saved.`,
    body: html`${checkbox({ name: 'autoJoin', label: `People with a verified @${d.domain} address join automatically`, checked: d.settings.autoJoin, hint: d.status === 'verified' ? null : 'Needs a verified domain.' })}
${checkbox({ name: 'requireApproval', label: 'An admin approves each join request', checked: d.settings.requireApproval })}
${select({ name: 'role', label: 'Role on joining', options: ['member', 'admin'], value: d.settings.role })}`,
  })}
</details>
<div class="actions">${apiButton({ api: `DELETE ${api}`, label: 'Remove', className: 'danger', accessibleName: `Remove ${d.domain}`, confirm: `Remove ${d.domain}? Its verification is lost.`, flash: `${d.domain} removed.` })}</div>
</li>`;
}

/** Domains section (owner, admin): the TXT record to publish, Verify with what DNS answered, auto-join. */
export async function domainsSection({ services, ctx, org, query }: SectionInput): Promise<SectionPage> {
  const page = await services.domains.list(ctx, org.id, { limit: 50, cursor: cursorOf(query) });
  const add = apiForm({
    api: `POST ${orgApi(org.id, '/domains')}`,
    label: 'Add a domain',
    submit: 'Add domain',
    flash: 'Domain added: publish its TXT record, then verify.',
    body: field({ name: 'domain', label: 'Domain', required: true, placeholder: 'example.com', hint: 'The email domain your people use. Public mail providers (gmail.com …) cannot be claimed.' }),
  });
  return {
    title: 'Domains',
    body: html`<section aria-labelledby="add-domain-heading" class="card"><h2 id="add-domain-heading">Add a domain</h2>${add}</section>
<section aria-labelledby="domains-heading"><h2 id="domains-heading">Your domains</h2>
${page.items.length ? html`<ul class="cards">${page.items.map((d) => domainCard(org.id, d))}</ul>` : html`<p>No domain yet.</p>`}
${nextPageLink(sectionHref(org.id, 'domains'), {}, page.nextCursor)}
</section>`,
  };
}
