import { html } from 'hono/html';
import { menu, type IdpGuide } from './types.js';

/**
 * Google Workspace as a custom SAML app (SPEC §4.3: SAML with provider "google", so the body
 * names `protocol: "saml"`). Google's OIDC is for consumer sign-in, not a workspace's own app.
 */
export const google: IdpGuide = {
  id: 'google',
  name: 'Google Workspace',
  summary: 'Custom SAML app in the Google Admin console.',
  provider: 'google',
  console: 'the Google Admin console',
  steps: [
    {
      title: 'Add a custom SAML app',
      body: html`<p>Sign in to the Google Admin console (<code>https://admin.google.com</code>) as a super administrator and open ${menu('Apps', 'Web and mobile apps', 'Add app', 'Add custom SAML app')}. Enter an <strong>App name</strong> and select <strong>Continue</strong>.</p>`,
    },
    {
      title: "Download Google's identity provider details",
      body: html`<p>On the <strong>Google Identity Provider details</strong> page, select <strong>Download metadata</strong> and keep the file (<code>GoogleIDPMetadata.xml</code>): you will upload it below. Select <strong>Continue</strong>.</p>`,
    },
    {
      title: 'Enter the service provider details',
      body: html`<p>On the <strong>Service provider details</strong> page, paste the values below. Leave <strong>Signed response</strong> unticked. Set <strong>Name ID format</strong> to <strong>EMAIL</strong> and <strong>Name ID</strong> to <strong>Basic Information › Primary email</strong>. Select <strong>Continue</strong>.</p>`,
      values: [
        { key: 'acsUrl', label: 'ACS URL' },
        { key: 'spEntityId', label: 'Entity ID' },
        { key: 'loginUrl', label: 'Start URL', optional: true },
      ],
    },
    {
      title: 'Map the attributes',
      body: html`<p>On the <strong>Attribute mapping</strong> page select <strong>Add mapping</strong> and map <strong>Primary email</strong> → <code>email</code>, <strong>First name</strong> → <code>firstName</code> and <strong>Last name</strong> → <code>lastName</code>. Select <strong>Finish</strong>.</p>`,
    },
    {
      title: 'Turn the app on',
      body: html`<p>Open the new app and select ${menu('User access')}. Choose <strong>ON for everyone</strong> (or turn it on for chosen organizational units or groups) and select <strong>Save</strong>. Google says changes can take up to 24 hours, usually minutes.</p>`,
    },
  ],
  form: {
    protocol: 'saml',
    metadataXml: { label: 'Google IdP metadata', hint: html`Upload <code>GoogleIDPMetadata.xml</code>, or paste its contents.` },
    metadataUrl: null,
    manual: {
      entityId: { label: 'Entity ID', hint: html`From <strong>Google Identity Provider details</strong>, such as <code>https://accounts.google.com/o/saml2?idpid=…</code>.` },
      ssoUrl: { label: 'SSO URL', hint: html`Such as <code>https://accounts.google.com/o/saml2/idp?idpid=…</code>.` },
      certificate: { label: 'Certificate', hint: html`The whole PEM, from <code>-----BEGIN CERTIFICATE-----</code> to <code>-----END CERTIFICATE-----</code>.` },
    },
  },
};
