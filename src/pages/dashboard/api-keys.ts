import { html } from 'hono/html';
import { API_KEY_SCOPES } from '../../api-keys/service.js';
import { apiButton, apiForm, field, fmtTime, nextPageLink, sectionHref, type Html } from './frame.js';
import { cursorOf, type SectionInput, type SectionPage } from './section.js';

function scopeBoxes(): Html {
  return html`<fieldset class="group"><legend>Scopes <span class="hint">(none checked: the full access of your account)</span></legend>
${API_KEY_SCOPES.map((s) => html`<div class="field check"><input type="checkbox" id="scope-${s}" name="scopes" value="${s}" data-type="set"><label for="scope-${s}">${s}</label></div>`)}
<span class="field-error" id="scopes-error"></span>
</fieldset>`;
}

/** API keys section (any member: the keys are the user's own): create (shown once), list, revoke. */
export async function apiKeysSection({ services, ctx, org, viewer, query }: SectionInput): Promise<SectionPage> {
  const page = await services.apiKeys.list(ctx, viewer.userId, { limit: 50, cursor: cursorOf(query) });
  const names = new Map(viewer.organizations.map((o) => [o.id, o.name]));
  const create = apiForm({
    id: 'api-key-form',
    api: 'POST /api/user/api-keys',
    label: 'Create an API key',
    submit: 'Create API key',
    after: 'api-key',
    body: html`${field({ name: 'name', label: 'Name', required: true, hint: 'What the key is for, e.g. "break-glass" or "CI".' })}
${scopeBoxes()}
<div class="field check"><input type="checkbox" id="pin-org" name="organizationId" value="${org.id}" data-type="value" checked aria-describedby="pin-org-hint"><label for="pin-org">Pin to ${org.name}</label><span class="hint" id="pin-org-hint">A pinned key is refused on any other organization.</span></div>
${field({ name: 'expiresAt', label: 'Expires on', type: 'date', dataType: 'date', omitEmpty: true, hint: 'Empty: never expires.' })}`,
  });
  const rows = page.items.map((k) => html`<tr>
<th scope="row">${k.name}</th><td><code>${k.prefix}…</code></td><td>${k.scopes ? k.scopes.join(', ') : 'full access'}</td>
<td>${k.organizationId ? names.get(k.organizationId) ?? k.organizationId : 'any organization'}</td>
<td>${fmtTime(k.expiresAt)}</td><td>${fmtTime(k.lastUsedAt)}</td>
<td>${apiButton({ api: `DELETE /api/user/api-keys/${k.id}`, label: 'Revoke', className: 'danger', accessibleName: `Revoke the API key ${k.name}`, confirm: `Revoke the API key "${k.name}"? Programs using it stop working.`, flash: 'API key revoked.' })}</td>
</tr>`);
  return {
    title: 'API keys',
    body: html`<section class="card" aria-labelledby="new-key-heading"><h2 id="new-key-heading">Create an API key</h2>
<p>The key is shown once, right after it is created. API keys are not subject to SSO or two-step requirements: keep one as a break-glass way in, stored safely.</p>
${create}</section>
<section class="card" aria-labelledby="keys-heading"><h2 id="keys-heading">Your API keys</h2>
${rows.length
      ? html`<table><caption>Keys of ${viewer.email}</caption><thead><tr><th scope="col">Name</th><th scope="col">Prefix</th><th scope="col">Scopes</th><th scope="col">Organization</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col">Actions</th></tr></thead><tbody>${rows}</tbody></table>`
      : html`<p>No API key yet.</p>`}
${nextPageLink(sectionHref(org.id, 'api-keys'), {}, page.nextCursor)}
</section>`,
  };
}
