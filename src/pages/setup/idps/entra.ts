import { html } from 'hono/html';
import { menu, type IdpGuide } from './types.js';

/** Microsoft Entra ID (formerly Azure AD): an app registration, OIDC (SPEC §4.3 provider "azure"). */
export const entra: IdpGuide = {
  id: 'entra',
  name: 'Microsoft Entra ID',
  summary: 'App registration in the Microsoft Entra admin center (formerly Azure AD).',
  provider: 'azure',
  console: 'the Microsoft Entra admin center',
  steps: [
    {
      title: 'Register the application',
      body: html`<p>Sign in to the Microsoft Entra admin center (<code>https://entra.microsoft.com</code>) as at least a Cloud Application Administrator and open ${menu('Identity', 'Applications', 'App registrations', 'New registration')}.</p>
<p>Enter a name. Under <strong>Supported account types</strong> choose <strong>Accounts in this organizational directory only (Single tenant)</strong>. Under <strong>Redirect URI</strong>, select the platform <strong>Web</strong> and paste the value below, then select <strong>Register</strong>.</p>`,
      values: [{ key: 'redirectUri', label: 'Redirect URI (Web)' }],
    },
    {
      title: 'Note the application and tenant IDs',
      body: html`<p>On the app's <strong>Overview</strong> page, copy the <strong>Application (client) ID</strong> and the <strong>Directory (tenant) ID</strong>. Your issuer URL is <code>https://login.microsoftonline.com/{tenant}/v2.0</code> with your Directory (tenant) ID in place of <code>{tenant}</code>.</p>`,
    },
    {
      title: 'Create a client secret',
      body: html`<p>Open ${menu('Certificates & secrets', 'Client secrets', 'New client secret')}, enter a description, choose an expiry and select <strong>Add</strong>. Copy the secret's <strong>Value</strong> at once (not the Secret ID): Entra shows it only once. Before it expires, create a new one and enter it here again.</p>`,
    },
    {
      title: 'Make sure the email is sent',
      body: html`<p>Open ${menu('Token configuration', 'Add optional claim')}, choose token type <strong>ID</strong>, tick <strong>email</strong> and select <strong>Add</strong> (accept the Microsoft Graph permission it offers). Users need an email address on their account.</p>`,
    },
    {
      title: 'Optional: sign-out and who may sign in',
      body: html`<p>If your organization wants signing out to end the Microsoft session too, open ${menu('Authentication', 'Web', 'Redirect URIs', 'Add URI')} and add the sign-out return address below. To allow only some people, open ${menu('Enterprise applications')}, pick the app, set <strong>Assignment required?</strong> to <strong>Yes</strong> in <strong>Properties</strong> and add them under <strong>Users and groups</strong>.</p>`,
      values: [{ key: 'postLogoutRedirectUri', label: 'Redirect URI (sign-out return address)', optional: true }],
    },
  ],
  form: {
    protocol: 'oidc',
    issuerUrl: { label: 'Issuer URL', hint: html`<code>https://login.microsoftonline.com/{tenant}/v2.0</code> with your Directory (tenant) ID.`, placeholder: 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0' },
    clientId: { label: 'Application (client) ID', hint: html`From the app's <strong>Overview</strong> page.` },
    clientSecret: { label: 'Client secret value', hint: html`The <strong>Value</strong> from <strong>Certificates &amp; secrets</strong>, not the Secret ID.` },
    allowedTenants: { label: 'Allowed tenant IDs (multi-tenant apps only)', hint: html`Only when the issuer is <code>…/common/v2.0</code> or <code>…/organizations/v2.0</code>: the Directory (tenant) IDs whose people may sign in, separated by commas. Leave empty for a single-tenant app.` },
  },
};
