import { html } from 'hono/html';
import { layout } from './layout.js';

/**
 * Small server-rendered pages a browser lands on from an emailed link, in the shared page frame
 * (/assets/gatehouse.css, no inline style or script).
 */

/** The strict policy of every hosted page (re-exported for the routes that answer with these pages). */

/** An emailed link that is unknown, used or expired (or refused by policy): say so and offer the way back. */
export function linkProblemPage(input: { title: string; message: string; action?: { href: string; text: string } | null; requestId: string }) {
  const action = input.action ?? { href: '/sign-in', text: 'Go to sign-in' };
  return layout({
    title: input.title,
    pageId: 'link-problem-page',
    returnTo: '/',
    step: 'error',
    serverError: html`<p>${input.message}</p>`,
    body: html`<p><a class="button" href="${action.href}">${action.text}</a></p>
<p class="meta">Reference: request <code>${input.requestId}</code>.</p>`,
  });
}

/** Body of the 302 after a verified email (shown only by clients that do not follow redirects). */
export function emailVerifiedPage(next: string) {
  return layout({
    title: 'Email address verified',
    pageId: 'email-verified-page',
    returnTo: next,
    step: 'done',
    serverStatus: html`<p>Thank you: your email address is verified.</p>`,
    body: html`<p><a class="button" href="${next}">Continue</a></p>`,
  });
}

/**
 * GET /api/auth/magic-link/verify — "Sign in as …" (SPEC §12). Opening the link spends nothing:
 * the sign-in happens on this form's POST, which a mail scanner fetching the link never sends. A
 * plain form (works without JavaScript; no script at all). Referrer policy `same-origin`, so the
 * browser sends this page's real Origin with the POST (under `no-referrer` a form POST carries
 * `Origin: null`, which the POST refuses); the token in this page's address goes nowhere else.
 */
export function magicLinkConfirmPage(input: { email: string; token: string; action: string }) {
  return layout({
    title: 'Sign in',
    pageId: 'magic-link-page',
    returnTo: '/',
    step: 'confirm',
    referrer: 'same-origin',
    body: html`<p>Sign in as <strong id="magic-link-email">${input.email}</strong>?</p>
<form id="magic-link-form" method="post" action="${input.action}">
<input type="hidden" name="token" value="${input.token}">
<button type="submit" class="primary-action">Sign in as ${input.email}</button>
</form>
<p class="meta">This link works once. If you did not ask to sign in, close this page: nothing happens until you press the button.</p>
<p class="foot"><a href="/sign-in">Sign in another way</a></p>`,
  });
}
