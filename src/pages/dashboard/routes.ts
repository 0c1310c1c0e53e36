import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { getCookie } from 'hono/cookie';
import { html } from 'hono/html';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Config } from '../../config.js';
import type { Ctx } from '../../context.js';
import { AppError } from '../../http/errors.js';
import { clientIp, type AppEnv } from '../../http/middleware.js';
import type { Services } from '../../services.js';
import { SESSION_COOKIE } from '../../sessions/service.js';
import { sendPage } from '../layout.js';
import { accountSection } from './account.js';
import { apiKeysSection } from './api-keys.js';
import { auditSection } from './audit.js';
import { domainsSection } from './domains.js';
import { can, dashboardLayout, SECTIONS, sectionHref, visibleSections, type Html, type OrgScope, type SectionId, type Viewer, withPageIds } from './frame.js';
import { identitiesSection } from './identities.js';
import { membersSection } from './members.js';
import { createOrganizationForm } from './home.js';
import { securitySection } from './security.js';
import { setupLinksSection } from './setup-links.js';
import type { SectionInput, SectionPage } from './section.js';
import { ssoSection } from './sso.js';

const ORG_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

const RENDERERS: Record<SectionId, (input: SectionInput) => Promise<SectionPage>> = {
  sso: ssoSection,
  domains: domainsSection,
  security: securitySection,
  members: membersSection,
  identities: identitiesSection,
  'api-keys': apiKeysSection,
  audit: auditSection,
  'setup-links': setupLinksSection,
};

/** The section an organization opens on: the first one the viewer's role may use. */
function defaultSection(org: OrgScope): SectionId {
  return visibleSections(org)[0]?.id ?? 'members';
}

/** Words and a way forward for a service refusal shown as a page (never a 500). */
function refusalBody(e: AppError): Html {
  const ssoUrl = typeof e.details?.ssoUrl === 'string' ? e.details.ssoUrl : null;
  const next: Record<string, Html> = {
    SSO_REQUIRED: html`<p>This organization requires you to sign in through its single sign-on.</p>${ssoUrl ? html`<p><a class="button" href="${ssoUrl}">Sign in with SSO</a></p>` : ''}`,
    MFA_REQUIRED: html`<p>This organization requires two-step verification for this session. <a href="/sign-in?returnTo=/dashboard">Verify now</a> or set it up under <a href="/dashboard/account">My account</a>.</p>`,
    MFA_ENROLLMENT_REQUIRED: html`<p>This organization requires two-step verification. Set it up under <a href="/dashboard/account">My account</a>, then come back.</p>`,
    NOT_FOUND: html`<p>There is nothing here, or you are not a member of this organization. <a href="/dashboard">Back to the dashboard</a>.</p>`,
    FORBIDDEN: html`<p>Your role does not allow this. <a href="/dashboard">Back to the dashboard</a>.</p>`,
  };
  return next[e.code] ?? html`<p><a href="/dashboard">Back to the dashboard</a>.</p>`;
}

/** `/dashboard` (SPEC §5): the organization admin's console, server-rendered; every write goes through the REST API from dashboard.js. */
export function registerDashboardPages(app: OpenAPIHono<AppEnv>, services: Services, config: Config): void {
  /** The signed-in user and the request facts, or null (no session, or its second factor still pending). */
  async function signedIn(c: Context<AppEnv>): Promise<{ ctx: Ctx; viewer: Viewer } | null> {
    const token = getCookie(c, SESSION_COOKIE);
    const current = token ? await services.sessions.authenticate(token) : null;
    if (!current || current.session.mfa_state === 'pending') return null;
    const ctx: Ctx = {
      principal: { kind: 'session', user: current.user, session: current.session },
      ip: clientIp(c),
      userAgent: c.req.header('user-agent') ?? null,
      requestId: c.get('requestId'),
    };
    const orgs = await services.organizations.listMinePage(ctx, { limit: 100, cursor: null });
    return {
      ctx,
      viewer: { userId: current.user.id, email: current.user.email, name: current.user.name, organizations: orgs.items, baseUrl: config.baseUrl },
    };
  }

  const toSignIn = (c: Context<AppEnv>) => {
    const here = c.req.path + (new URL(c.req.url).search || '');
    c.header('Cache-Control', 'no-store');
    return c.redirect(`/sign-in?returnTo=${encodeURIComponent(here)}`, 302);
  };

  const errorPage = (c: Context<AppEnv>, viewer: Viewer, org: OrgScope | null, e: AppError) =>
    sendPage(c, dashboardLayout({ title: e.status === 404 ? 'Not found' : 'Not allowed', viewer, org, current: 'home', body: refusalBody(e), error: e.message }), e.status as ContentfulStatusCode);

  app.get('/dashboard', async (c) => {
    const who = await signedIn(c);
    if (!who) return toSignIn(c);
    const wanted = c.req.query('org');
    const first = who.viewer.organizations.find((o) => o.id === wanted) ?? who.viewer.organizations[0];
    if (first) {
      c.header('Cache-Control', 'no-store');
      return c.redirect(`/dashboard/${first.id}`, 302);
    }
    return sendPage(c, dashboardLayout({ title: 'Welcome', viewer: who.viewer, org: null, current: 'home', body: await withPageIds(async () => createOrganizationForm()) }));
  });

  app.get('/dashboard/account', async (c) => {
    const who = await signedIn(c);
    if (!who) return toSignIn(c);
    try {
      const page = await withPageIds(() => accountSection({ services, ctx: who.ctx, viewer: who.viewer, query: (k) => c.req.query(k) }));
      return sendPage(c, dashboardLayout({ title: page.title, viewer: who.viewer, org: null, current: 'account', body: page.body }));
    } catch (e) {
      if (!(e instanceof AppError) || e.status >= 500) throw e;
      return errorPage(c, who.viewer, null, e);
    }
  });

  const section = async (c: Context<AppEnv>, orgId: string, sectionId: string | null) => {
    const who = await signedIn(c);
    if (!who) return toSignIn(c);
    const notFound = new AppError('NOT_FOUND', 'Organization not found');
    if (!ORG_ID.test(orgId)) return errorPage(c, who.viewer, null, notFound);
    let org: OrgScope;
    try {
      const o = await services.organizations.get(who.ctx, orgId);
      const superadmin = who.ctx.principal?.user.is_superadmin === 1;
      org = { id: o.id, name: o.name, slug: o.slug, role: o.role ?? null, superadmin };
    } catch (e) {
      if (!(e instanceof AppError) || e.status >= 500) throw e;
      return errorPage(c, who.viewer, null, e);
    }
    if (sectionId === null) {
      c.header('Cache-Control', 'no-store');
      return c.redirect(sectionHref(org.id, defaultSection(org)), 302);
    }
    const def = SECTIONS.find((s) => s.id === sectionId);
    if (!def) return errorPage(c, who.viewer, org, new AppError('NOT_FOUND', 'No such section of the dashboard'));
    if (def.needs !== null && !can(org, def.needs)) {
      return errorPage(c, who.viewer, org, new AppError('FORBIDDEN', `Your role (${org.role ?? 'none'}) does not allow the ${def.label} section`));
    }
    try {
      const page = await withPageIds(() => RENDERERS[def.id]({ services, ctx: who.ctx, viewer: who.viewer, org, query: (k) => c.req.query(k) }));
      return sendPage(c, dashboardLayout({ title: page.title, viewer: who.viewer, org, current: def.id, body: page.body, error: page.error ?? null }), page.error ? 400 : 200);
    } catch (e) {
      if (!(e instanceof AppError) || e.status >= 500) throw e;
      return errorPage(c, who.viewer, org, e);
    }
  };

  app.get('/dashboard/:orgId', (c) => section(c, c.req.param('orgId'), null));
  app.get('/dashboard/:orgId/:section', (c) => section(c, c.req.param('orgId'), c.req.param('section')));
}
