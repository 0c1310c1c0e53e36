import { html } from 'hono/html';
import type { IdpGuide } from './types.js';

/** Any SAML 2.0 identity provider (SPEC §4.3 provider "saml"). */
export const saml: IdpGuide = {
  id: 'saml',
  name: 'Other SAML 2.0 provider',
  summary: 'Any SAML 2.0 IdP (ADFS, PingFederate, JumpCloud, Shibboleth, …).',
  provider: 'saml',
  console: "your identity provider's admin console",
  steps: [
    {
      title: 'Create a SAML application (service provider)',
      body: html`<p>In your identity provider, add a SAML 2.0 application (a "relying party trust" or "service provider"). If it can import service provider metadata, give it the metadata URL below; otherwise paste the ACS URL and entity ID.</p>`,
      values: [
        { key: 'spMetadataUrl', label: 'SP metadata URL' },
        { key: 'acsUrl', label: 'Assertion Consumer Service (ACS) URL, HTTP-POST binding' },
        { key: 'spEntityId', label: 'SP entity ID (audience)' },
      ],
    },
    {
      title: 'Send the email address',
      body: html`<p>Sign the assertion (or the whole response) with SHA-256. Send the user's email as the NameID with format <code>emailAddress</code>, or as an attribute named <code>email</code> (also recognised: <code>mail</code> and the usual claim URIs). <code>firstName</code>, <code>lastName</code> and <code>groups</code> attributes are read when present.</p>`,
    },
    {
      title: "Assign users and copy the IdP's details",
      body: html`<p>Give the people who should sign in access to the application. Then get the IdP's metadata (a URL or an XML file), or its entity ID, single sign-on URL and signing certificate.</p>`,
    },
  ],
  form: {
    protocol: 'saml',
    metadataXml: { label: 'IdP metadata XML', hint: html`Upload the metadata file, or paste its contents.` },
    metadataUrl: { label: 'IdP metadata URL', hint: html`An https address Gatehouse fetches once, when you save.` },
    manual: {
      entityId: { label: 'IdP entity ID (issuer)', hint: html`The <code>entityID</code> of the IdP's metadata.` },
      ssoUrl: { label: 'Single sign-on URL', hint: html`The IdP's SingleSignOnService (HTTP-Redirect or HTTP-POST).` },
      certificate: { label: 'Signing certificate', hint: html`PEM; several certificates one after the other during a rotation.` },
    },
  },
};
