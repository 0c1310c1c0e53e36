import { html } from 'hono/html';
import { setupLayout, type SetupShell } from './frame.js';
import type { FieldText, GuideStep, IdpGuide, PasteValue } from './idps/types.js';

/**
 * `/setup/{token}?idp=…`: one IdP's own admin-console steps with the values to paste (filled in
 * by setup.js from GET …/settings/sso/service-provider, each with a Copy button), then the form
 * for the IdP's details with Test and Save. Inputs carry no `name`: a script-less submit can never
 * put a value (least of all the secret) into a URL.
 */
export function guidePage(shell: SetupShell, guide: IdpGuide) {
  let n = 0;
  const pasteBox = (v: PasteValue) => {
    const i = ++n;
    return html`<div class="paste">
<span class="paste-label" id="pl-${i}">${v.label}${v.optional ? html` <span class="optional">(optional)</span>` : ''}</span>
<code class="paste-value" id="pv-${i}" data-sp="${v.key}">Loading…</code>
<button type="button" class="secondary copy" data-copy-from="pv-${i}">Copy<span class="visually-hidden"> ${v.label}</span></button>
</div>`;
  };
  const step = (s: GuideStep) => html`<li class="step">
<h3>${s.title}</h3>
${s.body}
${s.values?.length ? html`<div class="paste-list">${s.values.map(pasteBox)}</div>` : ''}
</li>`;
  const body = html`
<p class="lead">Follow these steps in ${guide.console}, then enter what it gives you at the end of this page. Gatehouse tests the settings before you save them.</p>
<p><a href="?" id="change-idp">Choose a different identity provider</a></p>
<section aria-labelledby="steps-heading">
<h2 id="steps-heading">In ${guide.console}</h2>
<ol class="steps">
${guide.steps.map(step)}
</ol>
</section>
<section aria-labelledby="details-heading" class="details">
<h2 id="details-heading">Enter ${guide.name}'s details</h2>
<p id="existing-connection" class="meta" hidden></p>
<form id="sso-form" novalidate aria-labelledby="details-heading">
${guide.form.protocol === 'oidc' ? oidcFields(guide.form) : samlFields(guide.form)}
<div class="actions">
<button type="button" id="test-button" class="secondary">Test</button>
<button type="submit" id="save-button">Save</button>
</div>
</form>
<noscript><p><strong>Note:</strong> this setup needs JavaScript. Turn it on and reload this page.</p></noscript>
</section>
<section id="test-result" aria-labelledby="test-heading" hidden>
<h2 id="test-heading" tabindex="-1">Test result</h2>
<p id="test-summary"></p>
<ul id="test-checks" class="checks"></ul>
<ul id="test-warnings" class="checks warnings"></ul>
</section>
<section id="saved" aria-labelledby="saved-heading" hidden>
<h2 id="saved-heading" tabindex="-1">Saved</h2>
<p id="saved-pending">Your ${guide.name} settings are saved, turned off. An owner of ${shell.organization.name} now reviews them and turns single sign-on on in the Gatehouse dashboard; until then nobody signs in with it. Let them know you are done. Once it is on, people sign in with ${guide.name} through this link, or by entering their work email on the sign-in page.</p>
<p id="saved-enabled" hidden>Single sign-on with ${guide.name} is on. Share this sign-in link with your people, or let them enter their work email on the sign-in page.</p>
<div class="paste-list">
<div class="paste">
<span class="paste-label" id="pl-saved-login">Sign-in link</span>
<code class="paste-value" id="pv-saved-login" data-sp="loginUrl">Loading…</code>
<button type="button" class="secondary copy" data-copy-from="pv-saved-login">Copy<span class="visually-hidden"> Sign-in link</span></button>
</div>
</div>
${shell.link.scope.includes('domains') ? html`<p id="next-domains">Next: <a href="?step=domains">verify your email domains</a>, so that people are sent to ${guide.name} when they type their work email.</p>` : ''}
</section>`;
  return setupLayout({
    title: `Set up ${guide.name}`,
    view: 'guide',
    shell,
    body,
    data: { idp: guide.id, protocol: guide.form.protocol, provider: guide.provider },
  });
}

function field(name: string, text: FieldText, input: { type?: string; required?: boolean; secret?: boolean; textarea?: boolean; autocomplete?: string }) {
  const described = `h-${name} e-${name}${input.secret ? ` s-${name}` : ''}`;
  const control = input.textarea
    ? html`<textarea id="f-${name}" data-field="${name}" rows="6" spellcheck="false" aria-describedby="${described}"></textarea>`
    : html`<input id="f-${name}" data-field="${name}" type="${input.type ?? 'text'}"${input.required ? html` required aria-required="true"` : ''} spellcheck="false" autocapitalize="none" autocomplete="${input.autocomplete ?? 'off'}"${text.placeholder ? html` placeholder="${text.placeholder}"` : ''} aria-describedby="${described}">`;
  return html`<div class="field" id="field-${name}">
<label for="f-${name}">${text.label}</label>
${control}
<span class="hint" id="h-${name}">${text.hint}</span>
${input.secret ? html`<span class="hint secret-status" id="s-${name}" data-secret-status></span>` : ''}
<span class="field-error" id="e-${name}"></span>
</div>`;
}

function oidcFields(form: Extract<IdpGuide['form'], { protocol: 'oidc' }>) {
  return html`
${field('issuerUrl', form.issuerUrl, { type: 'url', required: true })}
${field('clientId', form.clientId, { required: true })}
${field('clientSecret', form.clientSecret, { type: 'password', secret: true, autocomplete: 'new-password' })}
${form.allowedTenants ? field('allowedTenants', form.allowedTenants, {}) : ''}
${form.scopes ? field('scopes', { label: 'Scopes', hint: html`Leave empty for <code>openid profile email</code>.` }, {}) : ''}`;
}

function samlFields(form: Extract<IdpGuide['form'], { protocol: 'saml' }>) {
  return html`
<p class="meta">Give the IdP's metadata${form.metadataUrl ? ' (a file or its URL)' : ''}, or enter its three details by hand.</p>
${form.metadataXml ? html`<div class="field">
<label for="f-metadataFile">Upload the metadata file</label>
<input id="f-metadataFile" type="file" accept=".xml,application/xml,text/xml,application/samlmetadata+xml" aria-describedby="h-metadataFile">
<span class="hint" id="h-metadataFile">Its contents go into the box below.</span>
</div>
${field('idpMetadataXml', form.metadataXml, { textarea: true })}` : ''}
${form.metadataUrl ? field('idpMetadataUrl', form.metadataUrl, { type: 'url' }) : ''}
<details id="manual-details">
<summary>Enter the details by hand instead</summary>
${field('idpEntityId', form.manual.entityId, {})}
${field('idpSsoUrl', form.manual.ssoUrl, { type: 'url' })}
${field('idpCertificate', form.manual.certificate, { textarea: true })}
</details>`;
}
