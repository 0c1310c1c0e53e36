import type { HttpBindings } from '@hono/node-server';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import type { InteractionResults } from 'oidc-provider';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import type { AppEnv } from '../http/middleware.js';
import { listUserMemberships } from '../organizations/store.js';
import { ssoHref } from '../pages/layout.js';
import { PAGE_PATHS } from '../pages/routes.js';
import { amrOf } from '../sessions/amr.js';
import { SESSION_COOKIE, type SessionService } from '../sessions/service.js';
import { decideOrganization } from './organization.js';
import { consentPage, organizationPickerPage, PROVIDER_PAGE_CSP, providerErrorPage } from './pages.js';
import type { GatehouseSignIn } from './policy.js';
import type { OpenIdProvider } from './provider.js';
import { INTERACTION_PREFIX, interactionPath } from './urls.js';

/**
 * Gatehouse's own screens for the OpenID Provider's interactions (SPEC §8): the provider sends the
 * browser to /oidc/interaction/{uid} when it needs a sign-in, an organization or a consent.
 *
 *   no live Gatehouse session (or MFA pending) → /sign-in?returnTo=<this page>, then back here
 *   login          → the Gatehouse session signs the user in, no prompt (single sign-on across apps)
 *   organization   → the `organization` parameter, or the picker; membership and the organization's
 *                    policy decide (SSO-only: through its IdP first, then back here)
 *   consent        → third-party clients ask once per grant; first-party ones never get here
 *
 * Every result carries the login again, so the app's `sid` follows the Gatehouse session that
 * finished the interaction (an SSO detour makes a new one).
 */
export function registerInteractionRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: { db: Db; config: Config; sessions: SessionService; op: OpenIdProvider },
) {
  const { db, config } = deps;
  const trusted = new Set(config.trustedOrigins);

  const node = (c: Context) => {
    const env = c.env as Partial<HttpBindings> | undefined;
    if (!env?.incoming || !env.outgoing) throw new Error('the OpenID Provider interactions need the Node HTTP server');
    return { req: env.incoming, res: env.outgoing };
  };

  const page = async (c: Context, body: string | Promise<string>, status: 200 | 400 | 403 = 200) => {
    c.header('Content-Security-Policy', PROVIDER_PAGE_CSP);
    c.header('Cache-Control', 'no-store');
    return c.html(await body, status);
  };

  const expired = (c: Context) => page(c, providerErrorPage('interaction_expired', 'This sign-in has expired or was already finished. Go back to the app and start again.'), 400);

  async function signInOf(c: Context): Promise<GatehouseSignIn | null> {
    const token = getCookie(c, SESSION_COOKIE);
    const found = token ? await deps.sessions.authenticate(token) : null;
    return found && found.session.mfa_state !== 'pending' ? { user: found.user, session: found.session } : null;
  }

  const loginOf = (signIn: GatehouseSignIn): InteractionResults['login'] => ({
    accountId: signIn.user.id,
    ts: Math.floor(Date.parse(signIn.session.created_at) / 1000),
    amr: amrOf(signIn.session),
    remember: true,
  });

  /** Load the interaction (bound to its signed cookie) and the Gatehouse sign-in, or answer. */
  async function load(c: Context) {
    const uid = c.req.param('uid') ?? '';
    const provider = await deps.op.provider();
    const { req, res } = node(c);
    const details = await provider.interactionDetails(req, res).catch(() => null);
    if (!details || details.uid !== uid) return { answer: await expired(c) } as const;
    const signIn = await signInOf(c);
    if (!signIn) {
      c.header('Cache-Control', 'no-store');
      return { answer: c.redirect(`${PAGE_PATHS.signIn}?returnTo=${encodeURIComponent(interactionPath(uid))}`, 303) } as const;
    }
    return { provider, details, signIn, uid, req, res } as const;
  }

  async function finish(c: Context, loaded: Exclude<Awaited<ReturnType<typeof load>>, { answer: unknown }>, result: InteractionResults) {
    const to = await loaded.provider.interactionResult(loaded.req, loaded.res, result, { mergeWithLastSubmission: true });
    c.header('Cache-Control', 'no-store');
    return c.redirect(to, 303);
  }

  /** Settle the organization, or say where the browser goes instead. */
  async function organizationStep(c: Context, loaded: Exclude<Awaited<ReturnType<typeof load>>, { answer: unknown }>, wanted: string) {
    const decision = await decideOrganization(db, loaded.signIn, wanted);
    if (decision.kind === 'denied') return finish(c, loaded, { error: 'access_denied', error_description: decision.message });
    if (decision.kind === 'sso') {
      c.header('Cache-Control', 'no-store');
      return c.redirect(ssoHref(decision.ssoUrl, interactionPath(loaded.uid)), 303);
    }
    return finish(c, loaded, { login: loginOf(loaded.signIn), organization: { id: decision.organization.id } });
  }

  /** Grant what the consent prompt found missing, and resume the authorization. */
  async function grantConsent(c: Context, loaded: Exclude<Awaited<ReturnType<typeof load>>, { answer: unknown }>) {
    const { details, provider, signIn } = loaded;
    const clientId = String(details.params.client_id);
    const grant = (details.grantId ? await provider.Grant.find(details.grantId) : undefined) ?? new provider.Grant({ accountId: signIn.user.id, clientId });
    const missingScope = details.prompt.details.missingOIDCScope as string[] | undefined;
    const missingClaims = details.prompt.details.missingOIDCClaims as string[] | undefined;
    const missingResource = details.prompt.details.missingResourceScopes as Record<string, string[]> | undefined;
    if (missingScope?.length) grant.addOIDCScope(missingScope.join(' '));
    if (missingClaims?.length) grant.addOIDCClaims(missingClaims);
    for (const [indicator, scopes] of Object.entries(missingResource ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    return finish(c, loaded, { login: loginOf(signIn), consent: { grantId } });
  }

  /** Form posts come from this page only: the Origin must be Gatehouse's (login CSRF of a consent). */
  const fromUs = (c: Context) => {
    const origin = c.req.header('origin');
    return !!origin && trusted.has(origin);
  };

  app.get(`${INTERACTION_PREFIX}/:uid`, async (c) => {
    const loaded = await load(c);
    if ('answer' in loaded) return loaded.answer;
    const { details, signIn } = loaded;
    const prompt = details.prompt;
    if (prompt.name === 'login') {
      // prompt=login and max_age ask for a fresh authentication, which a standing session is not.
      const fresh = Date.parse(signIn.session.created_at) / 1000 >= (details.iat ?? 0);
      if (!fresh && (prompt.reasons.includes('login_prompt') || prompt.reasons.includes('max_age'))) {
        return finish(c, loaded, { error: 'login_required', error_description: 'The app asks for a fresh sign-in: sign out of Gatehouse and sign in again' });
      }
      return finish(c, loaded, { login: loginOf(signIn) });
    }
    if (prompt.name === 'organization') {
      const param = details.params.organization;
      if (typeof param === 'string' && param.trim()) return organizationStep(c, loaded, param);
      const client = await loaded.provider.Client.find(String(details.params.client_id));
      const organizations = await listUserMemberships(db, signIn.user.id);
      return page(c, organizationPickerPage({
        action: `${interactionPath(loaded.uid)}/organization`,
        clientName: client?.clientName ?? 'The app',
        organizations: organizations.map((o) => ({ id: o.organizationId, name: o.name, slug: o.slug, role: o.role })),
      }));
    }
    if (prompt.name === 'consent') {
      const client = await loaded.provider.Client.find(String(details.params.client_id));
      // First-party apps never ask (SPEC §8), not even for prompt=consent, which offline_access needs.
      if (client?.metadata()['gatehouse:first_party'] === true) return grantConsent(c, loaded);
      const missing = (prompt.details.missingOIDCScope as string[] | undefined) ?? String(details.params.scope ?? '').split(' ').filter(Boolean);
      return page(c, consentPage({ action: `${interactionPath(loaded.uid)}/consent`, clientName: client?.clientName ?? 'The app', scopes: missing, email: signIn.user.email }));
    }
    return finish(c, loaded, { error: 'invalid_request', error_description: `unsupported interaction ${prompt.name}` });
  });

  app.post(`${INTERACTION_PREFIX}/:uid/organization`, async (c) => {
    if (!fromUs(c)) return page(c, providerErrorPage('csrf_rejected', 'This form must be sent from the Gatehouse page.'), 403);
    const loaded = await load(c);
    if ('answer' in loaded) return loaded.answer;
    const form = await c.req.parseBody();
    if (form.cancel) return finish(c, loaded, { error: 'access_denied', error_description: 'The user cancelled the organization choice' });
    const wanted = typeof form.organization === 'string' ? form.organization : '';
    if (!wanted) return finish(c, loaded, { error: 'access_denied', error_description: 'No organization was chosen' });
    return organizationStep(c, loaded, wanted);
  });

  app.post(`${INTERACTION_PREFIX}/:uid/consent`, async (c) => {
    if (!fromUs(c)) return page(c, providerErrorPage('csrf_rejected', 'This form must be sent from the Gatehouse page.'), 403);
    const loaded = await load(c);
    if ('answer' in loaded) return loaded.answer;
    if (loaded.details.prompt.name !== 'consent') return expired(c);
    const form = await c.req.parseBody();
    if (form.decision !== 'allow') return finish(c, loaded, { error: 'access_denied', error_description: 'The user denied the request' });
    return grantConsent(c, loaded);
  });
}
