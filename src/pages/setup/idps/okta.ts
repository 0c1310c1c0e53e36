import { html } from 'hono/html';
import { menu, type IdpGuide } from './types.js';

/** Okta Workforce Identity: an OIDC Web Application integration (SPEC §4.3 provider "okta"). */
export const okta: IdpGuide = {
  id: 'okta',
  name: 'Okta',
  summary: 'OpenID Connect web app integration in the Okta Admin Console.',
  provider: 'okta',
  console: 'the Okta Admin Console',
  steps: [
    {
      title: 'Create the app integration',
      body: html`<p>Sign in to the Okta Admin Console (<code>https://your-org-admin.okta.com</code>) as an administrator and open ${menu('Applications', 'Applications', 'Create App Integration')}.</p>
<p>Choose <strong>OIDC - OpenID Connect</strong> as the sign-in method and <strong>Web Application</strong> as the application type, then select <strong>Next</strong>.</p>`,
    },
    {
      title: 'Fill in the general settings',
      body: html`<p>Give the integration a name your users will recognise. Under <strong>Grant type</strong> keep <strong>Authorization Code</strong>. Paste these values into the fields named below:</p>`,
      values: [
        { key: 'redirectUri', label: 'Sign-in redirect URIs' },
        { key: 'postLogoutRedirectUri', label: 'Sign-out redirect URIs', optional: true },
      ],
    },
    {
      title: 'Choose who may sign in',
      body: html`<p>Under <strong>Assignments</strong>, choose <strong>Controlled access</strong>: <strong>Allow everyone in your organization to access</strong>, or <strong>Limit access to selected groups</strong> and pick the groups. Select <strong>Save</strong>.</p>
<p>Later you can change this on the app's ${menu('Assignments')} tab.</p>`,
    },
    {
      title: 'Optional: let people start from the Okta dashboard',
      body: html`<p>On the app's <strong>General</strong> tab, select <strong>Edit</strong> in <strong>General Settings</strong>, set <strong>Login initiated by</strong> to <strong>Either Okta or App</strong>, and paste:</p>`,
      values: [{ key: 'initiateLoginUri', label: 'Initiate login URI', optional: true }],
    },
    {
      title: 'Copy the client credentials',
      body: html`<p>On the app's <strong>General</strong> tab, in <strong>Client Credentials</strong>, copy the <strong>Client ID</strong> and, under <strong>Client secrets</strong>, the <strong>Secret</strong>. Your issuer is your Okta domain, such as <code>https://your-org.okta.com</code> (the org authorization server). If your organization uses a custom authorization server, use its <strong>Issuer URI</strong> from ${menu('Security', 'API', 'Authorization Servers')} instead.</p>`,
    },
  ],
  form: {
    protocol: 'oidc',
    issuerUrl: { label: 'Okta domain (issuer URL)', hint: html`Such as <code>https://your-org.okta.com</code>, or a custom authorization server's Issuer URI.`, placeholder: 'https://your-org.okta.com' },
    clientId: { label: 'Client ID', hint: html`From <strong>Client Credentials</strong> on the app's General tab.` },
    clientSecret: { label: 'Client secret', hint: html`The <strong>Secret</strong> under <strong>Client secrets</strong>.` },
  },
};
