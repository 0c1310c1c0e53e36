import { html } from 'hono/html';
import { apiButton, apiForm, can, fmtTime, nextPageLink, orgApi, sectionHref, type Html } from './frame.js';
import { cursorOf, type SectionInput, type SectionPage } from './section.js';

function createForm(orgId: string, mayConfigureSso: boolean): Html {
  return apiForm({
    id: 'setup-link-form',
    api: `POST ${orgApi(orgId, '/setup-links')}`,
    label: 'Create a setup link',
    submit: 'Create setup link',
    after: 'setup-link',
    body: html`<fieldset class="group" aria-describedby="scope-error"><legend>What the link may do</legend>
${mayConfigureSso ? html`<div class="field check"><input type="checkbox" id="scope-sso" name="scope" value="sso" data-type="set" checked><label for="scope-sso">Configure SSO</label></div>` : html`<p class="hint">Only an owner can create a link that configures SSO.</p>`}
<div class="field check"><input type="checkbox" id="scope-domains" name="scope" value="domains" data-type="set" checked><label for="scope-domains">Add and verify domains</label></div>
<span class="field-error" id="scope-error"></span>
</fieldset>
<div class="field"><label for="setup-hours">Valid for (hours)</label><input id="setup-hours" name="expiresInHours" type="number" min="1" max="168" value="24" data-type="int" aria-describedby="setup-hours-hint setup-hours-error"><span class="hint" id="setup-hours-hint">1 to 168 (a week).</span><span class="field-error" id="setup-hours-error"></span></div>`,
  });
}

/** Setup links section (owner, admin): a link for the customer's IT admin to configure SSO and domains without an account. */
export async function setupLinksSection({ services, ctx, org, query }: SectionInput): Promise<SectionPage> {
  const intro = html`<p>A setup link lets your IT administrator configure single sign-on and/or verify domains without an account here. It works for the first browser that opens it, until it expires or you revoke it; everything done through it is in the audit log.</p>`;
  const page = await services.setupLinks.list(ctx, org.id, { limit: 50, cursor: cursorOf(query) });
  const rows = page.items.map((l) => html`<tr>
<th scope="row">${l.scope.join(', ')}</th><td><span class="badge ${l.status}">${l.status}</span></td><td>${fmtTime(l.createdAt)}</td><td>${fmtTime(l.expiresAt)}</td><td>${l.boundAt ? `opened ${fmtTime(l.boundAt)}` : 'not opened yet'}</td>
<td>${l.status === 'active' ? apiButton({ api: `DELETE ${orgApi(org.id, `/setup-links/${l.id}`)}`, label: 'Revoke', className: 'danger', accessibleName: `Revoke the setup link created ${fmtTime(l.createdAt)}`, confirm: 'Revoke this setup link? It stops working at once.', flash: 'Setup link revoked.' }) : '—'}</td>
</tr>`);
  return {
    title: 'Setup links',
    body: html`${intro}
<section class="card" aria-labelledby="new-link-heading"><h2 id="new-link-heading">Create a setup link</h2>${createForm(org.id, can(org, 'sso:manage'))}</section>
<section class="card" aria-labelledby="links-heading"><h2 id="links-heading">Setup links</h2>
${rows.length
      ? html`<table><caption>Links of ${org.name}</caption><thead><tr><th scope="col">Scope</th><th scope="col">Status</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Opened</th><th scope="col">Actions</th></tr></thead><tbody>${rows}</tbody></table>`
      : html`<p>No setup link yet.</p>`}
${nextPageLink(sectionHref(org.id, 'setup-links'), {}, page.nextCursor)}
</section>`,
  };
}
