import { MINUTE, type Clock } from '../../clock.js';
import type { Config } from '../../config.js';
import type { RequestMeta } from '../../context.js';
import type { Db, Executor } from '../../db/database.js';
import type { OrganizationRow } from '../../db/schema.js';
import { safeEqual, sha256 } from '../../crypto/tokens.js';
import { checkReturnTo } from '../../http/return-to.js';
import { parseConnection, type Connection, type SamlConfig } from '../connections/model.js';
import type { ConnectionService } from '../connections/service.js';
import { findActiveConnectionBySlug, type ConnectionWithOrganization } from '../connections/store.js';
import { SsoLoginError } from '../errors.js';
import { FlowError, type FlowRow, type FlowService } from '../flows.js';
import type { SsoProfile } from '../provisioning.js';
import type { SsoCompletion, SsoLoginResult } from '../completion.js';
import * as acs from './acs-checks.js';
import { profileFromAssertion } from './attributes.js';
import { buildAuthnRequest, spMetadataXml, type SpDescriptor } from './sp.js';
import { samlUrls } from './urls.js';
import { isReplayKeyLive, purgeExpiredReplayKeys, recordReplayKey } from './store.js';


const replayed = () => new SsoLoginError('replayed', 'This SAML assertion was already used: start the sign-in again');

/** AuthnRequest IDs are `_` + the flow handle (an xs:ID must not start with a digit or `-`). */
const REQUEST_ID_PREFIX = '_';

export type SamlLoginStart = { kind: 'redirect'; url: string } | { kind: 'post'; url: string; fields: Record<string, string> };

export function createSamlLogin(deps: {
  db: Db;
  clock: Clock;
  config: Pick<Config, 'baseUrl' | 'trustedOrigins'>;
  connections: ConnectionService;
  flows: FlowService;
  completion: SsoCompletion;
}) {
  const { db, clock } = deps;
  let lastPurge = 0;
  const validators = acs.createSamlValidators();

  /** `options.read`: the caller's own read of the same slug's active connection (see connections.activeForSlug). */
  async function activeSamlConnection(slug: string, options: { evenDisabled?: boolean; read?: ConnectionWithOrganization | undefined } = {}): Promise<{ org: OrganizationRow; connection: Connection; saml: SamlConfig }> {
    const found = options.read ?? (await findActiveConnectionBySlug(db, slug));
    const org = found?.organization;
    const connection = found ? parseConnection(found.connection) : null;
    if (!org || !connection || !connection.saml) throw new SsoLoginError('connection_not_found', `No SAML connection is configured for "${slug.slice(0, 64)}"`);
    if (!connection.enabled && !options.evenDisabled) throw new SsoLoginError('connection_disabled', `SSO for ${org.name} is disabled by its administrator`);
    return { org, connection, saml: connection.saml };
  }

  function sp(org: OrganizationRow, connection: Connection, saml: SamlConfig): SpDescriptor {
    const urls = samlUrls(deps.config.baseUrl, org.slug, saml.spEntityId);
    return { spEntityId: urls.spEntityId, acsUrl: urls.acsUrl, sloUrl: urls.sloUrl, certificatePem: saml.spCertificate, privateKey: () => deps.connections.spPrivateKey(connection), signAuthnRequests: saml.signAuthnRequests };
  }

  /** The checks of acs-checks.ts in order; returns the verified values. */
  async function verify(body: { SAMLResponse?: string | undefined }, x: acs.AcsExpectations) {
    const decoded = acs.decodeResponse(body.SAMLResponse);
    let parsed = acs.parseResponse(decoded);
    acs.checkStatus(parsed);
    parsed = acs.checkAssertionCount(parsed);
    parsed = await acs.decryptAssertion(parsed, x.spPrivateKey);
    acs.refuseWeakAlgorithms(parsed);
    const signed = acs.requireSignature(parsed);
    const signedXml = await acs.verifySignature(parsed, signed, x);
    const assertion = acs.readSignedAssertion(signedXml);
    acs.checkIssuer(parsed, assertion, x);
    acs.checkDestination(parsed, signed.responseSigned, x);
    const confirmation = acs.checkRecipient(assertion, x);
    acs.checkAudience(assertion, x);
    const validUntil = acs.checkTimes(assertion, confirmation, x);
    const subject = acs.readSubject(assertion);
    const logout = acs.readLogoutHint(assertion);
    return {
      logoutHint: { protocol: 'saml' as const, nameId: subject.nameId, nameIdFormat: subject.nameIdFormat, ...logout },
      assertionId: acs.assertionId(assertion),
      inResponseTo: acs.readInResponseTo(parsed, confirmation, signed.responseSigned),
      validUntil,
      nameId: subject.nameId,
      nameIdFormat: subject.nameIdFormat,
      attributes: acs.readAttributes(assertion),
    };
  }

  /** SP-initiated (a pending flow of this connection and config version) or IdP-initiated (allowed, no InResponseTo). */
  async function resolveRequest(connection: Connection, inResponseTo: string | null, relayState: string | undefined, browserBinding: string | undefined, now: Date): Promise<{ flow: FlowRow | null; returnTo: string; idpInitiated: boolean }> {
    if (!inResponseTo) {
      if (!connection.allowIdpInitiated) {
        throw new SsoLoginError('unsolicited_not_allowed', 'The IdP sent a sign-in Gatehouse did not ask for (IdP-initiated), and this connection does not allow IdP-initiated sign-in: start from the login URL, or turn on allowIdpInitiated');
      }
      let returnTo = '/';
      try {
        returnTo = checkReturnTo(relayState || undefined, deps.config.trustedOrigins, 'RelayState');
      } catch {
        returnTo = '/';
      }
      return { flow: null, returnTo, idpInitiated: true };
    }
    const unknown = () => new SsoLoginError('in_response_to_unknown', 'This response answers no pending sign-in of this connection (unknown, already used, expired, or started before the SSO settings changed): start the sign-in again');
    if (!inResponseTo.startsWith(REQUEST_ID_PREFIX)) throw unknown();
    const flow = await deps.flows.peek(inResponseTo.slice(REQUEST_ID_PREFIX.length));
    if (!flow || flow.protocol !== 'saml' || flow.connection_id !== connection.id || flow.organization_id !== connection.organizationId || flow.config_version !== connection.configVersion || flow.consumed_at || flow.expires_at <= now.toISOString()) throw unknown();
    if (flow.browser_binding_hash && !(browserBinding && safeEqual(sha256(browserBinding), flow.browser_binding_hash))) {
      throw new SsoLoginError('browser_mismatch', 'This sign-in was started in another browser (or its cookie was lost). Start the sign-in again from this browser.');
    }
    return { flow, returnTo: flow.return_to, idpInitiated: false };
  }

  /** Spend a refused response's assertion ID and request outside the rolled-back transaction; already spent is fine. */
  async function spendRefused(consume: (exec: Executor) => Promise<void>) {
    try {
      await consume(db);
    } catch (e) {
      if (!(e instanceof SsoLoginError)) throw e;
    }
  }

  return {
    async startLogin(slug: string, input: { returnTo?: string | undefined; loginHint?: string | undefined; browserBinding?: string | null }, read?: ConnectionWithOrganization): Promise<SamlLoginStart> {
      const returnTo = checkReturnTo(input.returnTo, deps.config.trustedOrigins);
      const { org, connection, saml } = await activeSamlConnection(slug, { read });
      const { handle } = await deps.flows.start(connection, { returnTo, loginHint: input.loginHint?.slice(0, 320) || null, browserBinding: input.browserBinding ?? null });
      const request = await buildAuthnRequest(sp(org, connection, saml), { ssoUrl: saml.idpSsoUrl, certificates: saml.idpCertificates }, saml.authnRequestBinding, REQUEST_ID_PREFIX + handle);
      return request.binding === 'redirect' ? { kind: 'redirect', url: request.url } : { kind: 'post', url: request.url, fields: request.fields };
    },

    /** SP metadata; served while the connection is disabled too, so the IdP can be set up before it is switched on. */
    async metadata(slug: string): Promise<string> {
      const { org, connection, saml } = await activeSamlConnection(slug, { evenDisabled: true });
      return spMetadataXml(sp(org, connection, saml));
    },

    /**
     * The ACS: every check of acs-checks.ts in order, then — in one transaction — the replay cache
     * and the flow (both atomic, both only for a response that passed every check), provisioning
     * and the session.
     */
    async acs(slug: string, body: { rawLength: number; SAMLResponse?: string | undefined; RelayState?: string | undefined; browserBinding?: string | undefined }, meta: RequestMeta): Promise<SsoLoginResult> {
      let organizationId: string | null = null;
      let connectionId: string | null = null;
      let consume: ((exec: Executor) => Promise<void>) | null = null;
      try {
        acs.checkSize(body.rawLength);
        const { org, connection, saml } = await activeSamlConnection(slug);
        organizationId = org.id;
        connectionId = connection.id;
        const now = clock.now();
        const spd = sp(org, connection, saml);
        const verified = await verify(body, { idpEntityId: saml.idpEntityId, idpCertificates: saml.idpCertificates, spEntityId: spd.spEntityId, acsUrl: spd.acsUrl, spPrivateKey: spd.privateKey, now, validators });

        const replayKey = `saml:${connection.id}:${verified.assertionId}`;
        const request = await resolveRequest(connection, verified.inResponseTo, body.RelayState, body.browserBinding, now).catch(async (e: unknown) => {
          // A replayed response finds its request spent: it is refused as what it is. (A good
          // response is not looked up here: the atomic insert below refuses a replay as well.)
          if (e instanceof SsoLoginError && (await isReplayKeyLive(db, replayKey, now.toISOString()))) throw replayed();
          throw e;
        });

        if (now.getTime() - lastPurge > 10 * MINUTE) {
          lastPurge = now.getTime();
          await purgeExpiredReplayKeys(db, now.toISOString());
        }
        // Every check passed: the assertion ID and the request are spent with the session, in its
        // transaction (SPEC §12: a server-side failure spends neither, so the browser's reload
        // posts the same response again), each atomically on every instance.
        consume = async (exec: Executor) => {
          if (!(await recordReplayKey(exec, replayKey, verified.validUntil.toISOString(), now.toISOString()))) throw replayed();
          if (request.flow) {
            try {
              await deps.flows.consumeFound(request.flow, exec);
            } catch (e) {
              if (e instanceof FlowError) throw new SsoLoginError('in_response_to_unknown', 'This response answers no pending sign-in of this connection (already used or expired): start the sign-in again');
              throw e;
            }
          }
        };

        const profile: SsoProfile = profileFromAssertion(saml.attributeMapping, verified);
        return await deps.completion.signIn(meta, { connection, org, profile, returnTo: request.returnTo, details: { idpInitiated: request.idpInitiated }, consume,
          idpSession: { sessionId: verified.logoutHint.sessionIndex, logoutHint: verified.logoutHint } });
      } catch (e) {
        // A refusal after every check passed (provisioning, or the other of two concurrent posts)
        // still spends the response; its transaction was rolled back, so spend it here.
        if (consume && e instanceof SsoLoginError) await spendRefused(consume);
        await deps.completion.recordFailure(meta, 'saml', e, { organizationId, connectionId });
        throw e;
      }
    },
  };
}

export type SamlLogin = ReturnType<typeof createSamlLogin>;
