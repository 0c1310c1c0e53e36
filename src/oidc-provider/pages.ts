import { html, raw } from 'hono/html';
import { layout, PAGE_CSP } from '../pages/layout.js';

/**
 * The OpenID Provider's pages: errors, the sign-out confirmation, the organization picker and the
 * consent screen. Same frame and stylesheet as every hosted page, no inline code.
 *
 * Their policy drops `form-action`: a form here ends in a redirect to the app (the picker and the
 * consent resume the authorization; the sign-out goes to the post_logout_redirect_uri), and
 * browsers apply form-action to every redirect after a submission.
 */
export const PROVIDER_PAGE_CSP = PAGE_CSP.split('; ').filter((d) => !d.startsWith('form-action')).join('; ');

export async function providerErrorPage(error: string, description: string): Promise<string> {
  return String(
    await layout({
      title: 'Sign-in to the app failed',
      pageId: 'op-error-page',
      returnTo: '/',
      step: 'error',
      serverError: html`<p>${description || 'The request could not be completed.'}</p>`,
      body: html`<p class="meta">Error <code>${error}</code>. Go back to the app and try again; if it keeps failing, tell the app's support.</p>`,
    }),
  );
}

/** `form` is oidc-provider's hidden form (its action and xsrf field); the buttons submit it. */
export async function providerLogoutPage(form: string): Promise<string> {
  return String(
    await layout({
      title: 'Sign out',
      pageId: 'op-logout-page',
      returnTo: '/',
      step: 'logout',
      body: html`${raw(form)}
<p>Sign out of Gatehouse and of the apps you signed into with it?</p>
<p><button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Sign out</button>
<button type="submit" form="op.logoutForm" class="secondary">Stay signed in</button></p>`,
    }),
  );
}

export async function providerSignedOutPage(): Promise<string> {
  return String(
    await layout({ title: 'Signed out', pageId: 'op-signed-out-page', returnTo: '/', step: 'done', body: html`<p>You are signed out.</p>` }),
  );
}

export async function organizationPickerPage(input: { action: string; clientName: string; organizations: Array<{ id: string; name: string; slug: string; role: string }> }): Promise<string> {
  return String(
    await layout({
      title: 'Choose an organization',
      pageId: 'op-organization-page',
      returnTo: '/',
      step: 'organization',
      body: input.organizations.length
        ? html`<p>${input.clientName} asks which organization to sign in with.</p>
<form method="post" action="${input.action}">
<fieldset><legend>Organization</legend>
${input.organizations.map(
  (o, i) => html`<p><label><input type="radio" name="organization" value="${o.id}"${i === 0 ? raw(' checked') : ''}> ${o.name} <span class="meta">(${o.slug}, ${o.role})</span></label></p>`,
)}
</fieldset>
<p><button type="submit">Continue</button> <button type="submit" name="cancel" value="1" class="secondary">Cancel</button></p>
</form>`
        : html`<p>${input.clientName} asks for an organization, and you are not a member of any.</p>
<form method="post" action="${input.action}"><p><button type="submit" name="cancel" value="1">Back to the app</button></p></form>`,
    }),
  );
}

export async function consentPage(input: { action: string; clientName: string; scopes: string[]; email: string }): Promise<string> {
  const words: Record<string, string> = {
    openid: 'know who you are (your Gatehouse user id)',
    email: 'see your email address',
    profile: 'see your name',
    organization: 'see the organization you chose and your role in it',
    offline_access: 'stay signed in (refresh its access while you are away)',
  };
  return String(
    await layout({
      title: `Allow ${input.clientName}?`,
      pageId: 'op-consent-page',
      returnTo: '/',
      step: 'consent',
      body: html`<p>Signed in as <strong>${input.email}</strong>. ${input.clientName} would like to:</p>
<ul>${input.scopes.map((s) => html`<li>${words[s] ?? s}</li>`)}</ul>
<form method="post" action="${input.action}">
<p><button type="submit" name="decision" value="allow">Allow</button> <button type="submit" name="decision" value="deny" class="secondary">Deny</button></p>
</form>`,
    }),
  );
}
