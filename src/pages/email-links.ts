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
