import { html } from 'hono/html';
import { menu, type IdpGuide } from './types.js';

/** OneLogin: the SAML Custom Connector (Advanced) (SPEC §4.3 provider "onelogin", SAML). */
export const onelogin: IdpGuide = {
  id: 'onelogin',
  name: 'OneLogin',
  summary: 'SAML Custom Connector (Advanced) in the OneLogin admin portal.',
  provider: 'onelogin',
  console: 'the OneLogin admin portal',
  steps: [
    {
      title: 'Add the SAML connector',
      body: html`<p>Sign in to your OneLogin admin portal (<code>https://your-company.onelogin.com</code>) and open ${menu('Applications', 'Applications', 'Add App')}. Search for <strong>SAML Custom Connector (Advanced)</strong>, select it, enter a <strong>Display Name</strong> and select <strong>Save</strong>.</p>`,
    },
    {
      title: 'Fill in the Configuration tab',
      body: html`<p>On the app's <strong>Configuration</strong> tab, paste the values below. Set <strong>SAML initiator</strong> to <strong>Service Provider</strong>, <strong>SAML nameID format</strong> to <strong>Email</strong> and <strong>SAML signature element</strong> to <strong>Assertion</strong> (or <strong>Both</strong>). Select <strong>Save</strong>.</p>`,
      values: [
        { key: 'spEntityId', label: 'Audience (EntityID)' },
        { key: 'acsUrl', label: 'Recipient' },
        { key: 'acsUrlValidator', label: 'ACS (Consumer) URL Validator' },
        { key: 'acsUrl', label: 'ACS (Consumer) URL' },
        { key: 'loginUrl', label: 'Login URL', optional: true },
      ],
    },
    {
      title: 'Send the email address',
      body: html`<p>On the <strong>Parameters</strong> tab, <strong>NameID value</strong> should be <strong>Email</strong>. Optionally add the parameters <code>email</code>, <code>firstName</code> and <code>lastName</code> (tick <strong>Include in SAML assertion</strong>) mapped to Email, First Name and Last Name.</p>`,
    },
    {
      title: 'Give people access',
      body: html`<p>On the <strong>Access</strong> tab tick the roles whose users may sign in, or assign users one by one at ${menu('Users', 'a user', 'Applications', '+')}. Select <strong>Save</strong>.</p>`,
    },
    {
      title: 'Copy the metadata address',
      body: html`<p>On the <strong>SSO</strong> tab, copy the <strong>Issuer URL</strong>: it is the address of the app's SAML metadata. (Or use ${menu('More Actions', 'SAML Metadata')} to download the file.)</p>`,
    },
  ],
  form: {
    protocol: 'saml',
    metadataXml: { label: 'SAML metadata file', hint: html`The file from <strong>More Actions › SAML Metadata</strong>, or its contents.` },
    metadataUrl: { label: 'Issuer URL (metadata URL)', hint: html`From the <strong>SSO</strong> tab, such as <code>https://app.onelogin.com/saml/metadata/…</code>. Gatehouse fetches it once, when you save.` },
    manual: {
      entityId: { label: 'Issuer URL (IdP entity ID)', hint: html`From the <strong>SSO</strong> tab.` },
      ssoUrl: { label: 'SAML 2.0 Endpoint (HTTP)', hint: html`From the <strong>SSO</strong> tab.` },
      certificate: { label: 'X.509 Certificate', hint: html`From <strong>SSO › X.509 Certificate › View Details</strong>: the whole PEM.` },
    },
  },
};
