import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/**
 * The values Gatehouse gives an admin to paste into the IdP: the fields of
 * `GET …/settings/sso/service-provider` (setup.js fills them in), plus `acsUrlValidator`, the ACS
 * URL as the anchored regular expression OneLogin's "ACS (Consumer) URL Validator" wants.
 */
export const SP_VALUES = [
  'redirectUri', 'acsUrl', 'spEntityId', 'spMetadataUrl', 'loginUrl', 'initiateLoginUri',
  'backchannelLogoutUri', 'universalLogoutUri', 'postLogoutRedirectUri', 'acsUrlValidator',
] as const;
export type SpValue = (typeof SP_VALUES)[number];

/** The IdPs the wizard knows, in the order it offers them. */
export const IDP_IDS = ['okta', 'entra', 'google', 'onelogin', 'auth0', 'oidc', 'saml'] as const;
export type IdpId = (typeof IDP_IDS)[number];
export const isIdpId = (v: string | undefined): v is IdpId => (IDP_IDS as readonly string[]).includes(v ?? '');

/** One thing to paste into the IdP: which value, under the name the IdP's screen gives its field. */
export interface PasteValue {
  key: SpValue;
  /** The IdP's own field name, e.g. Okta's "Sign-in redirect URIs". */
  label: string;
  optional?: boolean;
}

export interface GuideStep {
  title: string;
  body: Html;
  values?: PasteValue[];
}

/** What the admin types into Gatehouse, labelled as the IdP calls it. */
export interface FieldText {
  label: string;
  hint: Html;
  placeholder?: string;
}

export type GuideForm =
  | { protocol: 'oidc'; issuerUrl: FieldText; clientId: FieldText; clientSecret: FieldText; scopes?: boolean; allowedTenants?: FieldText }
  | { protocol: 'saml'; metadataXml: FieldText | null; metadataUrl: FieldText | null; manual: { entityId: FieldText; ssoUrl: FieldText; certificate: FieldText } };

export interface IdpGuide {
  id: IdpId;
  /** The name on the choice page and in headings. */
  name: string;
  /** One line under the name on the choice page. */
  summary: string;
  /** Gatehouse's `provider` value (PUT settings/sso); SAML guides send `protocol: "saml"` with it. */
  provider: string;
  /** Where the admin works, e.g. "the Okta Admin Console". */
  console: string;
  steps: GuideStep[];
  form: GuideForm;
}

/** A menu path as the IdP shows it: "Applications → Applications → Create App Integration". */
export function menu(...items: string[]) {
  return html`<span class="menu-path">${items.map((item, i) => html`${i ? ' → ' : ''}<strong>${item}</strong>`)}</span>`;
}
