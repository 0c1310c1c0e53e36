import { html } from 'hono/html';
import type { IdpGuide } from './types.js';

/** Any OpenID Connect provider with discovery (SPEC §4.3 provider "oidc"). */
export const oidc: IdpGuide = {
  id: 'oidc',
  name: 'Other OpenID Connect provider',
  summary: 'Any IdP that supports OpenID Connect with discovery (Keycloak, Ping, JumpCloud, …).',
  provider: 'oidc',
  console: "your identity provider's admin console",
  steps: [
    {
      title: 'Create a web application (client)',
      body: html`<p>In your identity provider's admin console, create an OpenID Connect application of the <strong>web</strong> (confidential, server-side) kind, using the <strong>authorization code</strong> flow and a client secret. Allow the scopes <code>openid</code>, <code>profile</code> and <code>email</code>.</p>`,
    },
    {
      title: 'Register the redirect URI',
      body: html`<p>Paste the redirect URI exactly as shown: the IdP compares it character by character.</p>`,
      values: [
        { key: 'redirectUri', label: 'Redirect URI (callback URL)' },
        { key: 'postLogoutRedirectUri', label: 'Post-logout redirect URI', optional: true },
        { key: 'initiateLoginUri', label: 'Initiate login URI', optional: true },
        { key: 'backchannelLogoutUri', label: 'Back-channel logout URI', optional: true },
      ],
    },
    {
      title: 'Assign users and copy the details',
      body: html`<p>Give the people who should sign in access to the application. Then copy the <strong>issuer URL</strong> (the address in front of <code>/.well-known/openid-configuration</code>), the <strong>client ID</strong> and the <strong>client secret</strong>.</p>`,
    },
  ],
  form: {
    protocol: 'oidc',
    issuerUrl: { label: 'Issuer URL', hint: html`The discovery base: Gatehouse reads <code>{issuer}/.well-known/openid-configuration</code>. A pasted discovery URL works too.`, placeholder: 'https://idp.example.com' },
    clientId: { label: 'Client ID', hint: html`The application's client identifier.` },
    clientSecret: { label: 'Client secret', hint: html`The application's client secret.` },
    scopes: true,
  },
};
