import type { MfaState, SsoProtocol } from '../db/schema.js';
import type { AccountService } from '../users/service.js';
import type { EmailLinkService } from '../auth/email-links.js';
import { AppError } from '../http/errors.js';
import type { SsoCompletion } from '../sso/completion.js';
import { SsoLoginError } from '../sso/errors.js';
import type { SignInMethod, SignInResult } from './definitions.js';
import type { Metrics } from './registry.js';

/**
 * Sign-ins are counted at the services' own entry points, once per attempt, by how the attempt
 * ended for the caller: after its transaction committed or with the error the caller gets. (The
 * audit log is no exact source: a failed SSO login is written twice on a mix-up — for both
 * organizations — and no more once the `sso-failure:ip` limit is reached, and a spent magic link
 * is not written at all.)
 */

/** What a sign-in that threw counts as. */
export function signInResultOf(error: unknown): SignInResult {
  if (error instanceof SsoLoginError) return 'failure';
  if (error instanceof AppError) {
    if (error.code === 'RATE_LIMITED') return 'rate_limited';
    if (error.code === 'SSO_REQUIRED') return 'sso_required';
    return error.status < 500 ? 'failure' : 'error';
  }
  return 'error';
}

const signedIn = (session: { mfa_state: MfaState }): SignInResult => (session.mfa_state === 'pending' ? 'mfa_required' : 'success');

function counted<A extends unknown[], R extends { session: { mfa_state: MfaState } }>(metrics: Pick<Metrics, 'signIn'>, method: SignInMethod, signIn: (...args: A) => Promise<R>) {
  return async (...args: A): Promise<R> => {
    try {
      const result = await signIn(...args);
      metrics.signIn(method, signedIn(result.session));
      return result;
    } catch (e) {
      metrics.signIn(method, signInResultOf(e));
      throw e;
    }
  };
}

/** Password sign-in (POST /api/auth/sign-in/email). */
export const countPasswordSignIns = (accounts: AccountService, metrics: Pick<Metrics, 'signIn'>): AccountService => ({
  ...accounts,
  signIn: counted(metrics, 'password', accounts.signIn),
});

/** Magic-link sign-in (POST /api/auth/magic-link/verify). */
export const countMagicLinkSignIns = (emailLinks: EmailLinkService, metrics: Pick<Metrics, 'signIn'>): EmailLinkService => ({
  ...emailLinks,
  verifyMagicLink: counted(metrics, 'magic_link', emailLinks.verifyMagicLink),
});

/**
 * SSO: completion.ts is the end of every OIDC callback and SAML ACS — `signIn` on success, and
 * `recordFailure` for every failure, before its rate limit (so failures past `sso-failure:ip`
 * still count). A failure reported for two organizations (an OIDC mix-up) counts once.
 */
export function countSsoSignIns(completion: SsoCompletion, metrics: Pick<Metrics, 'signIn' | 'ssoFailure'>): SsoCompletion {
  const seen = new WeakSet<object>();
  return {
    ...completion,
    async signIn(meta, login) {
      const result = await completion.signIn(meta, login);
      metrics.signIn(`sso_${login.connection.protocol}`, 'success');
      return result;
    },
    async recordFailure(meta, protocol, e, where) {
      const object = typeof e === 'object' && e !== null ? e : null;
      if (!object || !seen.has(object)) {
        if (object) seen.add(object);
        metrics.signIn(`sso_${protocol}`, signInResultOf(e));
        if (e instanceof SsoLoginError) metrics.ssoFailure(protocol, e.reason);
      }
      return completion.recordFailure(meta, protocol, e, where);
    },
  };
}

/**
 * SSO login starts (SP-initiated `/login`, IdP-initiated `/initiate`): a refusal there — no
 * active connection for the slug, a disabled connection, discovery or PAR failing, an untrusted
 * target — is no SSO login yet (no sign-in is counted), but an IdP whose discovery is down shows
 * up here first. A slug with no active connection at all is answered by the OIDC start, so it
 * counts as `oidc` / `sso_not_configured`.
 */
export function countSsoLoginStartFailures<L extends object, K extends keyof L & string>(login: L, protocol: SsoProtocol, methods: readonly K[], metrics: Pick<Metrics, 'ssoLoginStartFailure'>): L {
  const wrapped: Partial<L> = {};
  for (const name of methods) {
    const start = login[name] as unknown as (...args: unknown[]) => Promise<unknown>;
    wrapped[name] = (async (...args: unknown[]) => {
      try {
        return await start(...args);
      } catch (e) {
        if (e instanceof SsoLoginError) metrics.ssoLoginStartFailure(protocol, e.reason);
        throw e;
      }
    }) as L[K];
  }
  return { ...login, ...wrapped };
}
