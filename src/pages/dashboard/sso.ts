import { html } from 'hono/html';
import { OIDC_PROVIDERS } from '../../sso/connections/model.js';
import { apiButton, apiForm, checkbox, copyField, field, fmtTime, orgApi, select, textarea, type Html } from './frame.js';
import type { SectionInput, SectionPage } from './section.js';
import { lastTestOf, savedConnection, serviceProviderValues, toggleBody, type ServiceProviderValues, type SsoSettingsView } from './sso-data.js';

const PROVIDER_LABELS: Record<string, string> = { okta: 'Okta', azure: 'Microsoft Entra ID', google: 'Google Workspace', auth0: 'Auth0', oidc: 'Other OIDC provider', onelogin: 'OneLogin', saml: 'Other SAML 2.0 provider' };

function pasteValues(sp: ServiceProviderValues): Html {
  return html`<section aria-labelledby="paste-heading" class="card">
<h2 id="paste-heading">Values to paste into your identity provider</h2>
<details open><summary>OpenID Connect application</summary>
${copyField('Redirect URI', sp.redirectUri, sp.redirectUriMode === 'dedicated' ? "This organization's own redirect URI (protects against OAuth mix-up)." : 'The shared redirect URI of this Gatehouse.')}
${copyField('Initiate login URI', sp.initiateLoginUri, 'Okta: "Initiate login URI" (login started from the IdP dashboard).')}
${copyField('Back-channel logout URI', sp.backchannelLogoutUri)}
${copyField('Post-logout redirect URI', sp.postLogoutRedirectUri)}
${copyField('Universal Logout endpoint (Okta)', sp.universalLogoutUri)}
</details>
<details open><summary>SAML 2.0 application</summary>
${copyField('ACS URL (single sign-on URL)', sp.acsUrl)}
${copyField('SP entity ID (audience)', sp.spEntityId)}
${copyField('SP metadata URL', sp.spMetadataUrl)}
${copyField('Single logout URL (SLO)', sp.sloUrl)}
</details>
${copyField('Login link for your team', sp.loginUrl, 'Share it with your users: it starts single sign-on for this organization.')}
</section>`;
}

function statusCard(orgId: string, v: SsoSettingsView): Html {
  const last = lastTestOf(v);
  const toggle = toggleBody(v);
  const api = orgApi(orgId, '/settings/sso');
  const mix = v.mixUpProtection;
  return html`<section aria-labelledby="conn-heading" class="card">
<h2 id="conn-heading">Current connection</h2>
<dl class="facts">
<dt>Protocol</dt><dd>${v.protocol === 'oidc' ? 'OpenID Connect' : 'SAML 2.0'}</dd>
<dt>Provider</dt><dd>${PROVIDER_LABELS[v.provider] ?? v.provider}</dd>
<dt>Status</dt><dd id="sso-enabled">${v.enabled ? 'Enabled' : 'Disabled'}</dd>
<dt>Issuer</dt><dd><code>${v.issuer}</code></dd>
${v.protocol === 'oidc' ? html`<dt>Client secret</dt><dd>${v.hasClientSecret ? 'set' : 'not set'}</dd>` : ''}
${mix ? html`<dt>Mix-up protection</dt><dd id="mix-up">${mix}${mix === 'none' ? html` <strong class="warn">— nothing stops an OAuth mix-up attack: switch the redirect URI mode to "dedicated".</strong>` : ''}</dd>` : ''}
<dt>Universal Logout</dt><dd>${v.universalLogout.enabled ? 'on' : 'off'} (endpoint <code>${v.universalLogoutUri}</code>)</dd>
<dt>Last test</dt><dd id="last-test">${last ? html`${last.ok ? 'passed' : 'failed'} at ${fmtTime(last.at)}` : 'never tested'}</dd>
${v.idpCertificates ? html`<dt>IdP certificates</dt><dd><ul>${v.idpCertificates.map((c) => html`<li>${c.subject} — expires ${fmtTime(c.notAfter)} — SHA-256 <code>${c.fingerprintSha256}</code></li>`)}</ul></dd>` : ''}
</dl>
<div class="actions">
${apiButton({ api: `POST ${api}/test`, label: 'Test saved connection', after: 'sso-test', output: 'saved-test-output' })}
${toggle ? html`<button type="button" class="secondary" data-api="PUT ${api}" data-body="${JSON.stringify(toggle)}" data-after="reload" data-flash="${v.enabled ? 'SSO disabled.' : 'SSO enabled.'}">${v.enabled ? 'Disable SSO' : 'Enable SSO'}</button>` : html`<span class="hint">To enable or disable this SAML connection, save the SAML form below with "Enabled" set: it needs the IdP metadata or certificate again.</span>`}
${apiButton({ api: `DELETE ${api}`, label: 'Remove SSO', className: 'danger', confirm: 'Remove the SSO connection? Users will no longer be able to sign in through it, and "SSO required" is lowered to "any".', flash: 'SSO connection removed.' })}
</div>
<div id="saved-test-output" class="form-output" aria-live="polite"></div>
</section>`;
}

const testButton = (orgId: string) =>
  html`<button type="button" class="secondary" data-submit-to="POST ${orgApi(orgId, '/settings/sso/test')}" data-after="sso-test">Test these settings</button>`;

function universalLogoutFields(v: SsoSettingsView | null): Html {
  const ul = v?.universalLogout;
  return html`<fieldset class="group"><legend>Okta Universal Logout</legend>
${checkbox({ name: 'universalLogout.enabled', label: 'Let the IdP end sessions (Universal Logout)', checked: ul?.enabled ?? true })}
${field({ name: 'universalLogout.issuer', label: 'Expected issuer (iss)', value: ul?.issuer ?? '', type: 'url', omitEmpty: true, hint: 'Default: the issuer URL (Okta: its origin). Required for SAML.' })}
${field({ name: 'universalLogout.subject', label: 'Expected subject (sub)', value: ul?.subject ?? '', omitEmpty: true, hint: 'Default: the client id. For SAML: the Okta app instance id.' })}
</fieldset>`;
}

function commonFields(v: SsoSettingsView | null): Html {
  return html`<fieldset class="group"><legend>Provisioning</legend>
${checkbox({ name: 'enabled', label: 'Enabled', checked: v?.enabled ?? true })}
${checkbox({ name: 'allowJitProvisioning', label: 'Create accounts on first sign-in (just-in-time provisioning)', checked: v?.allowJitProvisioning ?? true })}
${select({ name: 'defaultRole', label: 'Role of new members', options: ['member', 'admin'], value: v?.defaultRole ?? 'member' })}
${field({ name: 'allowedDomains', label: 'Allowed email domains', value: v?.allowedDomains?.join(', ') ?? '', dataType: 'list', nullEmpty: true, hint: 'Comma separated, e.g. example.com. Empty: any domain.' })}
${checkbox({ name: 'allowIdpInitiated', label: 'Allow sign-in started from the IdP', checked: v?.allowIdpInitiated ?? false })}
${checkbox({ name: 'signOutOfIdp', label: 'Signing out of Gatehouse also signs out of the IdP', checked: v?.signOutOfIdp ?? false })}
</fieldset>
${universalLogoutFields(v)}`;
}

function oidcForm(orgId: string, v: SsoSettingsView | null): Html {
  const saved = v?.protocol === 'oidc' ? v : null;
  const body = html`<input type="hidden" name="protocol" value="oidc">
${select({ name: 'provider', label: 'Identity provider', options: OIDC_PROVIDERS.map((p) => ({ value: p, label: PROVIDER_LABELS[p] ?? p })), value: saved?.provider ?? 'okta' })}
${field({ name: 'issuerUrl', label: 'Issuer URL', type: 'url', value: saved?.issuerUrl ?? '', required: true, hint: 'e.g. https://your-org.okta.com (a pasted /.well-known/openid-configuration is fine).' })}
${field({ name: 'clientId', label: 'Client ID', value: saved?.clientId ?? '', required: !saved })}
${field({ name: 'clientSecret', label: 'Client secret', type: 'password', omitEmpty: true, autocomplete: 'new-password', hint: saved ? `Currently ${saved.hasClientSecret ? 'set' : 'not set'}. Leave empty to keep it.` : 'From the IdP application.' })}
${field({ name: 'scopes', label: 'Scopes', value: saved?.scopes ?? '', omitEmpty: true, hint: 'Space separated. Default: openid profile email.' })}
${select({ name: 'redirectUriMode', label: 'Redirect URI mode', options: [{ value: 'dedicated', label: 'dedicated (recommended)' }, { value: 'shared', label: 'shared' }], value: saved?.redirectUriMode ?? 'dedicated', hint: 'Dedicated: this organization\'s own redirect URI. Shared: the one of every organization, protected only by the IdP.' })}
${field({ name: 'allowedTenants', label: 'Allowed Entra ID tenants', value: saved?.allowedTenants?.join(', ') ?? '', dataType: 'list', omitEmpty: true, hint: 'Multi-tenant Entra issuers only: tenant ids (GUIDs), comma separated.' })}
${checkbox({ name: 'storeIdpTokens', label: "Keep users' IdP tokens for the app (token vault)", checked: saved?.storeIdpTokens ?? false })}
${commonFields(saved)}`;
  return html`<section id="oidc-section" aria-labelledby="oidc-heading" class="card" data-protocol-panel="oidc"${v?.protocol === 'saml' ? html` hidden` : ''}>
<h2 id="oidc-heading">OpenID Connect settings</h2>
${apiForm({ id: 'oidc-form', api: `PUT ${orgApi(orgId, '/settings/sso')}`, label: 'OpenID Connect settings', submit: 'Save', flash: 'SSO connection saved.', body, extraButtons: testButton(orgId) })}
</section>`;
}

function samlForm(orgId: string, v: SsoSettingsView | null): Html {
  const saved = v?.protocol === 'saml' ? v : null;
  const map = saved?.attributeMapping ?? {};
  const body = html`<input type="hidden" name="protocol" value="saml">
${select({ name: 'provider', label: 'Identity provider', options: [{ value: 'onelogin', label: 'OneLogin' }, { value: 'saml', label: 'Other SAML 2.0 provider' }, { value: 'okta', label: 'Okta (SAML app)' }, { value: 'azure', label: 'Microsoft Entra ID (SAML app)' }, { value: 'google', label: 'Google Workspace (SAML app)' }], value: saved?.provider ?? 'saml' })}
<fieldset class="group"><legend>IdP metadata — one of the three ways</legend>
${textarea({ name: 'idpMetadataXml', label: 'Paste the IdP metadata XML', omitEmpty: true, rows: 5 })}
${field({ name: 'idpMetadataUrl', label: 'Or import it from a metadata URL', type: 'url', value: saved?.idpMetadataUrl ?? '', omitEmpty: true, hint: 'Fetched once, when you save or test.' })}
<p class="hint">Or enter the IdP's values:</p>
${field({ name: 'idpEntityId', label: 'IdP entity ID (issuer)', value: saved?.idpEntityId ?? '', omitEmpty: true })}
${field({ name: 'idpSsoUrl', label: 'IdP single sign-on URL', type: 'url', value: saved?.idpSsoUrl ?? '', omitEmpty: true })}
${textarea({ name: 'idpCertificate', label: 'IdP signing certificate (PEM)', omitEmpty: true, rows: 4, hint: saved ? 'Not shown again: paste it (or the metadata) each time you save.' : 'Several PEM blocks for a rotation.' })}
</fieldset>
<fieldset class="group"><legend>Attribute mapping</legend>
<p class="hint">IdP attribute names; empty fields use the standard names.</p>
${(['email', 'firstName', 'lastName', 'name', 'groups'] as const).map((k) => field({ name: `attributeMapping.${k}`, label: `${k} attribute`, value: map[k]?.join(', ') ?? '', dataType: 'list', omitEmpty: true }))}
</fieldset>
${field({ name: 'spEntityId', label: 'SP entity ID', value: '', omitEmpty: true, hint: 'Default: the SP metadata URL shown above.' })}
${checkbox({ name: 'signAuthnRequests', label: 'Sign authentication requests', checked: saved?.signAuthnRequests ?? false })}
${select({ name: 'authnRequestBinding', label: 'Request binding', options: ['redirect', 'post'], value: saved?.authnRequestBinding ?? 'redirect' })}
${commonFields(saved)}`;
  return html`<section id="saml-section" aria-labelledby="saml-heading" class="card" data-protocol-panel="saml"${v?.protocol === 'saml' ? '' : html` hidden`}>
<h2 id="saml-heading">SAML 2.0 settings</h2>
${apiForm({ id: 'saml-form', api: `PUT ${orgApi(orgId, '/settings/sso')}`, label: 'SAML settings', submit: 'Save', flash: 'SSO connection saved.', body, extraButtons: testButton(orgId) })}
</section>`;
}

/** SSO section (owner): paste values, the saved connection, the OIDC and SAML forms. */
export async function ssoSection({ services, ctx, org }: SectionInput): Promise<SectionPage> {
  const view = await savedConnection(services, ctx, org.id);
  const sp = await serviceProviderValues(services, ctx, org.id);
  const protocol = view?.protocol ?? 'oidc';
  const chooser = html`<fieldset class="card protocol-choice" data-protocol-choice><legend>${view ? 'Protocol of the connection' : 'No SSO connection yet — choose the protocol your IdP speaks'}</legend>
<div class="radio"><input type="radio" id="proto-oidc" name="protocol-choice" value="oidc"${protocol === 'oidc' ? html` checked` : ''}><label for="proto-oidc">OpenID Connect (Okta, Entra ID, Google, Auth0 …)</label></div>
<div class="radio"><input type="radio" id="proto-saml" name="protocol-choice" value="saml"${protocol === 'saml' ? html` checked` : ''}><label for="proto-saml">SAML 2.0 (OneLogin, ADFS …)</label></div>
</fieldset>`;
  return {
    title: 'Single sign-on',
    body: html`${view ? statusCard(org.id, view) : ''}
${pasteValues(sp)}
${chooser}
${oidcForm(org.id, view)}
${samlForm(org.id, view)}`,
  };
}
