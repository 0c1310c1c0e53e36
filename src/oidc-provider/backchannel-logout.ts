import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { OutboundFetch } from '../sso/outbound.js';
import type { SigningKeys } from '../tokens/signing-keys.js';

/** Back-Channel Logout 1.0 §2.4 event member. */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** SPEC §8: a logout token lives at most 2 minutes. */
export const LOGOUT_TOKEN_TTL_SECONDS = 120;

export interface BackchannelDeps {
  config: Pick<Config, 'baseUrl'>;
  clock: Clock;
  logger: Logger;
  signingKeys: Pick<SigningKeys, 'sign'>;
  /** SSRF-guarded (loopback only with GATEHOUSE_ALLOW_LOOPBACK_IDPS=true). */
  outbound: OutboundFetch;
}

/** The logout token for one client (Back-Channel Logout 1.0 §2.4; header typ logout+jwt). */
export async function logoutToken(deps: Pick<BackchannelDeps, 'config' | 'clock' | 'signingKeys'>, input: { clientId: string; sub: string; sid: string }): Promise<string> {
  const iat = Math.floor(deps.clock.now().getTime() / 1000);
  return deps.signingKeys.sign(
    {
      iss: deps.config.baseUrl,
      aud: input.clientId,
      iat,
      exp: iat + LOGOUT_TOKEN_TTL_SECONDS,
      jti: randomUUID(),
      sub: input.sub,
      sid: input.sid,
      events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
    },
    'logout+jwt',
  );
}

/**
 * POST the logout token to the client's backchannel_logout_uri (form `logout_token`); 200 or 204
 * is success (§2.8). Throws on any other answer, so the caller can retry (logout/outbox in #13).
 */
export async function deliverBackchannelLogout(deps: BackchannelDeps, input: { clientId: string; uri: string; sub: string; sid: string }): Promise<void> {
  const token = await logoutToken(deps, input);
  const res = await deps.outbound(input.uri, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }).toString(),
  });
  if (res.status !== 200 && res.status !== 204) {
    deps.logger.warn({ clientId: input.clientId, status: res.status }, 'back-channel logout refused by the client');
    throw new Error(`back-channel logout to client ${input.clientId} answered ${res.status}`);
  }
}
