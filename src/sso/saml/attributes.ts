import type { AttributeMapping, SamlMappedField } from '../connections/model.js';
import type { SsoProfile } from '../provisioning.js';

const CLAIMS = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims';
const MS_CLAIMS = 'http://schemas.microsoft.com/ws/2008/06/identity/claims';

/** SPEC §11 default attribute names (Okta, Entra ID, Google Workspace, OneLogin, LDAP OIDs), first present wins. */
export const DEFAULT_ATTRIBUTES: Record<SamlMappedField, string[]> = {
  email: ['email', 'mail', `${CLAIMS}/emailaddress`, 'urn:oid:0.9.2342.19200300.100.1.3'],
  firstName: ['firstName', 'givenName', `${CLAIMS}/givenname`, 'urn:oid:2.5.4.42'],
  lastName: ['lastName', 'sn', `${CLAIMS}/surname`, 'urn:oid:2.5.4.4'],
  name: ['displayName', 'name', 'http://schemas.microsoft.com/identity/claims/displayname'],
  groups: ['groups', 'memberOf', `${MS_CLAIMS}/groups`, `${CLAIMS}/groups`],
};

export const EMAIL_NAMEID_FORMAT = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';

export interface SignedAssertionValues {
  nameId: string | null;
  nameIdFormat: string | null;
  /** Attribute name → values, in document order. */
  attributes: Record<string, string[]>;
}

export const attributeNames = (mapping: AttributeMapping, field: SamlMappedField): string[] => mapping[field] ?? DEFAULT_ATTRIBUTES[field];

function first(values: SignedAssertionValues, names: string[]): string | null {
  for (const n of names) {
    const v = values.attributes[n]?.find((x) => x.trim() !== '');
    if (v !== undefined) return v.trim();
  }
  return null;
}

/**
 * The SsoProfile handed to provisioning, built only from values of the signed assertion.
 * Subject: the NameID (any format). Email: the NameID when its format is emailAddress and no
 * email attribute is mapped explicitly, else the first present mapped attribute.
 */
export function profileFromAssertion(mapping: AttributeMapping, values: SignedAssertionValues): SsoProfile & { subject: string } {
  let email = mapping.email ? first(values, mapping.email) : null;
  if (!email && !mapping.email && values.nameIdFormat === EMAIL_NAMEID_FORMAT && values.nameId) email = values.nameId;
  if (!email && !mapping.email) email = first(values, DEFAULT_ATTRIBUTES.email);
  const firstName = first(values, attributeNames(mapping, 'firstName'));
  const lastName = first(values, attributeNames(mapping, 'lastName'));
  const name = first(values, attributeNames(mapping, 'name')) ?? ([firstName, lastName].filter(Boolean).join(' ') || null);
  const groups = attributeNames(mapping, 'groups').flatMap((n) => values.attributes[n] ?? []);
  return {
    subject: values.nameId ?? '',
    email,
    emailVerified: null,
    name,
    claims: {
      nameId: values.nameId,
      nameIdFormat: values.nameIdFormat,
      email,
      firstName,
      lastName,
      name,
      ...(groups.length ? { groups } : {}),
      attributes: values.attributes,
    },
  };
}
