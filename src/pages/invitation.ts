import { html } from 'hono/html';
import type { InvitationPreview } from '../organizations/invitations.js';
import { layout, pageHref } from './layout.js';

export const INVITATION_SCRIPT = '/assets/invitation.js';

/** Who is looking at the invitation: nobody signed in, the invited person, or someone else. */
export type InvitationViewer = { kind: 'signed-out' } | { kind: 'invitee' } | { kind: 'other'; email: string };

/**
 * `/invitations/{token}` — the page the invitation mail links to. Signed out: links to sign in or
 * create an account with the invited email, coming back here. Signed in as the invited email: an
 * "Accept invitation" button (/assets/invitation.js POSTs to the JSON accept API, then goes to /).
 * Signed in as someone else: says so and offers to sign out.
 */
export function invitationPage(input: { token: string; invitation: InvitationPreview; viewer: InvitationViewer }) {
  const { token, invitation: inv, viewer } = input;
  const here = `/invitations/${token}`;
  const intro = html`<p id="invitation-text">You're invited to <strong>${inv.organizationName}</strong> as ${inv.role}.</p>`;
  let body;
  if (viewer.kind === 'signed-out') {
    body = html`<section class="invitation">
<p id="invitation-text">You're invited to <strong>${inv.organizationName}</strong> — sign in or create an account with <strong>${inv.email}</strong> to accept.</p>
<p><a id="sign-in-link" class="button" href="${pageHref('/sign-in', { returnTo: here, email: inv.email })}">Sign in</a></p>
<p><a id="sign-up-link" class="button secondary" href="${pageHref('/sign-up', { returnTo: here, email: inv.email })}">Create an account</a></p>
</section>`;
  } else if (viewer.kind === 'invitee') {
    body = html`<section class="invitation">
${intro}
<p class="identity">Signed in as <strong>${inv.email}</strong>.</p>
<form id="accept-form" data-token="${token}">
<button type="submit" id="accept" class="primary-action">Accept invitation</button>
</form>
<noscript><p><strong>Note:</strong> accepting needs JavaScript. Turn it on and reload this page.</p></noscript>
</section>`;
  } else {
    body = html`<section class="invitation">
${intro}
<p id="wrong-account">You're signed in as <strong>${viewer.email}</strong>, but this invitation was sent to <strong>${inv.email}</strong>. Sign out, then sign in or create an account with ${inv.email} to accept.</p>
<form id="sign-out-form" data-sign-in="${pageHref('/sign-in', { returnTo: here, email: inv.email })}">
<button type="submit" id="sign-out" class="primary-action">Sign out</button>
</form>
</section>`;
  }
  return layout({
    title: 'Invitation',
    pageId: 'invitation-page',
    returnTo: '/',
    step: viewer.kind,
    script: viewer.kind === 'signed-out' ? undefined : INVITATION_SCRIPT,
    body,
  });
}

/**
 * An invitation link that cannot be used. `unknown` (404): nothing about any invitation is said.
 * `closed` (410): the token was real but is expired, used or withdrawn.
 */
export function invitationUnavailablePage(kind: 'unknown' | 'closed') {
  const message = kind === 'unknown'
    ? 'This invitation link is not valid. Check that you opened the whole link from the email, or ask the person who invited you to send a new invitation.'
    : 'This invitation has expired, was already used or was withdrawn. Ask an administrator of the organization to send you a new one.';
  return layout({
    title: kind === 'unknown' ? 'Invitation not found' : 'This invitation can no longer be used',
    pageId: 'invitation-unavailable-page',
    returnTo: '/',
    step: kind,
    serverError: html`<p>${message}</p>`,
    body: html`<p class="foot"><a href="/sign-in">Go to sign-in</a></p>`,
  });
}
