import { html } from 'hono/html';
import { menu, type IdpGuide } from './types.js';

/** Auth0: a Regular Web Application, OIDC (SPEC §4.3 provider "auth0"). */
export const auth0: IdpGuide = {
  id: 'auth0',
  name: 'Auth0',
  summary: 'Regular Web Application in the Auth0 Dashboard.',
  provider: 'auth0',
  console: 'the Auth0 Dashboard',
  steps: [
    {
      title: 'Create the application',
      body: html`<p>Sign in to the Auth0 Dashboard (<code>https://manage.auth0.com</code>) and open ${menu('Applications', 'Applications', 'Create Application')}. Enter a name, choose <strong>Regular Web Applications</strong> and select <strong>Create</strong>.</p>`,
    },
    {
      title: 'Enter the application URIs',
      body: html`<p>On the application's <strong>Settings</strong> tab, scroll to <strong>Application URIs</strong>, paste these values, then select <strong>Save Changes</strong> at the bottom of the page.</p>`,
      values: [
        { key: 'redirectUri', label: 'Allowed Callback URLs' },
        { key: 'postLogoutRedirectUri', label: 'Allowed Logout URLs', optional: true },
        { key: 'initiateLoginUri', label: 'Application Login URI', optional: true },
      ],
    },
    {
      title: 'Choose who may sign in',
      body: html`<p>On the application's <strong>Connections</strong> tab, turn on only the connections (database, social or enterprise) whose users may sign in to this application.</p>`,
    },
    {
      title: 'Copy the domain and credentials',
      body: html`<p>At the top of the <strong>Settings</strong> tab, under <strong>Basic Information</strong>, copy the <strong>Domain</strong>, the <strong>Client ID</strong> and the <strong>Client Secret</strong>. The issuer is the domain with <code>https://</code> in front, such as <code>https://your-tenant.us.auth0.com/</code> (or your custom domain).</p>`,
    },
  ],
  form: {
    protocol: 'oidc',
    issuerUrl: { label: 'Domain (issuer URL)', hint: html`The <strong>Domain</strong> with <code>https://</code> in front, such as <code>https://your-tenant.us.auth0.com/</code>.`, placeholder: 'https://your-tenant.us.auth0.com/' },
    clientId: { label: 'Client ID', hint: html`From <strong>Basic Information</strong> on the Settings tab.` },
    clientSecret: { label: 'Client Secret', hint: html`From <strong>Basic Information</strong> on the Settings tab.` },
  },
};
