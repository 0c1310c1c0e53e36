import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import type { Config } from '../../config.js';
import { ctxOf, type AppEnv } from '../../http/middleware.js';
import type { Services } from '../../services.js';
import { setupLinkCookieOptions } from '../../setup-links/service.js';
import { sendPage } from '../layout.js';
import type { SetupShell } from './frame.js';
import { guidePage } from './guide-page.js';
import { GUIDES } from './idps/index.js';
import { isIdpId } from './idps/types.js';
import { choicePage, domainsPage, refusalPage, refusalStatus, startPage, type Refusal } from './pages.js';

/** The wizard's one path; the token is its last segment (and appears in no other URL). */
export const SETUP_PATH = '/setup';

type Link = { id: string; scope: ('sso' | 'domains')[]; expiresAt: string; createdBy: { email: string | null } | null };
const shellOf = (link: Link, organization: { id: string; name: string; slug: string }): SetupShell => ({
  organization: { id: organization.id, name: organization.name, slug: organization.slug },
  sender: link.createdBy?.email ?? null,
  // SSO first: the order the pages speak of them in.
  link: { id: link.id, scope: [...link.scope].sort((a, b) => (a === b ? 0 : a === 'sso' ? -1 : 1)), expiresAt: link.expiresAt },
});

/**
 * `/setup/{token}` (SPEC §5): the guided SSO and domain setup a setup link opens.
 *   GET  — asks the service first, binding nothing (a mail scanner or chat preview fetching the URL
 *          must not take the link): an unknown, expired, revoked or foreign-browser link gets its
 *          refusal page; a link no browser holds yet gets the "Start setup" page. Then
 *            no query        → the IdP choice (SSO in scope), else the domains page;
 *            `?idp=<id>`     → that IdP's steps and form (SSO in scope);
 *            `?step=domains` → the domains page (domains in scope).
 *   POST — "Start setup": binds the link to this browser (the cookie), then 303 back to the GET.
 * The pages are shells: /assets/setup.js calls the ordinary REST API with `X-Setup-Link`.
 */
export function registerSetupPages(app: OpenAPIHono<AppEnv>, services: Services, config: Config): void {
  const trusted = new Set(config.trustedOrigins);
  /** The token is in this URL: no Referer may carry it anywhere, and no cache or index may keep the page. */
  const privateHeaders = (c: Context<AppEnv>) => {
    c.header('Referrer-Policy', 'no-referrer');
    c.header('X-Robots-Tag', 'noindex');
    c.header('Cache-Control', 'no-store');
  };
  const refuse = (c: Context<AppEnv>, reason: Refusal) => sendPage(c, refusalPage(reason), refusalStatus(reason));

  app.get(`${SETUP_PATH}/:token`, async (c) => {
    privateHeaders(c);
    const seen = await services.setupLinks.preview(c.req.param('token'), (name) => getCookie(c, name));
    if (!seen.ok) return refuse(c, seen.reason);
    const shell = shellOf(seen.link, seen.organization);
    if ('unbound' in seen) return sendPage(c, startPage(shell));

    const sso = shell.link.scope.includes('sso');
    const domains = shell.link.scope.includes('domains');
    const idp = c.req.query('idp');
    if (idp !== undefined) {
      if (!sso) return refuse(c, 'out_of_scope');
      if (!isIdpId(idp)) return sendPage(c, choicePage(shell), 404);
      return sendPage(c, guidePage(shell, GUIDES[idp]));
    }
    if (c.req.query('step') === 'domains') return domains ? sendPage(c, domainsPage(shell)) : refuse(c, 'out_of_scope');
    return sendPage(c, sso ? choicePage(shell) : domainsPage(shell));
  });

  app.post(`${SETUP_PATH}/:token`, async (c) => {
    privateHeaders(c);
    // Only Gatehouse's own start page may start a setup. Its no-referrer policy makes the browser
    // send `Origin: null` on the form POST, so the browser's Sec-Fetch-Site decides (same-origin
    // only); an Origin that is named must be trusted.
    const site = c.req.header('sec-fetch-site');
    const origin = c.req.header('origin');
    if ((site !== undefined && site !== 'same-origin') || (origin !== undefined && origin !== 'null' && !trusted.has(origin))) return refuse(c, 'cross_site');
    const { ip, userAgent, requestId } = ctxOf(c);
    const opened = await services.setupLinks.open(c.req.param('token'), (name) => getCookie(c, name), { ip, userAgent, requestId });
    if (!opened.ok) return refuse(c, opened.reason);
    // First start: this browser is now the link's (one cookie per link, named after its id).
    if (opened.cookie) setCookie(c, opened.cookie.name, opened.cookie.value, setupLinkCookieOptions(config, opened.cookie.expires));
    // Back to the same URL (the token goes into no other), with the page the visitor asked for.
    const here = new URL(c.req.url);
    return c.redirect(`${here.pathname}${here.search}`, 303);
  });
}
