import type { KoaContextWithOIDC } from 'oidc-provider';
import type { OidcProviderModule } from './load.js';
import type { Db } from '../db/database.js';
import type { OrganizationRow, Role, SessionRow, UserRow } from '../db/schema.js';
import { SESSION_COOKIE, type SessionService } from '../sessions/service.js';
import { decideOrganization } from './organization.js';


/**
 * The provider's prompt policy: oidc-provider's own `login` and `consent` prompts, with Gatehouse's
 * rules added. The Gatehouse session is the authority; the provider's session only mirrors it.
 *
 *   login         1. gatehouse_session  a live Gatehouse session (cookie) of the same user, MFA not
 *                                       pending — else the browser signs in at /sign-in first. Binds
 *                                       the app's `sid` to that Gatehouse session (ID tokens, logout
 *                                       tokens and every provider token carry it; adapter.ts refuses
 *                                       a token whose session ended).
 *                 2… oidc-provider's own (no_session, max_age, id_token_hint, …)
 *   organization  1. organization_choice  scope `organization` without an `organization` parameter → picker
 *                 2. organization_policy  membership (else access_denied) and the organization's policy
 *                                         (SSO-only → through its IdP; MFA missing → access_denied)
 *   consent       oidc-provider's own (first-party clients get their grant in loadExistingGrant)
 */

export interface GatehouseSignIn {
  user: UserRow;
  session: SessionRow;
}

export interface ChosenOrganization {
  organization: OrganizationRow;
  role: Role;
}

/** Per-request memo: the Gatehouse session read from the cookie, and the organization chosen. */
const signIns = new WeakMap<object, Promise<GatehouseSignIn | null>>();
const chosen = new WeakMap<object, ChosenOrganization>();

/** The live Gatehouse session of the browser behind this provider request (its MFA complete or not needed). */
export function gatehouseSignIn(ctx: KoaContextWithOIDC, sessions: Pick<SessionService, 'authenticate'>): Promise<GatehouseSignIn | null> {
  let found = signIns.get(ctx);
  if (!found) {
    const token = ctx.cookies.get(SESSION_COOKIE, { signed: false });
    found = token
      ? sessions.authenticate(token).then((r) => (r && r.session.mfa_state !== 'pending' ? { user: r.user, session: r.session } : null))
      : Promise.resolve(null);
    signIns.set(ctx, found);
  }
  return found;
}

/** The organization this authorization request settled on (scope `organization`), if any. */
export function chosenOrganization(ctx: object | undefined): ChosenOrganization | null {
  return ctx ? (chosen.get(ctx) ?? null) : null;
}

/** The organization the request asks for: the interaction's choice first, then the parameter. */
function wantedOrganization(ctx: KoaContextWithOIDC): string | null {
  const result = ctx.oidc.result as { organization?: { id?: unknown } } | undefined;
  if (typeof result?.organization?.id === 'string') return result.organization.id;
  const param = ctx.oidc.params?.organization;
  return typeof param === 'string' && param.trim() ? param : null;
}

const asksForOrganization = (ctx: KoaContextWithOIDC) => (ctx.oidc.requestParamScopes as Set<string>).has('organization');

export function buildPromptPolicy(oidc: OidcProviderModule, deps: { db: Db; sessions: Pick<SessionService, 'authenticate'> }) {
  const { Check, Prompt, base } = oidc.interactionPolicy;
  const { errors } = oidc;
  const policy = base();
  const login = policy.get('login')!;
  login.checks.add(
    // 'login_required' (OIDC Core §3.1.2.6) is what prompt=none answers without a sign-in, as
    // oidc-provider's own login checks do; without it the answer would be interaction_required.
    new Check('gatehouse_session', 'A Gatehouse sign-in is required', 'login_required', async (ctx) => {
      const signIn = await gatehouseSignIn(ctx, deps.sessions);
      const session = ctx.oidc.session!;
      if (!signIn || session.accountId !== signIn.user.id) return Check.REQUEST_PROMPT;
      const clientId = ctx.oidc.client!.clientId;
      if (session.sidFor(clientId) !== signIn.session.id) {
        session.sidFor(clientId, signIn.session.id);
        (session as unknown as { touched: boolean }).touched = true;
      }
      return Check.NO_NEED_TO_PROMPT;
    }),
    0,
  );

  const organization = new Prompt(
    { name: 'organization', requestable: false },
    new Check('organization_choice', 'The app asks for an organization', (ctx) =>
      asksForOrganization(ctx) && !wantedOrganization(ctx) ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT,
    ),
    new Check('organization_policy', "The organization's sign-in policy applies", async (ctx) => {
      if (!asksForOrganization(ctx)) return Check.NO_NEED_TO_PROMPT;
      const wanted = wantedOrganization(ctx);
      const signIn = await gatehouseSignIn(ctx, deps.sessions);
      if (!wanted || !signIn) return Check.REQUEST_PROMPT;
      const decision = await decideOrganization(deps.db, signIn, wanted);
      if (decision.kind === 'denied') throw new errors.AccessDenied(decision.message);
      if (decision.kind === 'sso') return Check.REQUEST_PROMPT;
      chosen.set(ctx, { organization: decision.organization, role: decision.role });
      return Check.NO_NEED_TO_PROMPT;
    }),
  );
  policy.add(organization, policy.findIndex((p) => p.name === 'consent'));
  return policy;
}
