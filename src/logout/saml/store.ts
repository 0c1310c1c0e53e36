import type { Executor } from '../../db/database.js';
import type { SessionRow } from '../../db/schema.js';

/** The live sessions an SSO identity opened (SAML Single Logout compares their stored NameID). */
export async function liveSessionsOfIdentity(db: Executor, identityId: string): Promise<Array<Pick<SessionRow, 'id' | 'idp_logout_enc' | 'idp_session_id'>>> {
  return db.selectFrom('sessions').select(['id', 'idp_logout_enc', 'idp_session_id']).where('identity_id', '=', identityId).where('revoked_at', 'is', null).execute();
}
