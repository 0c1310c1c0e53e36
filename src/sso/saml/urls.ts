/** The SAML URLs of an organization (SPEC §4.3, §11), all built from the base URL and the slug. */
export function samlUrls(baseUrl: string, slug: string, spEntityId: string | null) {
  const root = `${baseUrl}/api/auth/sso/${slug}`;
  return { acsUrl: `${root}/saml/acs`, sloUrl: `${root}/saml/slo`, spMetadataUrl: `${root}/saml/metadata`, spEntityId: spEntityId ?? `${root}/saml/metadata` };
}
