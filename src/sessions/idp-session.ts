import { z } from 'zod';
import type { KeyRing } from '../crypto/keyring.js';
import { sealContext } from '../crypto/sealed-columns.js';
import type { SessionRow } from '../db/schema.js';

/**
 * What an SSO session keeps of the IdP session it came from, so that it can be ended from
 * outside (back-channel logout, SAML Single Logout) and end the IdP session in turn
 * (`signOutOfIdp`). The ids used for matching are plain indexed columns (`identity_id`,
 * `idp_session_id`); what only signing out of the IdP needs is sealed (`idp_logout_enc`): an ID
 * token is a bearer credential at the IdP's end_session_endpoint, and a NameID may be an email.
 */
const idpLogoutHint = z.discriminatedUnion('protocol', [
  z.object({ protocol: z.literal('oidc'), idToken: z.string() }),
  z.object({
    protocol: z.literal('saml'),
    nameId: z.string(),
    nameIdFormat: z.string().nullable(),
    nameQualifier: z.string().nullable(),
    spNameQualifier: z.string().nullable(),
    sessionIndex: z.string().nullable(),
  }),
]);
export type IdpLogoutHint = z.infer<typeof idpLogoutHint>;

/** What the SSO login hands to the new session. */
export interface IdpSession {
  identityId: string;
  /** OIDC: the ID token's `sid`; SAML: the AuthnStatement's SessionIndex. */
  sessionId: string | null;
  logoutHint: IdpLogoutHint | null;
}

const COLUMN = { table: 'sessions', column: 'idp_logout_enc' } as const;

export function sealIdpLogoutHint(keyring: KeyRing, sessionId: string, hint: IdpLogoutHint): string {
  return keyring.encrypt(JSON.stringify(hint), sealContext(COLUMN, sessionId));
}

/** The session's logout hint, or null (not an SSO session, or one from before migration 0004). */
export function openIdpLogoutHint(keyring: KeyRing, session: Pick<SessionRow, 'id' | 'idp_logout_enc'>): IdpLogoutHint | null {
  if (!session.idp_logout_enc) return null;
  return idpLogoutHint.parse(JSON.parse(keyring.decrypt(session.idp_logout_enc, sealContext(COLUMN, session.id))));
}
